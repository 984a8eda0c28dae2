//! The apply engine against the Kubernetes sandbox, under the project's
//! least-privilege role: every command kind, fences, errors.

use std::time::Duration;

use chatops_sandbox::kube::Fault;
use chatops_shared::{CommandKind, ContainerName, ImageRef, Outcome, Replicas};
use chatops_worker::error::ApplyError;
use chatops_worker::fence::Position;

use crate::helpers::{
    command, deployment_yaml, engine, image, reads, replicas, sandbox, settled, writes,
};

fn at(seq: u64) -> Position {
    Position {
        epoch: "test-epoch".into(),
        seq,
    }
}

fn scale(n: i128) -> CommandKind {
    CommandKind::Scale {
        replicas: Replicas::new(n, 100).expect("valid"),
    }
}

fn set_image(container: Option<&str>, image: &str) -> CommandKind {
    CommandKind::SetImage {
        container: container.map(|c| ContainerName::parse(c).expect("valid")),
        image: ImageRef::parse(image).expect("valid"),
    }
}

#[tokio::test]
async fn every_write_applies_and_reports_before_and_after() {
    let kube = sandbox(&[deployment_yaml("web", 2, &[("nginx", "nginx:1.20")])]).await;
    let engine = engine(&kube).await;

    let r = engine
        .apply(&command(scale(5), "web"), &at(1))
        .await
        .expect("scale");
    assert_eq!(
        (r.outcome, r.before.as_deref(), r.after.as_deref()),
        (Outcome::Applied, Some("2"), Some("5"))
    );
    assert_eq!(r.message, "scaled web from 2 to 5 replicas");
    assert_eq!(replicas(&kube, "web"), 5);

    let r = engine
        .apply(&command(set_image(None, "nginx:1.21"), "web"), &at(2))
        .await
        .expect("deploy");
    assert_eq!(
        (r.before.as_deref(), r.after.as_deref()),
        (Some("nginx:1.20"), Some("nginx:1.21"))
    );
    assert_eq!(image(&kube, "web", 0), "nginx:1.21");

    let r = engine
        .apply(&command(CommandKind::Restart, "web"), &at(3))
        .await
        .expect("restart");
    assert_eq!(r.outcome, Outcome::Applied);
    assert!(r.after.is_some(), "restartedAt recorded");
    let d = kube
        .object("apps/v1", "Deployment", "default", "web")
        .expect("web");
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );

    // Three templates so far (1.20, 1.21, 1.21 restarted): back to the previous.
    let r = engine
        .apply(
            &command(CommandKind::Rollback { revision: Some(1) }, "web"),
            &at(4),
        )
        .await
        .expect("rollback");
    assert_eq!(r.outcome, Outcome::Applied, "{}", r.message);
    assert_eq!(image(&kube, "web", 0), "nginx:1.20");
    assert!(r.message.contains("revision 1"), "{}", r.message);

    // The fences are on the deployment.
    let d = kube
        .object("apps/v1", "Deployment", "default", "web")
        .expect("web");
    assert_eq!(
        d["metadata"]["annotations"]["chatops.dev/replicas-fence"],
        "test-epoch/1"
    );
    assert_eq!(
        d["metadata"]["annotations"]["chatops.dev/template-fence"],
        "test-epoch/4"
    );

    // Scaled to none, it says what that means.
    let r = engine
        .apply(&command(scale(0), "web"), &at(5))
        .await
        .expect("scale");
    assert_eq!(
        r.message,
        "scaled web from 5 to 0 replicas; it runs no pods now"
    );
}

