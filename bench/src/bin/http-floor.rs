//! `http-floor`: the least any webhook intake can do over HTTP. It serves
//! `POST /webhooks/webex` on the gateway's stack (axum on hyper behind the
//! gateway's own listener, tokio's multi-threaded runtime, mimalloc), reads
//! the whole body and answers 200:
//! no signature, no JSON, no NATS. The bench drives it with the same load
//! generator and connections as the gateway, so its rate bounds what any
//! intake reaches on this machine.
//!
//! Prints `http-floor listening addr=<address>` once it serves.

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use chatops_gateway::limits::{GuardedListener, Limits};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Takes the body whole, as intake does before it verifies it.
async fn take(body: Bytes) -> StatusCode {
    if body.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match serve().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http-floor: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("http-floor listening addr={}", listener.local_addr()?);
    // The gateway's listener, at the gateway's default limits (it also
    // turns Nagle off, as the gateway's answers need).
    let listener = GuardedListener::new(listener, &Limits::default());
    let app = Router::new().route("/webhooks/webex", post(take));
    axum::serve(listener, app).await
}
