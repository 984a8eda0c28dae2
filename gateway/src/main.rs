use std::process::ExitCode;

use chatops_gateway::config::GatewayConfig;
use chatops_gateway::startup::Application;
use chatops_shared::config::{EXIT_CONFIG, Env, exit_on_error};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(code) = chatops_shared::config::service_arguments(
        "gateway",
        env!("CARGO_PKG_VERSION"),
        "receives Webex webhooks, turns messages into commands, relays results to the room",
        std::env::args().skip(1),
    ) {
        return code;
    }
    let env = Env::from_process();
    let logs = exit_on_error("gateway", chatops_shared::telemetry::init(&env));
    let config = match GatewayConfig::from_env(&env) {
        Ok(config) => config,
        Err(e) => {
            logs.fatal("gateway", &e);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            logs.fatal("gateway", &e);
            return ExitCode::from(e.exit_code());
        }
    };
    match app
        .run_until_stopped(chatops_shared::shutdown::signal())
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            logs.fatal("gateway", &e);
            ExitCode::FAILURE
        }
    }
}