/// A rollback reads revisions from the ReplicaSets, which the deployment
/// controller makes after a change: one that came at once after a deploy
/// waits for the controller to see it, rather than rolling back from what
/// the ReplicaSets showed before (it was "no earlier revision").
#[tokio::test]
async fn a_rollback_right_after_a_change_waits_for_the_controller_to_see_it() {
    let kube = sandbox(&[deployment_yaml("web", 1, &[("nginx", "nginx:1.20")])]).await;
    let engine = engine(&kube).await;
    settled(&kube, "web").await;
    kube.hold_controllers();
    engine
        .apply(&command(set_image(None, "nginx:1.21"), "web"), &at(1))
        .await
        .expect("deploy");
    kube.clear_requests();
    let rollback = command(CommandKind::Rollback { revision: None }, "web");
    let position = at(2);
    let (r, ()) = tokio::join!(engine.apply(&rollback, &position), async {
        // Released once the rollback has read the deployment again; one
        // that never does has answered from stale ReplicaSets by then.
        let reread =
            chatops_testkit::eventually("a second read", crate::helpers::LIMIT, || async {
                (reads(&kube, "web") >= 2).then_some(())
            });
        let _ = tokio::time::timeout(Duration::from_secs(5), reread).await;
        kube.release_controllers();
    });
    let r = r.expect("rolled back");
    assert_eq!(
        r.message,
        "rolled web back to revision 1 (nginx=nginx:1.20)"
    );
    assert_eq!(image(&kube, "web", 0), "nginx:1.20");
}

#[tokio::test]
async fn rolling_back_to_the_template_it_runs_changes_nothing_and_says_so() {
    let kube = sandbox(&[deployment_yaml("web", 2, &[("nginx", "nginx:1.20")])]).await;
    let engine = engine(&kube).await;
    engine
        .apply(&command(set_image(None, "nginx:1.21"), "web"), &at(1))
        .await
        .expect("deploy");
    for (seq, to) in [(2, Some(2)), (3, None)] {
        let r = engine
            .apply(
                &command(CommandKind::Rollback { revision: to }, "web"),
                &at(seq),
            )
            .await
            .expect("rollback");
        assert_eq!(r.outcome, Outcome::Applied, "{}", r.message);
        assert_eq!(r.unchanged, to.is_some(), "{}", r.message);
        if to.is_some() {
            assert_eq!(
                r.message,
                "web is already at revision 2 (nginx=nginx:1.21); nothing changed"
            );
            assert_eq!(image(&kube, "web", 0), "nginx:1.21");
        } else {
            assert_eq!(
                r.message,
                "rolled web back to revision 1 (nginx=nginx:1.20)"
            );
            assert_eq!(image(&kube, "web", 0), "nginx:1.20");
        }
    }
    // Back across a restart: the same images, and a change all the same.
    engine
        .apply(&command(CommandKind::Restart, "web"), &at(4))
        .await
        .expect("restart");
    let r = engine
        .apply(
            &command(CommandKind::Rollback { revision: None }, "web"),
            &at(5),
        )
        .await
        .expect("rollback");
    assert_eq!(r.before, r.after, "{}", r.message);
    assert!(!r.unchanged, "{}", r.message);
    assert!(
        r.message.ends_with("; the images are as they were, as the two revisions differ only in the rest of the pod template (a restart's time, say); 'history web in default' lists the revisions"),
        "{}",
        r.message
    );

    // A scale or deploy that finds the deployment already so.
    for (seq, kind) in [(6, scale(2)), (7, set_image(None, "nginx:1.20"))] {
        let r = engine
            .apply(&command(kind, "web"), &at(seq))
            .await
            .expect("no-op");
        assert!(
            r.unchanged && r.message.ends_with("nothing changed"),
            "{}",
            r.message
        );
    }
}

#[tokio::test]
async fn list_names_deployments_short_of_ready_replicas_first() {
    let kube = sandbox(&[
        deployment_yaml("web", 3, &[("nginx", "nginx:1.20")]),
        deployment_yaml("api", 1, &[("api", "api:1")]),
    ])
    .await;
    let engine = engine(&kube).await;
    settled(&kube, "api").await;
    settled(&kube, "web").await;
    kube.hold_controllers();
    engine
        .apply(&command(scale(5), "web"), &at(1))
        .await
        .expect("scale");
    let mut all = command(CommandKind::List { only: Vec::new() }, "web");
    all.deployment = None;
    let listed = engine.apply(&all, &at(2)).await.expect("list");
    assert!(
        listed
            .message
            .starts_with("2 deployments in default: web 3/5 (nginx=nginx:1.20); api 1/1"),
        "{}",
        listed.message
    );
    kube.release_controllers();
}

