//! The Kubernetes API stand-in: an in-memory API server that kubectl and
//! kube-rs accept unmodified, for everything this project and kubectl touch.
//!
//! It serves discovery, Deployments (with `/scale` and `/status`),
//! ReplicaSets made by a simulated deployment controller, their Pods made
//! by a simulated ReplicaSet controller, the Events those controllers
//! record, Namespaces, ServiceAccounts, ConfigMaps and the RBAC kinds, with
//! resource quantities checked as the server decodes them, resourceVersion
//! conflicts, generations, watches, dry runs, the three patch formats,
//! server-side `Table` printing, bearer-token identities, RBAC
//! enforcement and self-reviews (`kubectl auth can-i|whoami`), and
//! injectable faults. Errors are `Status` objects worded
//! like the real server's.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chatops_sandbox::kube::SandboxError> {
//! use std::time::Duration;
//! use chatops_sandbox::kube::{Fault, KubeSandbox};
//!
//! let read = |f: &str| std::fs::read_to_string(format!("resources/{f}")).unwrap_or_default();
//! let sandbox = KubeSandbox::builder()
//!     .rollout(Duration::from_millis(200))
//!     .seed_yaml(&read("nginx-deployment.yaml"))
//!     .rbac_yaml(&read("sa.yaml"))
//!     .rbac_yaml(&read("role.yaml"))
//!     .rbac_yaml(&read("rb.yaml"))
//!     .token("bot-token", "system:serviceaccount:default:chatops-bot")
//!     .admin_token("admin-token")
//!     .start()
//!     .await?;
//! sandbox.inject(Fault::status(503).method("PATCH").path("/apis/apps/v1/").times(2));
//! // ... point a client at sandbox.url() ...
//! let writes = sandbox.requests().iter().filter(|r| r.is_write()).count();
//! # let _ = writes;
//! # Ok(()) }
//! ```
//!
//! Control endpoints, for clients in other processes (under `/_sandbox/`):
//! `POST /_sandbox/faults` (a [`Fault`] as JSON), `DELETE /_sandbox/faults`,
//! `GET /_sandbox/faults`, `GET|DELETE /_sandbox/requests` (the
//! [`RecordedRequest`] log), `GET|PUT /_sandbox/rollout` (`{"millis": 200}`),
//! `GET|PUT /_sandbox/unpullable` (`["nginx:bad"]`: images whose rollouts
//! stall).
//!
//! Things a client author should know, all as on a real cluster:
//! - Deleting a namespace makes it `Terminating`: its controller deletes
//!   everything in it, then the namespace; meanwhile creating in it is 403
//!   Forbidden. A foreground deletion keeps the object (with the
//!   `foregroundDeletion` finalizer) until its dependents are gone. Held
//!   controllers ([`KubeSandbox::hold_controllers`]) hold these too.
//! - kube-rs retries 429, 503 and 504 by itself (`Config::default_retry`),
//!   so a fault of those codes with a small count is invisible to callers
//!   unless retries are off; the request log still shows every attempt.
//! - A JSON patch whose `test` fails is 422 Invalid with no causes (the
//!   server drops its patch library's reason); a stale
//!   `resourceVersion` in a merge patch, a PUT, or a JSON patch that
//!   `replace`s `/metadata/resourceVersion` is 409 Conflict.
//! - A `dryRun` other than `All` (on any write, `/scale` included) is 422
//!   Invalid and writes nothing.
//! - A scale sets the ReplicaSet's size at once; its new Pods are ready
//!   only after a while (up to the rollout time), so `readyReplicas` lags
//!   `replicas` as on a cluster.
//! - kubectl sends no bearer token over plain HTTP. To drive an RBAC-enforcing
//!   sandbox with kubectl, start it with [`KubeSandboxBuilder::anonymous_admin`]
//!   and act as others with `kubectl --as USER` (impersonation).
//! - Bodies are JSON, YAML or Kubernetes protobuf (what kubectl's
//!   generators, `kubectl auth reconcile` and `kubectl auth can-i` send),
//!   decoded into the JSON a JSON client would have sent. The protobuf
//!   schemas cover the served kinds' usual fields; a field outside them is
//!   415 naming the field, never silently dropped: send that object as JSON
//!   (`kubectl create -f`). Answers are always JSON. Server-side apply
//!   (`application/apply-patch+yaml`) is not served (415).
//! - `kubectl auth can-i` (`--as`, `-n`, `--list`) and `kubectl auth whoami`
//!   are answered from the sandbox's own RBAC for the caller as
//!   impersonated; with RBAC off, everything is allowed.

