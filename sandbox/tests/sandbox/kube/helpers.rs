//! Helpers for the kube sandbox tests: manifests from `resources/`, a
//! kubectl runner isolated from the user's configuration, kube-rs clients
//! with bearer tokens, and polling with a deadline instead of sleeps.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chatops_sandbox::kube::{KubeSandbox, RecordedRequest};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tempfile::TempDir;
use tokio::time::{Instant, timeout};

pub(super) const ADMIN_TOKEN: &str = "admin-token";
pub(super) const BOT_TOKEN: &str = "bot-token";
pub(super) const BOT: &str = "system:serviceaccount:default:chatops-bot";

/// An empty cluster whose rollouts finish at once, and kubectl for it.
pub(super) async fn empty() -> (KubeSandbox, Kubectl) {
    let sandbox = KubeSandbox::builder()
        .rollout(Duration::ZERO)
        .start()
        .await
        .expect("start the sandbox");
    let kubectl = Kubectl::new(&sandbox.url());
    (sandbox, kubectl)
}

/// The messages of the `ScalingReplicaSet` events, oldest first.
pub(super) async fn scalings(kubectl: &Kubectl) -> Vec<String> {
    let out = kubectl
        .run(&[
            "get",
            "events",
            "--field-selector",
            "reason=ScalingReplicaSet",
            "--sort-by=.metadata.creationTimestamp",
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ])
        .await
        .success();
    out.stdout.lines().map(str::to_owned).collect()
}

/// The sample deployment, rolled out (so nothing writes it after).
pub(super) async fn nginx() -> KubeSandbox {
    let sandbox = KubeSandbox::builder()
        .rollout(Duration::ZERO)
        .seed_yaml(&manifest("nginx-deployment.yaml"))
        .start()
        .await
        .expect("start the sandbox");
    eventually("the rollout", Duration::from_secs(10), || async {
        let d = nginx_deployment(&sandbox);
        (d["status"]["availableReplicas"] == 2).then_some(())
    })
    .await;
    sandbox
}

/// The sample deployment as the sandbox holds it.
pub(super) fn nginx_deployment(sandbox: &KubeSandbox) -> serde_json::Value {
    sandbox
        .object("apps/v1", "Deployment", "default", "nginx-deployment")
        .expect("the deployment exists")
}

/// Runs kubectl, which must fail with `says` as the last line it prints.
pub(super) async fn refused(kubectl: &Kubectl, args: &[&str], says: &str) {
    let out = kubectl.run(args).await;
    assert_eq!(out.code, Some(1), "{args:?}: {}", out.stdout);
    assert_eq!(
        out.stderr.trim().lines().last(),
        Some(says),
        "{args:?}: {}",
        out.stderr
    );
}

/// The repository's `resources/` folder.
pub(super) fn resources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../resources")
}

/// The text of `resources/<file>`.
pub(super) fn manifest(file: &str) -> String {
    let path = resources().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A sandbox seeded with the sample deployment, the bot's RBAC enforced,
/// an admin token and the bot's token.
pub(super) async fn sandbox_with_rbac(rollout: Duration) -> KubeSandbox {
    rbac_builder(rollout)
        .start()
        .await
        .expect("start the sandbox")
}

/// The builder behind [`sandbox_with_rbac`].
pub(super) fn rbac_builder(rollout: Duration) -> chatops_sandbox::kube::KubeSandboxBuilder {
    KubeSandbox::builder()
        .rollout(rollout)
        .seed_yaml(&manifest("nginx-deployment.yaml"))
        .rbac_yaml(&manifest("sa.yaml"))
        .rbac_yaml(&manifest("role.yaml"))
        .rbac_yaml(&manifest("rb.yaml"))
        .admin_token(ADMIN_TOKEN)
        .token(BOT_TOKEN, BOT)
}

/// Polls `probe` until it returns `Some`, failing the test after `limit`.
pub(super) async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A kube-rs client for the sandbox, authenticating with `token`, with
/// kube-rs's own retries of 429/503/504 off so every answer reaches the
/// test as the sandbox sent it.
pub(super) async fn client(url: &str, token: Option<&str>) -> kube::Client {
    let mut config = config(url, token).await;
    config.default_retry = false;
    kube::Client::try_from(config).expect("client builds")
}

/// A kube-rs client configured as the worker's is: default retries on.
pub(super) async fn default_client(url: &str) -> kube::Client {
    kube::Client::try_from(config(url, None).await).expect("client builds")
}

async fn config(url: &str, token: Option<&str>) -> kube::Config {
    let user = match token {
        Some(t) => format!("{{name: u, user: {{token: {t}}}}}"),
        None => "{name: u, user: {}}".to_owned(),
    };
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters: [{{name: s, cluster: {{server: '{url}'}}}}]\nusers: [{user}]\ncontexts: [{{name: c, context: {{cluster: s, user: u, namespace: default}}}}]\ncurrent-context: c\n"
    );
    let kubeconfig = Kubeconfig::from_yaml(&yaml).expect("kubeconfig parses");
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig usable")
}