#[tokio::test]
async fn read_only_commands_change_nothing() {
    let kube = sandbox(&[
        deployment_yaml("web", 3, &[("nginx", "nginx:1.20")]),
        deployment_yaml("api", 1, &[("api", "api:1")]),
    ])
    .await;
    let engine = engine(&kube).await;
    let before = writes(&kube);
    let status = engine
        .apply(&command(CommandKind::Status, "web"), &at(1))
        .await
        .expect("status");
    assert!(
        status.message.contains("web in default: 3 desired"),
        "{}",
        status.message
    );
    assert!(
        status.message.contains("nginx=nginx:1.20"),
        "{}",
        status.message
    );
    let mut list_cmd = command(CommandKind::List { only: Vec::new() }, "web");
    list_cmd.deployment = None;
    let list = engine.apply(&list_cmd, &at(2)).await.expect("list");
    assert!(
        list.message.contains("2 deployments in default")
            && list.message.contains("api")
            && list.message.contains("web"),
        "{}",
        list.message
    );
    // A person a policy limits to some deployments sees those alone.
    list_cmd.kind = CommandKind::List {
        only: vec!["we?".to_owned(), "nope*".to_owned()],
    };
    let narrowed = engine.apply(&list_cmd, &at(2)).await.expect("list");
    assert!(
        narrowed
            .message
            .starts_with("1 deployment in default of those you may see (we?, nope*): web ")
            && !narrowed.message.contains("api"),
        "{}",
        narrowed.message
    );
    list_cmd.kind = CommandKind::List {
        only: vec!["nope*".to_owned()],
    };
    let none = engine.apply(&list_cmd, &at(2)).await.expect("list");
    assert_eq!(
        none.message,
        "no deployments in namespace default of those you may see (nope*)"
    );
    let history = engine
        .apply(&command(CommandKind::History, "web"), &at(3))
        .await
        .expect("history");
    assert!(
        history.message.contains("revision 1: nginx:1.20"),
        "{}",
        history.message
    );
    assert_eq!(writes(&kube), before, "no writes");
}

#[tokio::test]
async fn a_repeated_command_is_already_applied_and_a_stale_one_superseded() {
    let kube = sandbox(&[deployment_yaml("web", 2, &[("nginx", "nginx:1.20")])]).await;
    let engine = engine(&kube).await;
    let cmd = command(scale(4), "web");
    engine.apply(&cmd, &at(10)).await.expect("first");
    let writes_after_first = writes(&kube);

    let again = engine.apply(&cmd, &at(10)).await.expect("redelivered");
    assert_eq!(again.outcome, Outcome::AlreadyApplied);
    let stale = engine
        .apply(&command(scale(9), "web"), &at(7))
        .await
        .expect("older");
    assert_eq!(stale.outcome, Outcome::Superseded);
    assert!(stale.message.contains("#10"), "{}", stale.message);
    // Redelivered after a worker stopped, a command may have taken effect
    // before the later one: the reply does not say it never did.
    assert!(
        stale.message.contains("this one is not applied over it"),
        "{}",
        stale.message
    );
    assert_eq!(writes(&kube), writes_after_first, "neither wrote anything");
    assert_eq!(replicas(&kube, "web"), 4);

    // The replicas fence does not block a template change, and vice versa.
    let r = engine
        .apply(&command(set_image(None, "nginx:1.22"), "web"), &at(8))
        .await
        .expect("image");
    assert_eq!(r.outcome, Outcome::Applied);
}

