//! Building the Kubernetes client from configuration: the seed's explicit
//! variables, or the standard in-cluster / KUBECONFIG inference.

use base64::Engine;
use chatops_shared::config::{CLUSTER_URL, ClusterConfig, ConfigError};
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
    kube::Client::try_from(kube_config)
        .map_err(|e| ConfigError::new(CLUSTER_URL, format!("cannot be used: {e}")))
}