/// One raw request to the sandbox (`path_and_query` from `/`), for what
/// typed clients would not send; returns the status code and the JSON
/// answer.
pub(super) async fn http(
    sandbox: &KubeSandbox,
    method: &str,
    path_and_query: &str,
    content_type: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let response = client
        .request(method, format!("{}{path_and_query}", sandbox.url()))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .expect("the sandbox answers");
    let code = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (code, json)
}

/// Requests matching `method` whose path ends with `suffix`.
pub(super) fn count(log: &[RecordedRequest], method: &str, suffix: &str) -> usize {
    log.iter()
        .filter(|r| r.method == method && r.path.ends_with(suffix))
        .count()
}

/// A directory removed on drop.
pub(super) fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("kube-sandbox-test-")
        .tempdir()
        .expect("create a temporary directory")
}

/// The kubectl to test with: `KUBECTL`, else `kubectl` on `PATH`.
pub(super) fn kubectl_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("KUBECTL") {
        return bin.into();
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("kubectl not found on PATH: install kubectl (v1.32 is what these tests were written against) or set KUBECTL to its path")
        })
}

/// What a kubectl run printed.
#[derive(Debug)]
pub(super) struct Output {
    pub(super) code: Option<i32>,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

impl Output {
    /// Panics with everything printed unless kubectl exited 0.
    pub(super) fn success(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "kubectl failed:\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// kubectl pointed at one sandbox, with an empty kubeconfig, its own home
/// and discovery cache, so nothing of the user's is read or written.
#[derive(Debug)]
pub(super) struct Kubectl {
    bin: PathBuf,
    server: String,
    impersonate: Option<String>,
    home: TempDir,
}

impl Kubectl {
    pub(super) fn new(server: &str) -> Self {
        let home = temp_dir();
        std::fs::write(home.path().join("kubeconfig"), "").expect("write an empty kubeconfig");
        Self {
            bin: kubectl_bin(),
            server: server.to_owned(),
            impersonate: None,
            home,
        }
    }

    /// Acts as `user` through impersonation (`--as`): kubectl sends no
    /// bearer token over plain HTTP.
    pub(super) fn acting_as(mut self, user: &str) -> Self {
        self.impersonate = Some(user.to_owned());
        self
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.arg(format!("--server={}", self.server)).arg(format!(
            "--cache-dir={}",
            self.home.path().join("cache").display()
        ));
        if let Some(user) = &self.impersonate {
            cmd.arg(format!("--as={user}"));
        }
        cmd.args(args)
            .env_clear()
            .envs(std::env::var_os("PATH").map(|p| ("PATH", p)))
            .env("HOME", self.home.path())
            .env("KUBECONFIG", self.home.path().join("kubeconfig"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `kubectl ARGS...` to completion (at most 90 s).
    pub(super) async fn run(&self, args: &[&str]) -> Output {
        let output = timeout(Duration::from_secs(90), self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish in 90 s"))
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        Output {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Starts `kubectl ARGS...` and returns at once.
    pub(super) fn spawn(&self, args: &[&str]) -> tokio::process::Child {
        self.command(args)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()))
    }
}