/// A restart changes no field a deploy does: applied out of the stream's
/// order (two workers, a backlog), each still takes effect, as in order.
/// A restart stays fenced against restarts, and against the template fence
/// that recorded restarts before they had their own.
#[tokio::test]
async fn a_deploy_queued_before_a_restart_is_made_when_the_restart_came_first() {
    let rollback = || CommandKind::Rollback { revision: None };
    let deploy = || set_image(None, "nginx:1.21");
    // Each case on a deployment of its own: commands at stream positions,
    // applied in the order listed, and the outcome each must have.
    let cases: [&[(CommandKind, u64, Outcome)]; 3] = [
        &[
            (CommandKind::Restart, 2, Outcome::Applied),
            (deploy(), 1, Outcome::Applied),
            (CommandKind::Restart, 1, Outcome::Superseded),
        ],
        // A rollback replaces the whole template, restart stamp and all:
        // one queued before a restart that was applied first is superseded
        // by it, and a restart queued before an applied rollback is too.
        &[
            (deploy(), 1, Outcome::Applied),
            (CommandKind::Restart, 3, Outcome::Applied),
            (rollback(), 2, Outcome::Superseded),
            (rollback(), 5, Outcome::Applied),
            (CommandKind::Restart, 4, Outcome::Superseded),
            (rollback(), 5, Outcome::AlreadyApplied),
        ],
        // Recorded before restarts had a fence of their own: the template's.
        &[
            (deploy(), 5, Outcome::Applied),
            (CommandKind::Restart, 5, Outcome::AlreadyApplied),
        ],
    ];
    for (i, case) in cases.into_iter().enumerate() {
        let kube = sandbox(&[deployment_yaml("web", 2, &[("nginx", "nginx:1.20")])]).await;
        let engine = engine(&kube).await;
        for (kind, seq, want) in case {
            let r = engine
                .apply(&command(kind.clone(), "web"), &at(*seq))
                .await
                .unwrap_or_else(|e| panic!("case {i}, {kind:?} at {seq}: {e}"));
            assert_eq!(
                r.outcome, *want,
                "case {i}, {kind:?} at {seq}: {}",
                r.message
            );
        }
        if i == 0 {
            assert_eq!(image(&kube, "web", 0), "nginx:1.21");
        }
    }
}

#[tokio::test]
async fn containers_are_chosen_by_name_or_when_there_is_only_one() {
    let kube = sandbox(&[deployment_yaml(
        "pod",
        1,
        &[("app", "app:1"), ("proxy", "envoy:1")],
    )])
    .await;
    let engine = engine(&kube).await;
    let err = engine
        .apply(&command(set_image(None, "app:2"), "pod"), &at(1))
        .await
        .expect_err("ambiguous");
    assert!(
        matches!(&err, ApplyError::Rejected(m) if m.contains("several containers (app, proxy)")),
        "{err}"
    );
    // The example names the namespace: followed as given, it changes this
    // deployment, not one of the same name in the default namespace.
    assert!(
        err.to_string()
            .contains("e.g. 'set image pod app=app:2 in default'"),
        "{err}"
    );
    // It names the container running the image's repository, not the
    // first one, and none where no one container runs it.
    for (image, which) in [
        ("envoy:2", "e.g. 'set image pod proxy=envoy:2 in default'"),
        (
            "docker.io/library/envoy:2",
            "e.g. 'set image pod proxy=docker.io/library/envoy:2 in default'",
        ),
        (
            "redis:7",
            "say which: 'set image pod <container>=redis:7 in default'",
        ),
    ] {
        let err = engine
            .apply(&command(set_image(None, image), "pod"), &at(1))
            .await
            .expect_err("ambiguous");
        assert!(err.to_string().contains(which), "{image}: {err}");
    }
    let err = engine
        .apply(&command(set_image(Some("db"), "db:2"), "pod"), &at(2))
        .await
        .expect_err("no such container");
    assert!(
        matches!(&err, ApplyError::Rejected(m) if m.contains("no container db; its containers are app, proxy")),
        "{err}"
    );
    engine
        .apply(&command(set_image(Some("proxy"), "envoy:2"), "pod"), &at(3))
        .await
        .expect("named");
    assert_eq!(
        (image(&kube, "pod", 0), image(&kube, "pod", 1)),
        ("app:1".to_owned(), "envoy:2".to_owned())
    );
}

