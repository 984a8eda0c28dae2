//! `chatops-bench`: parse the arguments, run, exit non-zero when a run
//! could not be made or lost work (missed targets are reported, not fatal).

use clap::Parser;

// One thread: the bench shares two cores with what it measures. On a
// multi-threaded runtime its publishers and load generator took more CPU
// and woke each other across threads, and the ceiling came out lower than
// JetStream can go (in runs side by side, 64,000-114,000 instead of
// 100,000-140,000 publishes/s at 16 and 64 in flight).
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = chatops_bench::plan::Args::parse();
    match chatops_bench::run(&args).await {
        Ok(found) if found.failures.is_empty() => {}
        Ok(found) => {
            for f in &found.failures {
                eprintln!("chatops-bench: {f}");
            }
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("chatops-bench: {e:#}");
            std::process::exit(1);
        }
    }
}
