//! The gateway and worker executables under test.
//!
//! Cargo gives a test `CARGO_BIN_EXE_*` only for its own package's binaries,
//! so these are found next to this test executable (`target/<profile>/`).
//! Before the first use, this binary runs `cargo build --bin gateway --bin
//! worker` once for the same profile and target directory: a no-op when
//! they are fresh, and never a stale binary tested by mistake (cargo has let
//! go of the build lock by the time tests run; it waits on another build's
//! lock, as it should). `CHATOPS_E2E_NO_BUILD=1` skips the build and uses
//! what is there.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[derive(Debug)]
pub struct Bins {
    pub gateway: PathBuf,
    pub worker: PathBuf,
}

/// The executables, built on first use.
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| locate().unwrap_or_else(|e| panic!("{e}")))
}

fn locate() -> Result<Bins, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this test: {e}"))?;
    // target/<profile>/deps/faults-HASH
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} is not in target/<profile>/deps", exe.display()))?;
    let suffix = std::env::consts::EXE_SUFFIX;
    let bins = Bins {
        gateway: profile_dir.join(format!("gateway{suffix}")),
        worker: profile_dir.join(format!("worker{suffix}")),
    };
    if std::env::var_os("CHATOPS_E2E_NO_BUILD").is_none() {
        build(profile_dir)?;
    }
    for bin in [&bins.gateway, &bins.worker] {
        if !bin.is_file() {
            return Err(format!(
                "{} is missing; run `cargo build --bin gateway --bin worker` first",
                bin.display()
            ));
        }
    }
    Ok(bins)
}

fn build(profile_dir: &Path) -> Result<(), String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the e2e crate is not in the workspace")?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let target_dir = profile_dir
        .parent()
        .ok_or("no target directory above the profile's")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("faults: cargo build --bin gateway --bin worker --profile {profile}");
    let output = Command::new(&cargo)
        .args(["build", "--quiet", "--bin", "gateway", "--bin", "worker"])
        .args(["--profile", profile])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .output()
        .map_err(|e| format!("cannot run cargo to build the gateway and worker: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo build of the gateway and worker failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