#[tokio::test]
async fn what_the_cluster_lacks_is_refused_and_forbidden_fails_at_once_in_plain_words() {
    let kube = sandbox(&[
        deployment_yaml("web", 1, &[("nginx", "nginx:1")]),
        deployment_yaml("frontend", 1, &[("nginx", "nginx:1")]),
    ])
    .await;
    let engine = engine(&kube).await;
    for (kind, name) in [
        (scale(2), "missing"),
        (CommandKind::Status, "missing"),
        (CommandKind::Restart, "missing"),
    ] {
        let err = engine
            .apply(&command(kind, name), &at(1))
            .await
            .expect_err("404");
        assert!(
            matches!(&err, ApplyError::Rejected(m) if m == "deployment missing not found in namespace default"),
            "{err:?}"
        );
    }
    // A slip of a name there is says which.
    let err = engine
        .apply(&command(scale(2), "frontned"), &at(1))
        .await
        .expect_err("404");
    assert!(
        matches!(&err, ApplyError::Rejected(m) if m == "deployment frontned not found in namespace default; did you mean 'frontend'?"),
        "{err:?}"
    );
    // Not one the sender's policy keeps from them.
    let mut confined = command(scale(2), "frontned");
    confined.visible = vec!["web*".to_owned(), "front".to_owned()];
    let err = engine.apply(&confined, &at(1)).await.expect_err("404");
    assert!(
        matches!(&err, ApplyError::Rejected(m) if m == "deployment frontned not found in namespace default"),
        "{err:?}"
    );
    let mut prod = command(scale(2), "web");
    prod.namespace = chatops_shared::Namespace::parse("prod").expect("valid");
    let err = engine.apply(&prod, &at(2)).await.expect_err("403");
    assert!(
        matches!(&err, ApplyError::Permanent(m) if m == "the bot may not get deployments in namespace prod"),
        "{err:?}"
    );
    for (revision, says) in [
        (Some(9), "has no revision 9"),
        (None, "has no earlier revision"),
    ] {
        let err = engine
            .apply(&command(CommandKind::Rollback { revision }, "web"), &at(3))
            .await
            .expect_err("no revision");
        assert!(
            matches!(&err, ApplyError::Rejected(m) if m.contains(says)),
            "{err:?}"
        );
    }
    assert_eq!(writes(&kube), 0, "nothing was changed");
}

