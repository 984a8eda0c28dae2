//! The shutdown signal every binary passes to its run loop: SIGTERM (what
//! Kubernetes and docker send) or SIGINT (Ctrl-C), whichever comes first.

/// Resolves when the process is asked to stop. The signals are caught from
/// this call on, not from the first poll: a signal that comes in between
/// would otherwise end the process with no clean-up. A second signal ends
/// the process at once (see [`signal_once`] for one that must clean up).
pub fn signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    stop_signal(true)
}

/// As [`signal`], but later signals are caught and ignored: for a process
/// whose clean-up must run (the demo stops the servers it started).
pub fn signal_once() -> impl std::future::Future<Output = ()> + Send + 'static {
    stop_signal(false)
}

fn stop_signal(second_ends: bool) -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).ok();
        let mut terminate = signal(SignalKind::terminate()).ok();
        async move {
            let (first, _) = next(&mut interrupt, &mut terminate).await;
            if second_ends {
                tracing::info!("{first} received, shutting down (a second signal stops at once)");
            } else {
                tracing::info!("{first} received, shutting down");
            }
            // A second signal: the person (or supervisor) will not wait for
            // the grace period. What is in hand is not acked, so it is
            // delivered again; the fences keep it from being applied twice.
            tokio::spawn(async move {
                loop {
                    let (name, code) = next(&mut interrupt, &mut terminate).await;
                    if second_ends {
                        eprintln!(
                            "{name} received again: stopping at once; work in hand is delivered again"
                        );
                        std::process::exit(code);
                    }
                    tracing::info!("{name} received again; still stopping");
                }
            });
        }
    }
    #[cfg(not(unix))]
    async move {
        let _ = second_ends;
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("Ctrl-C received, shutting down");
        } else {
            std::future::pending::<()>().await;
        }
    }
}

/// The next of SIGINT and SIGTERM to come: its name, and the exit code a
/// shell gives a process it ends (128 + its number).
#[cfg(unix)]
async fn next(
    interrupt: &mut Option<tokio::signal::unix::Signal>,
    terminate: &mut Option<tokio::signal::unix::Signal>,
) -> (&'static str, i32) {
    async fn received(s: &mut Option<tokio::signal::unix::Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    tokio::select! {
        () = received(interrupt) => ("SIGINT", 130),
        () = received(terminate) => ("SIGTERM", 143),
    }
}

/// A cancellation token that fires when `shutdown` resolves, for loops and
/// servers that stop at the same signal.
pub fn token(
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.cancel();
    });
    token
}
