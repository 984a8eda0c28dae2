//! Building the Kubernetes client from configuration: the seed's explicit
//! variables, or the standard in-cluster / KUBECONFIG inference.

use base64::Engine;
use chatops_shared::config::{CLUSTER_CERT, CLUSTER_URL, ClusterConfig, ConfigError};
use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};

/// A client for the configured cluster. Errors are configuration errors.
pub async fn client(config: &ClusterConfig) -> Result<kube::Client, ConfigError> {
    let kube_config = match config {
        ClusterConfig::Infer => kube::Config::infer().await.map_err(|e| {
            ConfigError::new(
                CLUSTER_URL,
                format!("is not set and no cluster could be inferred (in-cluster service account or KUBECONFIG): {e}"),
            )
        })?,
        ClusterConfig::Explicit { name, url, ca_pem, username, token } => {
            let kubeconfig = Kubeconfig {
                clusters: vec![NamedCluster {
                    name: name.clone(),
                    cluster: Some(Cluster {
                        server: Some(url.clone()),
                        certificate_authority_data: ca_pem
                            .as_ref()
                            .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem)),
                        ..Cluster::default()
                    }),
                    ..NamedCluster::default()
                }],
                auth_infos: vec![NamedAuthInfo {
                    name: username.clone().unwrap_or_else(|| "chatops".to_owned()),
                    auth_info: Some(AuthInfo {
                        token: token.clone(),
                        ..AuthInfo::default()
                    }),
                    ..NamedAuthInfo::default()
                }],
                contexts: vec![NamedContext {
                    name: name.clone(),
                    context: Some(Context {
                        cluster: name.clone(),
                        user: Some(username.clone().unwrap_or_else(|| "chatops".to_owned())),
                        ..Context::default()
                    }),
                    ..NamedContext::default()
                }],
                current_context: Some(name.clone()),
                ..Kubeconfig::default()
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| ConfigError::new(CLUSTER_URL, format!("cannot be used: {e}")))?
        }
    };
    let mut kube_config = kube_config;
    // The worker retries by error kind within its own budget (and reports
    // each retry); kube's built-in retry would hide up to 15 more inside
    // one call.
    kube_config.default_retry = false;
    kube::Client::try_from(kube_config).map_err(|e| match e {
        // The CA given is what the TLS set-up could not take.
        kube::Error::RustlsTls(kube::client::RustlsTlsError::AddRootCertificate(_)) => {
            ConfigError::new(CLUSTER_CERT, format!("cannot be used: {e}"))
        }
        e => ConfigError::new(CLUSTER_URL, format!("cannot be used: {e}")),
    })
}

/// Why the cluster cannot be used at start.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    /// The cluster answered, refusing the worker's credentials: theirs to
    /// correct (exit 64).
    #[error(
        "the cluster at {url} refuses the worker's credentials ({code}); check KUBERNETES_TOKEN (or the service account) and CLUSTER_CERT"
    )]
    Refused { url: String, code: u16 },
    /// No answer (exit 69).
    #[error("cannot reach the cluster at {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

/// Asks the cluster for its version, as a first call that proves it is
/// there and takes the worker's credentials: a worker that could not
/// reach it would take commands only to hand each back. A few tries, a
/// second apart, ride out a cluster starting alongside.
pub async fn check(client: &kube::Client, url: &str) -> Result<(), Unusable> {
    const TRIES: u32 = 3;
    const TRY_FOR: std::time::Duration = std::time::Duration::from_secs(5);
    let mut last = String::new();
    for attempt in 1..=TRIES {
        // kube's own connect timeout is 30 s: a silent address would take
        // a minute and a half to give up on.
        let answer = tokio::time::timeout(TRY_FOR, client.apiserver_version())
            .await
            .unwrap_or_else(|_| {
                Err(kube::Error::Service(
                    format!("no answer within {}s", TRY_FOR.as_secs()).into(),
                ))
            });
        match answer {
            Ok(version) => {
                tracing::info!(cluster = %url, version = %version.git_version, "cluster reached");
                return Ok(());
            }
            // 401; a 403 means the same on a cluster that answers /version
            // only to some.
            Err(kube::Error::Api(status)) if matches!(status.code, 401 | 403) => {
                return Err(Unusable::Refused {
                    url: url.to_owned(),
                    code: status.code,
                });
            }
            Err(e) => {
                last = e.to_string();
                tracing::warn!(cluster = %url, attempt, error = %e, "cannot reach the cluster yet");
            }
        }
        if attempt < TRIES {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
    Err(Unusable::Unreachable {
        url: url.to_owned(),
        reason: last,
    })
}
