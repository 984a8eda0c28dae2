use chatops_cli::{Cli, run};
use chatops_shared::config::Env;
use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let env = Env::from_process();
    chatops_shared::telemetry::init(&env);
    if let Err(e) = run(cli, &env).await {
        eprintln!("chatops: {e}");
        std::process::exit(e.exit_code());
    }
}