mod api;
mod controller;
mod deployment;
mod discovery;
mod error;
mod events;
mod faults;
mod gojson;
mod lifecycle;
mod messages;
mod meta;
mod paging;
mod patch;
mod pods;
mod protobuf;
mod quantity;
mod rbac;
mod resources;
mod review;
mod schema;
mod server;
mod store;
mod table;
mod validation;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

pub use faults::{Fault, RecordedRequest};
pub use rbac::Identity;

use faults::Faults;
use rbac::Auth;
use store::Store;

/// Why a sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("manifest {which} is not valid YAML: {source}")]
    Yaml {
        which: String,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error("manifest {which} cannot be loaded: {reason}")]
    Manifest { which: String, reason: String },
}

/// How many requests the log keeps.
const LOG_LIMIT: usize = 100_000;

/// State shared by the HTTP handlers and the controller.
#[derive(Debug)]
pub(crate) struct Shared {
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    log: Mutex<Vec<RecordedRequest>>,
    rollout: Mutex<Duration>,
    unpullable: Mutex<Vec<String>>,
    auth: Auth,
    /// Pokes the controller after writes.
    wake: Notify,
    /// While set, the controllers do nothing (a test's way to see what
    /// clients do while a cluster's controllers lag).
    held: std::sync::atomic::AtomicBool,
    /// Flips to true when the sandbox stops, ending open watches.
    stopping: tokio::sync::watch::Sender<bool>,
    address: OnceLock<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not take the sandbox down with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn lock_store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub(crate) fn lock_faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub(crate) fn lock_log(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        lock(&self.log)
    }

    /// Appends to the request log, forgetting the oldest half once it
    /// reaches [`LOG_LIMIT`] so a long-running demo does not grow forever.
    pub(crate) fn record(&self, request: RecordedRequest) {
        let mut log = self.lock_log();
        if log.len() >= LOG_LIMIT {
            log.drain(..LOG_LIMIT / 2);
        }
        log.push(request);
    }

    pub(crate) fn rollout(&self) -> Duration {
        *lock(&self.rollout)
    }

    pub(crate) fn set_rollout(&self, d: Duration) {
        *lock(&self.rollout) = d;
        self.wake.notify_one();
    }

    pub(crate) fn held(&self) -> bool {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn unpullable(&self) -> Vec<String> {
        lock(&self.unpullable).clone()
    }

    pub(crate) fn set_unpullable(&self, images: Vec<String>) {
        *lock(&self.unpullable) = images;
        self.wake.notify_one();
    }

    /// `host:port` the sandbox listens on.
    pub(crate) fn address(&self) -> String {
        self.address.get().cloned().unwrap_or_default()
    }
}

/// How to build a [`KubeSandbox`]; see [`KubeSandbox::builder`].
#[derive(Debug)]
pub struct KubeSandboxBuilder {
    listen: SocketAddr,
    rollout: Duration,
    seeds: Vec<(String, String)>,
    rbac: Vec<(String, String)>,
    rbac_on: Option<bool>,
    tokens: Vec<(String, Identity)>,
    anonymous: Option<Identity>,
    unpullable: Vec<String>,
}

impl Default for KubeSandboxBuilder {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            rollout: Duration::from_millis(200),
            seeds: Vec::new(),
            rbac: Vec::new(),
            rbac_on: None,
            tokens: Vec::new(),
            anonymous: None,
            unpullable: Vec::new(),
        }
    }
}

impl KubeSandboxBuilder {
    /// Where to listen; default `127.0.0.1:0` (a port the OS picks).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// How long a rollout takes from spec change to completion, and over
    /// which the Pods a scale adds become ready (default 200 ms; zero
    /// completes rollouts, and readies Pods, at once).
    pub fn rollout(mut self, d: Duration) -> Self {
        self.rollout = d;
        self
    }

