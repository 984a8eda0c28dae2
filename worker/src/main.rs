use std::process::ExitCode;

use chatops_shared::config::{EXIT_CONFIG, Env, exit_on_error};
use chatops_worker::config::WorkerConfig;
use chatops_worker::startup::Application;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(code) = chatops_shared::config::service_arguments(
        "worker",
        env!("CARGO_PKG_VERSION"),
        "applies commands to Deployments through the Kubernetes API",
        std::env::args().skip(1),
    ) {
        return code;
    }
    let env = Env::from_process();
    let logs = exit_on_error("worker", chatops_shared::telemetry::init(&env));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match WorkerConfig::from_env(&env) {
        Ok(config) => config,
        Err(e) => {
            logs.fatal("worker", &e);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            logs.fatal("worker", &e);
            return ExitCode::from(e.exit_code());
        }
    };
    match app
        .run_until_stopped(chatops_shared::shutdown::signal())
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            logs.fatal("worker", &e);
            ExitCode::FAILURE
        }
    }
}
