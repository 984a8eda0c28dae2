//! Start-up: configuration errors end it with one line and exit code 64,
//! never printing a secret.

use std::path::Path;
use std::time::Duration;

use chatops_testkit::run_to_exit;

const LIMIT: Duration = Duration::from_secs(30);

fn worker() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_worker"))
}

#[tokio::test]
async fn bad_variables_exit_64_with_one_line_naming_each() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("CLUSTER_URL", "10.0.0.1:6443")], "CLUSTER_URL"),
        (
            &[
                ("CLUSTER_URL", "https://10.0.0.1:6443"),
                ("CLUSTER_CERT", "/nonexistent/ca.crt"),
            ],
            "CLUSTER_CERT",
        ),
        (
            &[
                ("CLUSTER_URL", "https://10.0.0.1:6443"),
                (
                    "CLUSTER_CERT",
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                ),
            ],
            "CLUSTER_CERT",
        ),
        (
            &[("CLUSTER_URL", "https://10.0.0.1:6443"), ("NATS_URL", ",,")],
            "NATS_URL",
        ),
        (
            &[
                ("CLUSTER_URL", "https://10.0.0.1:6443"),
                ("KUBERNETES_TOKEN", "a TOPSECRET b"),
            ],
            "KUBERNETES_TOKEN",
        ),
        (
            &[
                ("CLUSTER_URL", "https://10.0.0.1:6443"),
                ("NATS_URL", "nats://x:y:z"),
            ],
            "NATS_URL",
        ),
        (
            &[
                ("CLUSTER_URL", "https://10.0.0.1:6443"),
                ("WORKER_ADDR", "nowhere"),
            ],
            "WORKER_ADDR",
        ),
        (
            &[
                ("CLUSTER_URL", "https://10.0.0.1:6443"),
                ("WORKER_CONCURRENCY", "0"),
            ],
            "WORKER_CONCURRENCY",
        ),
        (
            &[
                ("CLUSTER_URL", "https://10.0.0.1:6443"),
                ("CHATOPS_STREAM_REPLICAS", "2"),
            ],
            "CHATOPS_STREAM_REPLICAS",
        ),
        (
            &[
                ("CLUSTER_URL", "https://10.0.0.1:6443"),
                ("LOG_FORMAT", "xml"),
            ],
            "LOG_FORMAT",
        ),
        (
            &[
                ("CLUSTER_URL", "https://10.0.0.1:6443"),
                ("RUST_LOG", "[[[bad"),
            ],
            "RUST_LOG",
        ),
        // Nothing to infer from: no in-cluster account, KUBECONFIG names no file.
        (
            &[
                ("KUBECONFIG", "/nonexistent/kubeconfig"),
                ("KUBERNETES_TOKEN", "TOPSECRET"),
            ],
            "CLUSTER_URL",
        ),
    ];
    for (env, variable) in cases {
        let exit = run_to_exit(worker(), env, LIMIT).await;
        assert_eq!(exit.code, Some(64), "{variable}: {exit:?}");
        let lines: Vec<_> = exit.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{variable}: one line expected: {:?}",
            exit.stderr
        );
        assert!(
            lines[0].contains(variable),
            "{:?} should name {variable}",
            lines[0]
        );
        assert!(
            !exit.stderr.contains("TOPSECRET"),
            "a secret was printed: {}",
            exit.stderr
        );
    }
}

/// A worker checks the cluster before NATS: unreachable is 69, a token
/// it refuses is 64 (the operator's to correct); reachable, it goes on to
/// NATS. A worker that started regardless took commands only to hand
/// each back.
#[tokio::test]
async fn a_worker_starts_only_with_a_cluster_that_answers_and_takes_its_token() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let nowhere = format!("http://127.0.0.1:{closed}");
    let kube = crate::helpers::sandbox(&[]).await;
    let url = kube.url();
    for (cluster, token, code, says) in [
        (
            nowhere.as_str(),
            "TOPSECRET",
            69,
            format!("cannot reach the cluster at {nowhere}"),
        ),
        (
            url.as_str(),
            "TOPSECRET",
            64,
            format!("the cluster at {url} refuses the worker's credentials (401)"),
        ),
        (
            url.as_str(),
            crate::helpers::TOKEN,
            69,
            "cannot connect to NATS".to_owned(),
        ),
    ] {
        let exit = run_to_exit(
            worker(),
            &[
                ("CLUSTER_URL", cluster),
                ("KUBERNETES_TOKEN", token),
                ("WORKER_ADDR", "127.0.0.1:0"),
                ("NATS_URL", "nats://127.0.0.1:1"),
            ],
            LIMIT,
        )
        .await;
        assert_eq!(exit.code, Some(code), "{exit:?}");
        assert!(exit.stderr.contains(&says), "{says}: {exit:?}");
        assert!(!exit.stderr.contains("TOPSECRET"));
    }
}
