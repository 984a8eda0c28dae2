//! The processes a run starts: where their binaries are, spawning them with
//! their output in log files (a pipe read by the bench would put the bench's
//! CPU into their numbers), waiting for their start-up line, and what
//! `/proc` says about their memory and CPU time.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::time::Instant;

/// The release (or debug) binaries of the workspace, next to the bench's own.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub gateway: PathBuf,
    pub worker: PathBuf,
    pub kube_sandbox: PathBuf,
    pub webex_sandbox: PathBuf,
    pub chatops: PathBuf,
    /// The bench's empty HTTP server (see `src/bin/http-floor.rs`).
    pub http_floor: PathBuf,
}

impl Binaries {
    /// Builds the binaries in the bench's own profile (unless `build` is
    /// false) and finds them beside the running executable.
    pub fn locate(build: bool) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("where is the bench binary")?;
        let dir = exe
            .parent()
            .context("the bench binary has no directory")?
            .to_owned();
        // target/<profile>/: build in the bench's own profile.
        let profile = dir
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|&n| n != "debug")
            .map(str::to_owned);
        if build {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = std::process::Command::new(cargo);
            cmd.current_dir(workspace_root())
                .args(["build", "--quiet", "--bins"])
                .args(["-p", "chatops-gateway", "-p", "chatops-worker"])
                .args(["-p", "chatops-sandbox", "-p", "chatops-cli"])
                .args(["-p", "chatops-bench"]);
            if let Some(profile) = &profile {
                cmd.args(["--profile", profile]);
            }
            let status = cmd.status().context("run cargo build")?;
            if !status.success() {
                bail!("cargo build of the binaries failed ({status})");
            }
        }
        let bins = Self {
            gateway: dir.join("gateway"),
            worker: dir.join("worker"),
            kube_sandbox: dir.join("kube-sandbox"),
            webex_sandbox: dir.join("webex-sandbox"),
            chatops: dir.join("chatops"),
            http_floor: dir.join("http-floor"),
        };
        for bin in [
            &bins.gateway,
            &bins.worker,
            &bins.kube_sandbox,
            &bins.webex_sandbox,
            &bins.chatops,
            &bins.http_floor,
        ] {
            if !bin.is_file() {
                bail!(
                    "{} is missing; build it (cargo build --release --bins) or drop --no-build",
                    bin.display()
                );
            }
        }
        Ok(bins)
    }
}

/// The repository, for `cargo build` and the manifests in `resources/`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// A child process whose stdout and stderr go to one log file; killed on
/// drop.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    child: tokio::process::Child,
    log: PathBuf,
}

impl Proc {
    /// Spawns `bin` with exactly `envs` (plus `PATH`), logging to
    /// `<logs>/<name>.log`.
    pub fn spawn(
        name: &str,
        bin: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        logs: &Path,
    ) -> anyhow::Result<Self> {
        let log = logs.join(format!("{name}.log"));
        let file =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err = file.try_clone().context("clone a log file handle")?;
        let child = tokio::process::Command::new(bin)
            .args(args)
            .env_clear()
            .envs(std::env::var_os("PATH").map(|p| ("PATH", p)))
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("run {}", bin.display()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines printed, for error messages.
    pub fn tail(&self, lines: usize) -> String {
        let out = self.output();
        let all: Vec<&str> = out.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Waits until a printed line contains `needle`; returns that line.
    pub async fn wait_for_line(&mut self, needle: &str, limit: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(line) = self.output().lines().find(|l| l.contains(needle)) {
                return Ok(line.to_owned());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "{} exited with {status} before printing {needle:?}:\n{}",
                    self.name,
                    self.tail(20)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} printed no {needle:?} within {limit:?}:\n{}",
                    self.name,
                    self.tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for the process to exit by itself; its exit code and output.
    pub async fn wait(mut self, limit: Duration) -> anyhow::Result<(Option<i32>, String)> {
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .with_context(|| format!("{} did not exit within {limit:?}", self.name))?
            .context("wait for a child")?;
        Ok((status.code(), self.output()))
    }

    /// Memory and CPU time from `/proc`.
    pub fn usage(&self) -> Usage {
        Usage::of(self.pid())
    }
}

/// What `/proc/PID/status` and `/proc/PID/stat` say about a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Usage {
    /// Resident set now (VmRSS), bytes.
    pub rss: u64,
    /// Peak resident set (VmHWM), bytes.
    pub peak_rss: u64,
    /// User plus system CPU time so far, seconds.
    pub cpu_seconds: f64,
}

impl Usage {
    pub fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .map_or(0, |n| n * 1024)
        };
        Self {
            rss: kib("VmRSS:"),
            peak_rss: kib("VmHWM:"),
            cpu_seconds: cpu_seconds(pid),
        }
    }

    pub fn own() -> Self {
        Self::of(std::process::id())
    }
}

/// utime + stime of a process, from `/proc/PID/stat` (clock ticks of
/// 1/100 s, which is what Linux reports to user space on every
/// architecture this runs on).
fn cpu_seconds(pid: u32) -> f64 {
    // After the name: utime is field 14 and stime 15 (1-based).
    stat_seconds(&pid.to_string(), [14, 15])
}

/// The CPU time of the bench's children that have exited and been waited
/// for (cutime + cstime of `/proc/self/stat`): how a child that is gone
/// before its time is read is measured.
pub fn waited_children_cpu_seconds() -> f64 {
    stat_seconds("self", [16, 17])
}

/// The sum of `fields` (1-based, counted as `man proc` does) of
/// `/proc/<pid>/stat`, in seconds; 0 when the process is gone.
fn stat_seconds(pid: &str, fields: [usize; 2]) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) is in parentheses and may hold spaces:
    // counting starts after it, at the state (field 3).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let after_name: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields
        .iter()
        .filter_map(|&f| after_name.get(f - 3)?.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// The whole machine's CPU counters, from the first line of `/proc/stat`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    busy: u64,
    total: u64,
}

impl MachineCpu {
    pub fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        let total: u64 = fields.iter().take(8).sum();
        // idle and iowait are the 4th and 5th numbers.
        let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
        Self {
            busy: total.saturating_sub(idle),
            total,
        }
    }

    /// The share of all CPUs that was busy since `earlier` (0 to 1).
    pub fn busy_since(&self, earlier: &Self) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        self.busy.saturating_sub(earlier.busy) as f64 / total as f64
    }
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Logical CPUs of this machine.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_can_read_its_own_memory_and_cpu() {
        let u = Usage::own();
        assert!(u.rss > 0 && u.peak_rss >= u.rss, "{u:?}");
        assert!(u.cpu_seconds >= 0.0);
    }

    /// A child's CPU time is still told once it has exited and been waited
    /// for (as `chatops replay` has when its watch stops).
    #[test]
    fn a_waited_for_child_is_counted() {
        let before = waited_children_cpu_seconds();
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done"])
            .status()
            .expect("sh");
        assert!(status.success());
        let used = waited_children_cpu_seconds() - before;
        assert!(used >= 0.05, "the busy child used {used} s");
    }
}