    /// Objects to create at start (multi-document YAML manifests, `List`s
    /// allowed); their namespaces are created as needed.
    pub fn seed_yaml(mut self, yaml: &str) -> Self {
        let n = self.seeds.len() + 1;
        self.seeds.push((format!("seed #{n}"), yaml.to_owned()));
        self
    }

    /// Like [`Self::seed_yaml`], naming the source in errors.
    pub fn seed_named(mut self, name: &str, yaml: &str) -> Self {
        self.seeds.push((name.to_owned(), yaml.to_owned()));
        self
    }

    /// RBAC manifests (Roles, RoleBindings, ClusterRoles,
    /// ClusterRoleBindings, ServiceAccounts); loading any switches RBAC on.
    pub fn rbac_yaml(mut self, yaml: &str) -> Self {
        let n = self.rbac.len() + 1;
        self.rbac.push((format!("rbac #{n}"), yaml.to_owned()));
        self
    }

    /// Like [`Self::rbac_yaml`], naming the source in errors.
    pub fn rbac_named(mut self, name: &str, yaml: &str) -> Self {
        self.rbac.push((name.to_owned(), yaml.to_owned()));
        self
    }

    /// Forces RBAC on or off (default: on when RBAC manifests were given).
    /// Off, every caller acts as cluster-admin.
    pub fn enforce_rbac(mut self, on: bool) -> Self {
        self.rbac_on = Some(on);
        self
    }

    /// A bearer token for `user` (service accounts as
    /// `system:serviceaccount:NS:NAME`).
    pub fn token(mut self, token: &str, user: &str) -> Self {
        self.tokens.push((token.to_owned(), Identity::user(user)));
        self
    }

    /// A bearer token for a cluster administrator (`system:masters`).
    pub fn admin_token(mut self, token: &str) -> Self {
        self.tokens
            .push((token.to_owned(), Identity::admin("kubernetes-admin")));
        self
    }

    /// A bearer token for any identity.
    pub fn identity(mut self, token: &str, identity: Identity) -> Self {
        self.tokens.push((token.to_owned(), identity));
        self
    }

    /// An image whose pods never become ready (as if it could not be
    /// pulled): rollouts to it stall until their progress deadline.
    pub fn unpullable_image(mut self, image: &str) -> Self {
        self.unpullable.push(image.to_owned());
        self
    }

    /// Who callers without a token are (default `system:anonymous`).
    pub fn anonymous_as(mut self, identity: Identity) -> Self {
        self.anonymous = Some(identity);
        self
    }

    /// Callers without a token act as a cluster administrator even with
    /// RBAC on. kubectl sends no bearer token over plain HTTP, so this is
    /// how kubectl administers an RBAC-enforcing sandbox; it then checks
    /// other identities with `--as USER` (impersonation).
    pub fn anonymous_admin(self) -> Self {
        self.anonymous_as(Identity::admin("kubernetes-admin"))
    }

    /// Loads the manifests, binds the port and starts serving and the
    /// controller on the current tokio runtime.
    pub async fn start(self) -> Result<KubeSandbox, SandboxError> {
        let mut store = Store::default();
        for namespace in api::INITIAL_NAMESPACES {
            api::create(
                &mut store,
                &resources::NAMESPACE,
                "",
                api::namespace_object(namespace),
                &mut api::Write::default(),
            )
            .map_err(|e| SandboxError::Manifest {
                which: format!("the {namespace} namespace"),
                reason: e.to_string(),
            })?;
        }
        store.insert(&resources::CLUSTER_ROLE, cluster_admin_role());
        for (which, yaml) in self.seeds.iter().chain(&self.rbac) {
            load(&mut store, which, yaml)?;
        }
        let auth = Auth {
            tokens: self.tokens.into_iter().collect(),
            anonymous: self.anonymous.unwrap_or_else(Identity::anonymous),
            rbac: self.rbac_on.unwrap_or(!self.rbac.is_empty()),
        };
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| SandboxError::Bind {
                addr: self.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: self.listen,
            source,
        })?;
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            faults: Mutex::new(Faults::default()),
            log: Mutex::new(Vec::new()),
            rollout: Mutex::new(self.rollout),
            unpullable: Mutex::new(self.unpullable),
            auth,
            wake: Notify::new(),
            held: std::sync::atomic::AtomicBool::new(false),
            stopping: tokio::sync::watch::channel(false).0,
            address: OnceLock::new(),
        });
        let _ = shared.address.set(addr.to_string());
        let controller = tokio::spawn(controller::run(shared.clone()));
        let app = server::router(shared.clone())
            .into_make_service_with_connect_info::<server::ConnHandle>();
        let mut stopped = shared.stopping.subscribe();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(server::KillableListener(listener), app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "kube-sandbox server failed");
            }
        });
        tracing::info!(%addr, "kube-sandbox listening");
        Ok(KubeSandbox {
            addr,
            shared,
            controller,
            server: Some(server),
        })
    }
}

