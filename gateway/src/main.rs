use chatops_gateway::config::GatewayConfig;
use chatops_gateway::startup::Application;
use chatops_shared::config::{Env, exit_on_error};

#[tokio::main]
async fn main() {
    let env = Env::from_process();
    chatops_shared::telemetry::init(&env);
    let config = exit_on_error("gateway", GatewayConfig::from_env(&env));
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("gateway: {e}");
            std::process::exit(e.exit_code());
        }
    };
    if let Err(e) = app
        .run_until_stopped(chatops_shared::shutdown::signal())
        .await
    {
        eprintln!("gateway: {e}");
        std::process::exit(1);
    }
}
