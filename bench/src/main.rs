//! `chatops-bench`: parse the arguments, run, exit non-zero when a run
//! could not be made or lost work (missed targets are reported, not fatal).

use clap::Parser;

#[tokio::main]
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