/// The built-in `cluster-admin` ClusterRole, for bindings to refer to.
fn cluster_admin_role() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "cluster-admin", "uid": uuid::Uuid::new_v4().to_string(),
                     "creationTimestamp": meta::now(),
                     "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]}
        ],
    })
}

fn load(store: &mut Store, which: &str, yaml: &str) -> Result<(), SandboxError> {
    use serde::Deserialize;
    for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = serde_json::Value::deserialize(doc).map_err(|source| SandboxError::Yaml {
            which: which.to_owned(),
            source,
        })?;
        if value.is_null() {
            continue;
        }
        api::seed(store, value).map_err(|reason| SandboxError::Manifest {
            which: which.to_owned(),
            reason,
        })?;
    }
    Ok(())
}

/// A running sandbox; stops when dropped (open watches end, the port is
/// released).
#[derive(Debug)]
pub struct KubeSandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    controller: tokio::task::JoinHandle<()>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl KubeSandbox {
    /// A builder with the defaults: `127.0.0.1:0`, 200 ms rollouts, RBAC
    /// off, only the namespaces a cluster starts with (`default`,
    /// `kube-node-lease`, `kube-public`, `kube-system`).
    pub fn builder() -> KubeSandboxBuilder {
        KubeSandboxBuilder::default()
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every API request so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock_log().clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock_log().clear();
    }

    /// Arms a fault; faults apply first-armed first.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock_faults().add(fault);
    }

    /// Disarms all faults.
    pub fn clear_faults(&self) {
        self.shared.lock_faults().clear();
    }

    /// Changes the rollout time, for the rollouts under way too; the Pods
    /// of a scale still starting become ready by the new time at the
    /// latest.
    pub fn set_rollout(&self, d: Duration) {
        self.shared.set_rollout(d);
    }

    /// Holds the controllers (nothing reconciles, as when a cluster's
    /// controller manager lags) until [`Self::release_controllers`].
    pub fn hold_controllers(&self) {
        self.shared
            .held
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Lets the controllers catch up with everything written meanwhile.
    pub fn release_controllers(&self) {
        self.shared
            .held
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.shared.wake.notify_one();
    }

    /// Replaces the images whose pods never become ready.
    pub fn set_unpullable_images(&self, images: &[&str]) {
        self.shared
            .set_unpullable(images.iter().map(|i| (*i).to_owned()).collect());
    }

    /// A stored object as JSON (`api_version` like `apps/v1`, `kind` like
    /// `Deployment`), for assertions that bypass the HTTP API.
    pub fn object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<serde_json::Value> {
        let rt = resources::by_kind(api_version, kind)?;
        let ns = if rt.namespaced { namespace } else { "" };
        self.shared.lock_store().get(rt, ns, name).cloned()
    }

    /// Stored objects of a kind in a namespace ("" for all namespaces or
    /// cluster-scoped kinds), by namespace and name.
    pub fn objects(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
    ) -> Vec<serde_json::Value> {
        let Some(rt) = resources::by_kind(api_version, kind) else {
            return Vec::new();
        };
        let ns = (rt.namespaced && !namespace.is_empty()).then_some(namespace);
        self.shared
            .lock_store()
            .list(rt, ns)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Stops serving and waits until the server has let go of its port.
    pub async fn stop(mut self) {
        let _ = self.shared.stopping.send(true);
        self.controller.abort();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for KubeSandbox {
    fn drop(&mut self) {
        let _ = self.shared.stopping.send(true);
        self.controller.abort();
    }
}