/// A bot bound cluster-wide may read namespaces, so `list` can tell a
/// namespace that is not there from one without deployments (Kubernetes
/// lists both as empty), and a command for a deployment a missing
/// namespace from a missing deployment.
#[tokio::test]
async fn a_missing_namespace_is_told_apart_where_the_bot_may_read_namespaces() {
    const READER: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: reader
rules:
  - apiGroups: [\"apps\"]
    resources: [\"deployments\"]
    verbs: [\"get\", \"list\"]
  - apiGroups: [\"\"]
    resources: [\"namespaces\"]
    verbs: [\"get\"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: reader
subjects:
  - kind: ServiceAccount
    name: chatops-bot
    namespace: default
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: reader
";
    let list_in = |ns: &str| {
        let mut list = command(CommandKind::List { only: Vec::new() }, "web");
        list.deployment = None;
        list.namespace = chatops_shared::Namespace::parse(ns).expect("valid");
        list
    };
    let least = sandbox(&[]).await;
    let err = engine(&least)
        .await
        .apply(&list_in("nosuchns"), &at(1))
        .await
        .expect_err("a Role per namespace cannot let the bot read another");
    assert!(
        matches!(&err, ApplyError::Permanent(m) if m == "the bot may not list deployments in namespace nosuchns"),
        "{err:?}"
    );

    let kube = crate::helpers::sandbox_with(
        &["apiVersion: v1\nkind: Namespace\nmetadata:\n  name: quiet\n".into()],
        READER,
    )
    .await;
    let engine = engine(&kube).await;
    let err = engine
        .apply(&list_in("nosuchns"), &at(1))
        .await
        .expect_err("no such namespace");
    assert!(
        matches!(&err, ApplyError::Rejected(m) if m == "namespace nosuchns not found"),
        "{err:?}"
    );
    let quiet = engine
        .apply(&list_in("quiet"), &at(2))
        .await
        .expect("an empty namespace is listed");
    assert_eq!(quiet.message, "no deployments in namespace quiet");
    // So can a command for one deployment.
    let status_in = |ns: &str| {
        let mut status = command(CommandKind::Status, "web");
        status.namespace = chatops_shared::Namespace::parse(ns).expect("valid");
        status
    };
    let err = engine
        .apply(&status_in("nosuchns"), &at(3))
        .await
        .expect_err("no such namespace");
    assert!(
        matches!(&err, ApplyError::Rejected(m) if m == "namespace nosuchns not found"),
        "{err:?}"
    );
    let err = engine
        .apply(&status_in("quiet"), &at(4))
        .await
        .expect_err("no such deployment");
    assert!(
        matches!(&err, ApplyError::Rejected(m) if m == "deployment web not found in namespace quiet"),
        "{err:?}"
    );
    assert_eq!(writes(&kube), 0, "nothing was changed");
}

#[tokio::test]
async fn each_restart_starts_a_rollout_however_close_together() {
    let kube = sandbox(&[deployment_yaml("web", 1, &[("nginx", "nginx:1")])]).await;
    let engine = engine(&kube).await;
    let mut stamps = Vec::new();
    for seq in 1..=3 {
        let r = engine
            .apply(&command(CommandKind::Restart, "web"), &at(seq))
            .await
            .expect("restart");
        assert_eq!(r.outcome, Outcome::Applied, "{}", r.message);
        assert_ne!(r.before, r.after, "restart {seq} changed the template");
        stamps.push(r.after.expect("restartedAt recorded"));
    }
    stamps.dedup();
    assert_eq!(stamps.len(), 3, "{stamps:?}");
    let history = engine
        .apply(&command(CommandKind::History, "web"), &at(4))
        .await
        .expect("history");
    assert!(
        history
            .message
            .ends_with("revisions, newest first: revision 4: nginx:1; revision 3: nginx:1; revision 2: nginx:1; revision 1: nginx:1"),
        "three restarts, three new revisions: {}",
        history.message
    );
    // History shows the five newest, and says what it leaves out.
    for seq in 5..=7 {
        engine
            .apply(&command(CommandKind::Restart, "web"), &at(seq))
            .await
            .expect("restart");
    }
    let history = engine
        .apply(&command(CommandKind::History, "web"), &at(8))
        .await
        .expect("history");
    assert!(
        history
            .message
            .contains("revision 7: nginx:1; revision 6: nginx:1; revision 5: nginx:1; revision 4: nginx:1; revision 3: nginx:1; older revisions: 2, 1"),
        "{}",
        history.message
    );
}

#[tokio::test]
async fn conflicts_are_re_read_and_transient_errors_say_so() {
    let kube = sandbox(&[deployment_yaml("web", 1, &[("nginx", "nginx:1")])]).await;
    let engine = engine(&kube).await;
    kube.inject(Fault::status(409).method("PATCH").times(2));
    let r = engine
        .apply(&command(scale(3), "web"), &at(1))
        .await
        .expect("after two conflicts");
    assert_eq!(r.after.as_deref(), Some("3"));

    kube.inject(Fault::status(503).method("GET").times(1));
    let err = engine
        .apply(&command(scale(4), "web"), &at(2))
        .await
        .expect_err("503");
    assert!(matches!(err, ApplyError::Transient { .. }), "{err}");
    kube.inject(Fault::too_many_requests(7).method("GET").times(1));
    let err = engine
        .apply(&command(scale(4), "web"), &at(2))
        .await
        .expect_err("429");
    assert!(
        matches!(err, ApplyError::Transient { retry_after: Some(d), .. } if d.as_secs() == 7),
        "{err:?}"
    );
    kube.inject(Fault::close().method("GET").times(1));
    let err = engine
        .apply(&command(scale(4), "web"), &at(2))
        .await
        .expect_err("closed");
    assert!(matches!(err, ApplyError::Transient { .. }), "{err}");
    engine
        .apply(&command(scale(4), "web"), &at(2))
        .await
        .expect("then it works");
    assert_eq!(replicas(&kube, "web"), 4);
}

/// A dry run follows the deployment as the dry runs before it would have
/// left it, also when the cluster's copy changes meanwhile (its
/// controllers update the status while a replay runs): the second of two
/// dry-run scales to 3 finds 3 already, rather than conflicting, reading
/// the cluster's copy again and foretelling a change from 1.
#[tokio::test]
async fn a_dry_run_keeps_to_the_would_be_deployment_while_the_cluster_changes() {
    let kube = sandbox(&[deployment_yaml("web", 1, &[("nginx", "nginx:1.20")])]).await;
    let live = engine(&kube).await;
    let dry = engine(&kube).await.dry_run();
    let (first, would_be) = dry
        .apply_write(&command(scale(3), "web"), &at(1), None)
        .await
        .expect("dry run");
    assert_eq!(first.message, "scaled web from 1 to 3 replicas");
    live.apply(&command(set_image(None, "nginx:1.21"), "web"), &at(2))
        .await
        .expect("a change meanwhile");
    let (second, _) = dry
        .apply_write(&command(scale(3), "web"), &at(3), Some(would_be))
        .await
        .expect("dry run");
    assert_eq!(
        second.message,
        "web already had 3 replicas; nothing changed"
    );
    assert_eq!(replicas(&kube, "web"), 1, "the dry runs stored nothing");
}

/// A dry run keeps the revisions the deployment controller would: ten old
/// ones besides the newest (`revisionHistoryLimit`), so after twelve
/// deploys the first two revisions are gone, as a replay would find.
#[tokio::test]
async fn a_dry_run_keeps_as_many_revisions_as_the_controller_would() {
    let kube = sandbox(&[deployment_yaml("web", 1, &[("nginx", "nginx:1.20")])]).await;
    settled(&kube, "web").await;
    let dry = engine(&kube).await.dry_run();
    let mut known = None;
    for n in 1..=12 {
        let deploy = command(set_image(None, &format!("nginx:2.{n}")), "web");
        let (_, after) = dry
            .apply_write(&deploy, &at(n), known.take())
            .await
            .expect("dry run");
        known = Some(after);
    }
    let rollback = |revision| {
        command(
            CommandKind::Rollback {
                revision: Some(revision),
            },
            "web",
        )
    };
    let gone = dry
        .apply_write(&rollback(2), &at(13), known.clone())
        .await
        .expect_err("revision 2 is gone");
    assert!(
        matches!(&gone, ApplyError::Rejected(why) if why.contains("its revisions are 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13")),
        "{gone:?}"
    );
    let (kept, _) = dry
        .apply_write(&rollback(3), &at(14), known)
        .await
        .expect("revision 3 is kept");
    assert!(
        kept.message
            .contains("back to revision 3 (nginx=nginx:2.2)"),
        "{}",
        kept.message
    );
}

/// A dry run does not read the server's answer to its patch, but a refusal
/// still comes back as the replay would meet it, and the next dry run goes
/// on from the deployment as it was.
#[tokio::test]
async fn a_dry_run_patch_the_server_refuses_is_reported_as_refused() {
    let kube = sandbox(&[deployment_yaml("web", 1, &[("nginx", "nginx:1.20")])]).await;
    let dry = engine(&kube).await.dry_run();
    kube.inject(Fault::status(403).method("PATCH"));
    let refused = dry
        .apply_write(&command(scale(3), "web"), &at(1), None)
        .await
        .expect_err("refused");
    assert!(
        matches!(&refused, ApplyError::Permanent(why) if why == "the bot may not patch deployments in namespace default"),
        "{refused:?}"
    );
    let (then, _) = dry
        .apply_write(&command(scale(3), "web"), &at(2), None)
        .await
        .expect("the next dry run");
    assert_eq!(then.message, "scaled web from 1 to 3 replicas");
    assert_eq!(replicas(&kube, "web"), 1, "the dry runs stored nothing");
}
