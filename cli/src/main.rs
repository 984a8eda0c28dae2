use chatops_cli::{Cli, run};
use chatops_shared::config::Env;
use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let env = Env::from_process();
    // The CLI talks to people: only warnings and errors by default.
    chatops_shared::telemetry::init_with_default(&env, "warn");
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Err(e) = run(cli, &env).await {
        eprintln!("chatops: {e}");
        std::process::exit(e.exit_code());
    }
}
