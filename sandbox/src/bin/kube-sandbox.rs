//! `kube-sandbox`: the in-memory Kubernetes API for the demo and for tests
//! that run it as a process. Prints where it listens as its first stdout
//! line, logs on stderr, and stops on SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chatops_sandbox::kube::KubeSandbox;
use clap::Parser;

/// As the gateway and the worker: glibc's malloc was a fifth of this
/// sandbox's CPU samples.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An in-memory Kubernetes API server that kubectl and kube-rs accept.
#[derive(Debug, Parser)]
#[command(name = "kube-sandbox", version)]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Manifest to create objects from at start (e.g.
    /// resources/nginx-deployment.yaml); repeatable.
    #[arg(long = "seed", value_name = "FILE.yaml")]
    seeds: Vec<PathBuf>,
    /// RBAC manifest (Role, RoleBinding, ...) to load and enforce;
    /// repeatable. Any switches RBAC on.
    #[arg(long = "rbac", value_name = "FILE.yaml")]
    rbac: Vec<PathBuf>,
    /// Seconds a rollout takes, and over which the Pods a scale adds
    /// become ready (fractions allowed).
    #[arg(long, default_value_t = 5.0)]
    rollout_seconds: f64,
    /// A bearer token and the user it authenticates, as TOKEN=USER;
    /// repeatable.
    #[arg(long = "token", value_name = "TOKEN=USER", value_parser = parse_token)]
    tokens: Vec<(String, String)>,
    /// A bearer token for a cluster administrator (system:masters).
    #[arg(long)]
    admin_token: Option<String>,
    /// Callers without a token act as cluster administrators even with
    /// RBAC on (kubectl sends no token over plain HTTP; check other
    /// identities with `kubectl --as USER`).
    #[arg(long)]
    anonymous_admin: bool,
    /// An image whose pods never become ready, so rollouts to it stall
    /// until their progress deadline; repeatable.
    #[arg(long = "unpullable-image", value_name = "IMAGE")]
    unpullable: Vec<String>,
}

fn parse_token(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((token, user)) if !token.is_empty() && !user.is_empty() => {
            Ok((token.to_owned(), user.to_owned()))
        }
        // Never echo the value: it holds a token.
        _ => Err("expected TOKEN=USER".to_owned()),
    }
}

fn read(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| {
        eprintln!("kube-sandbox: cannot read {}: {e}", path.display());
        std::process::exit(64);
    })
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    if !args.rollout_seconds.is_finite() || args.rollout_seconds < 0.0 {
        eprintln!("kube-sandbox: --rollout-seconds must be a non-negative number");
        std::process::exit(64);
    }
    let mut builder = KubeSandbox::builder()
        .listen(args.listen)
        .rollout(Duration::from_secs_f64(args.rollout_seconds));
    for path in &args.seeds {
        builder = builder.seed_named(&path.display().to_string(), &read(path));
    }
    for path in &args.rbac {
        builder = builder.rbac_named(&path.display().to_string(), &read(path));
    }
    for (token, user) in &args.tokens {
        builder = builder.token(token, user);
    }
    if let Some(token) = &args.admin_token {
        builder = builder.admin_token(token);
    }
    for image in &args.unpullable {
        builder = builder.unpullable_image(image);
    }
    if args.anonymous_admin {
        builder = builder.anonymous_admin();
    }
    let sandbox = match builder.start().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kube-sandbox: {e}");
            std::process::exit(64);
        }
    };
    // The first stdout line is the contract with whoever started us.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "kube-sandbox listening on {}", sandbox.url());
    let _ = stdout.flush();

    chatops_shared::shutdown::signal().await;
    sandbox.stop().await;
}
