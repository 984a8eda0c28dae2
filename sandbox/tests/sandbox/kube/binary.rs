//! The `kube-sandbox` binary: flags, the address line, seeds and RBAC from
//! files, and a clean stop on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::helpers::{BOT_TOKEN, client, resources};

#[tokio::test]
async fn the_binary_prints_its_address_serves_its_seeds_enforces_rbac_and_stops_on_sigterm() {
    let r = resources();
    let file = |f: &str| r.join(f).display().to_string();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-sandbox"))
        .args(["--listen", "127.0.0.1:0", "--rollout-seconds", "0.1"])
        .args(["--seed", &file("nginx-deployment.yaml")])
        .args([
            "--rbac",
            &file("sa.yaml"),
            "--rbac",
            &file("role.yaml"),
            "--rbac",
            &file("rb.yaml"),
        ])
        .args([
            "--token",
            &format!("{BOT_TOKEN}=system:serviceaccount:default:chatops-bot"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run kube-sandbox");
    let stdout = child.stdout.take().expect("stdout");
    let first = tokio::time::timeout(
        Duration::from_secs(30),
        BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("the address line in time")
    .expect("stdout readable")
    .expect("a first line");
    let url = first
        .strip_prefix("kube-sandbox listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "{url}"
    );

    let api: Api<Deployment> = Api::namespaced(client(&url, Some(BOT_TOKEN)).await, "default");
    let d = api
        .get("nginx-deployment")
        .await
        .expect("the seed is served");
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(2));
    match api
        .delete("nginx-deployment", &DeleteParams::default())
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403),
        other => panic!("RBAC from --rbac files must forbid delete, got {other:?}"),
    }

    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("stops within 10 s of SIGTERM")
        .expect("wait");
    assert!(exit.success(), "{exit}");
}
