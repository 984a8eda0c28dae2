//! `webex-sandbox`: the in-memory Webex API for the demo and for tests in
//! other languages. Prints where it listens and the default room on stdout,
//! logs on stderr, and stops on SIGTERM or SIGINT.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;

use chatops_sandbox::webex::WebexSandbox;
use clap::Parser;

/// As the Kubernetes sandbox: it records every request, and at 1,000
/// commands a second glibc's malloc and free were a tenth of its samples.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An in-memory Webex API for tests and the local demo.
#[derive(Debug, Parser)]
#[command(name = "webex-sandbox", version)]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The bot's access token.
    #[arg(long)]
    bot_token: String,
    /// The bot's display name (and first name, as mentions show it).
    #[arg(long, default_value = "kube")]
    bot_name: String,
    /// A user and their access token, as EMAIL=TOKEN; repeatable.
    #[arg(long = "user", value_name = "EMAIL=TOKEN")]
    users: Vec<String>,
    /// Title of the default room.
    #[arg(long, default_value = "chatops")]
    room_title: String,
}

/// Splits `EMAIL=TOKEN`. Parsed here rather than by clap, whose errors
/// repeat the value, and the value holds a token.
fn parse_user(raw: &str) -> Option<(&str, &str)> {
    raw.split_once('=')
        .filter(|(email, token)| !email.is_empty() && !token.is_empty())
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let mut builder = WebexSandbox::builder()
        .listen(args.listen)
        .bot(&args.bot_name, &args.bot_token)
        .room_title(&args.room_title);
    for raw in &args.users {
        let Some((email, token)) = parse_user(raw) else {
            eprintln!("webex-sandbox: --user expects EMAIL=TOKEN");
            std::process::exit(64);
        };
        builder = builder.user(email, token);
    }
    let sandbox = match builder.start().await {
        Ok(sandbox) => sandbox,
        Err(e) => {
            eprintln!("webex-sandbox: {e}");
            std::process::exit(
                if matches!(e, chatops_sandbox::webex::StartError::People(_)) {
                    64
                } else {
                    69
                },
            );
        }
    };
    let bot = sandbox.bot();
    let mut out = std::io::stdout().lock();
    // Callers read these lines to find the sandbox, so flush them at once.
    let printed = writeln!(out, "webex-sandbox listening on http://{}", sandbox.addr())
        .and_then(|()| writeln!(out, "default room: {}", sandbox.default_room_id()))
        .and_then(|()| {
            writeln!(
                out,
                "bot: {} <{}> {}",
                bot.display_name,
                bot.email(),
                bot.id
            )
        })
        // What a gateway is given: the API is under /v1, as Webex's own.
        .and_then(|()| writeln!(out, "WEBEX_API_URL=http://{}/v1", sandbox.addr()))
        .and_then(|()| out.flush());
    drop(out);
    if let Err(e) = printed {
        eprintln!("webex-sandbox: cannot write to stdout: {e}");
    }
    chatops_shared::shutdown::signal().await;
    sandbox.shutdown().await;
}
