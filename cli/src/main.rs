use std::process::ExitCode;

use chatops_cli::{Cli, run};
use chatops_shared::config::{Env, exit_on_error};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    // The CLI talks to people: only warnings and errors by default.
    let _logs = exit_on_error(
        "chatops",
        chatops_shared::telemetry::init_with_default(&env, "warn"),
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli, &env).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chatops: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
