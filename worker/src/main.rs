use chatops_shared::config::{Env, exit_on_error};
use chatops_worker::config::WorkerConfig;
use chatops_worker::startup::Application;

#[tokio::main]
async fn main() {
    let env = Env::from_process();
    chatops_shared::telemetry::init(&env);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = exit_on_error("worker", WorkerConfig::from_env(&env));
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("worker: {e}");
            std::process::exit(e.exit_code());
        }
    };
    if let Err(e) = app
        .run_until_stopped(chatops_shared::shutdown::signal())
        .await
    {
        eprintln!("worker: {e}");
        std::process::exit(1);
    }
}
