//! What a message comes to, before anything is published: the policy first
//! (someone it lets run nothing hears only that), then the language, then
//! the policy again for the command found. Ingestion acts on the reading;
//! `chatops parse` prints it, so the two cannot drift apart.

use chatops_shared::{CommandKind, ReplicasError, Verb};

use crate::language::{self, Defaults, ParseError, Parsed, Request};
use crate::policy::{Access, Denied, Policy};
use crate::replies;

/// Who sent the message, and where.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub email: &'a str,
    pub room_id: &'a str,
}

/// What the bot makes of a message.
#[derive(Debug)]
pub enum Reading {
    /// A command the sender may run.
    Command(Request),
    /// `help`: what the sender may ask.
    Help(String),
    /// No command: why (a refusal, or what is wrong with the message), and
    /// the outcome to count it under.
    Refused {
        markdown: String,
        outcome: &'static str,
    },
}

/// Reads `text` (the message without the bot's mention) for `sender`.
/// Without a policy, nobody's rights are checked: every verb is open up to
/// the configured replica bound (`chatops parse` without `--as`).
pub fn read(
    text: &str,
    sender: Sender<'_>,
    policy: Option<&Policy>,
    defaults: &Defaults,
) -> Reading {
    let Sender { email, room_id } = sender;
    let refused = |markdown: String, outcome| Reading::Refused { markdown, outcome };
    let verbs = || match policy {
        Some(policy) => policy.verbs_for(email, room_id),
        None => Verb::ALL.to_vec(),
    };
    if let Some(denial) = policy.and_then(|p| p.refuses_outright(email, room_id)) {
        tracing::info!(actor = %email, %denial, "message refused before parsing");
        return refused(replies::refused(email, &denial), "denied");
    }
    let max = match policy {
        Some(policy) => policy.max_replicas_for(email),
        None => Some(defaults.max_replicas),
    };
    let mut request = match language::parse(text, defaults) {
        Ok(Parsed::Command(request)) => request,
        Ok(Parsed::Thanks) => return Reading::Help(replies::welcome(email)),
        Ok(parsed @ (Parsed::Help | Parsed::HelpOn(_))) => {
            let limits = policy.map_or_else(Vec::new, |p| p.limits_for(email, room_id));
            let verbs = verbs();
            return Reading::Help(match parsed {
                // On a form the sender may use; else what they may.
                Parsed::HelpOn(form) if form.verb().is_some_and(|v| verbs.contains(&v)) => {
                    replies::help_on(email, form, max, &limits)
                }
                _ => replies::help(email, &verbs, max, &limits),
            });
        }
        Err(e) => {
            tracing::info!(error = %e, "not a command");
            let verbs = verbs();
            // A slip of a verb the sender may not use is not offered back.
            let e = match e {
                ParseError::UnknownVerb {
                    word,
                    like: Some(form),
                    ..
                } if form.verb().is_some_and(|v| !verbs.contains(&v)) => ParseError::UnknownVerb {
                    word,
                    like: None,
                    command: None,
                },
                // Told "from 0 to 50", a person allowed 10 would only be
                // refused again: the bound said is the sender's own.
                ParseError::Replicas(ReplicasError::OutOfRange { got, max: bot })
                    if max.is_some_and(|own| own < bot) =>
                {
                    ParseError::Replicas(ReplicasError::OutOfRange {
                        got,
                        max: max.unwrap_or(bot),
                    })
                }
                e => e,
            };
            // Not told how to send what their rules refuse.
            if let Some(denial) =
                policy.and_then(|p| forbids(p, &e, text, sender, defaults, &verbs))
            {
                tracing::info!(actor = %email, %denial, "what the message attempts is denied by policy");
                return refused(replies::denied(email, &denial), "denied");
            }
            return refused(replies::rejected(email, &e, &verbs), "invalid");
        }
    };
    if let Some(policy) = policy {
        let access = access(sender, &request);
        if let Err(denial) = policy.authorize(&access) {
            tracing::info!(actor = %email, %denial, "command denied by policy");
            return refused(replies::denied(email, &denial), "denied");
        }
        let visible = policy.visible_deployments(&access);
        match &mut request.kind {
            CommandKind::List { only } => *only = visible,
            _ => request.visible = visible,
        }
    }
    Reading::Command(request)
}

/// What a command asks of the policy.
fn access<'a>(sender: Sender<'a>, request: &'a Request) -> Access<'a> {
    Access {
        email: sender.email,
        room_id: sender.room_id,
        verb: request.kind.verb(),
        namespace: &request.namespace,
        deployment: request.deployment.as_ref(),
        replicas: match &request.kind {
            CommandKind::Scale { replicas } => Some(replicas.get()),
            _ => None,
        },
    }
}

/// The policy's refusal of what a message that is no command attempts:
/// the command its reply would offer, checked as if sent; else the verb it
/// starts with, where the sender may not use that verb at all.
fn forbids(
    policy: &Policy,
    error: &ParseError,
    text: &str,
    sender: Sender<'_>,
    defaults: &Defaults,
    verbs: &[Verb],
) -> Option<Denied> {
    if let Some(offered) = error.offered() {
        let Ok(Parsed::Command(request)) = language::parse(offered, defaults) else {
            return None;
        };
        return policy.authorize(&access(sender, &request)).err();
    }
    let verb = language::attempted(text)?.verb()?;
    (!verbs.contains(&verb)).then_some(Denied::Verb(verb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::language::tests::defaults;

    const ALICE: Sender<'static> = Sender {
        email: "alice@example.com",
        room_id: "room",
    };

    /// A policy read from `yaml` (the path only names it in errors).
    fn policy_file(yaml: &str) -> Policy {
        Policy::from_yaml(yaml, std::path::Path::new("policy.yaml"), 20).expect("policy")
    }

    fn outcome(reading: &Reading) -> &'static str {
        match reading {
            Reading::Command(_) => "a command",
            Reading::Help(_) => "help",
            Reading::Refused { outcome, .. } => outcome,
        }
    }

    #[test]
    fn a_stranger_hears_only_that_whatever_they_typed() {
        let policy = Policy::authorized_users(&["bob@example.com".to_owned()], 20);
        for text in ["scale web to 3", "help", "scael web"] {
            let reading = read(text, ALICE, Some(&policy), &defaults());
            let Reading::Refused { markdown, outcome } = reading else {
                panic!("{text:?} was read as a command");
            };
            assert_eq!(outcome, "denied", "{text:?}");
            assert!(markdown.contains("not authorised"), "{markdown}");
        }
    }

    #[test]
    fn the_policy_is_asked_for_the_command_found() {
        let policy = Policy::authorized_users(&["alice@example.com".to_owned()], 5);
        let over = read("scale web to 6", ALICE, Some(&policy), &defaults());
        assert_eq!(outcome(&over), "denied");
        let within = read("scale web to 5", ALICE, Some(&policy), &defaults());
        assert_eq!(outcome(&within), "a command");
    }

    #[test]
    fn a_count_over_the_bots_bound_is_told_against_the_senders_own() {
        let policy = Policy::authorized_users(&["alice@example.com".to_owned()], 5);
        let Reading::Refused { markdown, outcome } =
            read("scale web to 60", ALICE, Some(&policy), &defaults())
        else {
            panic!("60 replicas were read as a command");
        };
        assert_eq!(outcome, "invalid");
        assert!(markdown.contains("from 0 to 5, got '60'"), "{markdown}");
    }

    #[test]
    fn no_reply_offers_or_explains_what_the_senders_rules_refuse() {
        let policy = policy_file(
            "rules:\n  - users: [carol@example.com]\n    verbs: [status, list]\n  - users: [dave@example.com]\n    verbs: [\"*\"]\n    deployments: [\"web*\"]\n",
        );
        let read_as = |email, text| {
            let sender = Sender {
                email,
                room_id: "room",
            };
            match read(text, sender, Some(&policy), &defaults()) {
                Reading::Refused { markdown, outcome } => (outcome, markdown),
                other => panic!("{text:?} was read as {}", outcome(&other)),
            }
        };
        for (email, text, told) in [
            // The command offered would be refused.
            (
                "carol@example.com",
                "restart web!",
                "you may not use 'restart'",
            ),
            (
                "carol@example.com",
                "can you restart web",
                "you may not use 'restart'",
            ),
            (
                "dave@example.com",
                "scale Api to 3",
                "you may not use 'scale' on deployment api",
            ),
            // A verb the sender may not use at all, however it is wrong.
            (
                "carol@example.com",
                "scale web to 99",
                "you may not use 'scale'",
            ),
            (
                "carol@example.com",
                "please scale web to 99",
                "you may not use 'scale'",
            ),
            (
                "carol@example.com",
                "`scale web to 99`",
                "you may not use 'scale'",
            ),
            (
                "carol@example.com",
                "deploy nginx to web",
                "you may not use 'deploy'",
            ),
        ] {
            let (outcome, markdown) = read_as(email, text);
            assert_eq!(outcome, "denied", "{text:?}: {markdown}");
            assert!(markdown.contains(told), "{text:?}: {markdown}");
            assert!(!markdown.contains("send '"), "{text:?}: {markdown}");
        }
        // What they may send is offered as ever.
        for (email, text, offered) in [
            (
                "carol@example.com",
                "status Web",
                "did you mean 'status web'?",
            ),
            (
                "dave@example.com",
                "scale Web-2 to 3",
                "did you mean 'scale web-2 to 3'?",
            ),
            ("dave@example.com", "restart web!", "send 'restart web'"),
            ("carol@example.com", "status", "'status' needs"),
        ] {
            let (outcome, markdown) = read_as(email, text);
            assert_eq!(outcome, "invalid", "{text:?}: {markdown}");
            assert!(markdown.contains(offered), "{text:?}: {markdown}");
        }
    }

    #[test]
    fn without_a_policy_every_verb_is_open_up_to_the_configured_bound() {
        let reading = read("scale web to 20", ALICE, None, &defaults());
        assert_eq!(outcome(&reading), "a command");
        let Reading::Help(markdown) = read("help", ALICE, None, &defaults()) else {
            panic!("help was not read as help");
        };
        assert!(markdown.contains("rollback"), "{markdown}");
        assert!(markdown.contains("up to 20 replicas"), "{markdown}");
        let reading = read("scale web to 21", ALICE, None, &defaults());
        assert_eq!(outcome(&reading), "invalid");
    }

    #[test]
    fn help_says_where_a_persons_rules_hold_them() {
        let policy = policy_file(
            "rules:\n  - users: [alice@example.com]\n    verbs: [\"*\"]\n  - domains: [ops.example.com]\n    verbs: [scale, status]\n    namespaces: [default, \"team-*\"]\n    deployments: [\"web*\"]\n    max_replicas: 10\n  - users: [bob@ops.example.com]\n    verbs: [history]\n    max_replicas: 15\n",
        );
        let help = |email| match read(
            "help",
            Sender {
                email,
                room_id: "room",
            },
            Some(&policy),
            &defaults(),
        ) {
            Reading::Help(markdown) => markdown,
            other => panic!("help was read as {}", outcome(&other)),
        };
        let bob = help("bob@ops.example.com");
        assert!(
            // The bound of a rule that lets him scale, not of one that
            // does not (15).
            bob.contains("You may scale up to 10 replicas.\nYour rules limit where:\n- `scale`, `status` in namespaces `default`, `team-*` on deployments `web*`"),
            "{bob}"
        );
        let alice = help("alice@example.com");
        assert!(!alice.contains("limit where"), "{alice}");
    }

    #[test]
    fn help_on_a_command_is_on_it_where_the_sender_may_use_it() {
        let policy = policy_file(
            "rules:\n  - users: [alice@example.com]\n    verbs: [scale, status]\n    deployments: [\"web*\"]\n    max_replicas: 10\n",
        );
        let help = |text| match read(text, ALICE, Some(&policy), &defaults()) {
            Reading::Help(markdown) => markdown,
            other => panic!("{text:?} was read as {}", outcome(&other)),
        };
        let scale = help("help scale");
        assert!(
            scale.contains(
                "`scale <deployment> to <replicas>` sets how many replicas (pods) a deployment runs; e.g. `scale web to 3`."
            ),
            "{scale}"
        );
        assert!(
            scale.contains("You may scale up to 10 replicas."),
            "{scale}"
        );
        assert!(scale.contains("on deployments `web*`"), "{scale}");
        assert!(!scale.contains("status <deployment>"), "{scale}");
        let status = help("help status");
        assert!(status.contains("shows a deployment's replicas"), "{status}");
        assert!(!status.contains("You may scale"), "{status}");
        // A command she may not use: the help on those she may.
        let deploy = help("help deploy");
        assert!(deploy.contains("Here is what you can ask me"), "{deploy}");
        assert!(!deploy.contains("deploy <image:tag>"), "{deploy}");
    }

    #[test]
    fn a_slip_is_taken_for_a_verb_only_if_the_sender_may_use_it() {
        let policy =
            policy_file("rules:\n  - users: [alice@example.com]\n    verbs: [status, list]\n");
        let Reading::Refused { markdown, .. } =
            read("scael web to 3", ALICE, Some(&policy), &defaults())
        else {
            panic!("a misspelt verb was read as a command");
        };
        assert!(!markdown.contains("did you mean"), "{markdown}");
        assert!(markdown.contains("Try `status web`"), "{markdown}");
        let Reading::Refused { markdown, .. } =
            read("stauts web", ALICE, Some(&policy), &defaults())
        else {
            panic!("a misspelt verb was read as a command");
        };
        assert!(
            markdown.contains("did you mean 'status web'?"),
            "{markdown}"
        );
    }

    /// `list` shows a person a policy limits to some deployments those
    /// alone; one granted every deployment by some rule sees them all.
    #[test]
    fn a_list_carries_the_deployments_the_sender_may_see() {
        let policy = policy_file(
            "rules:\n  - users: [alice@example.com]\n    verbs: [status, list]\n    deployments: [\"web*\"]\n  - users: [alice@example.com]\n    verbs: [list]\n    namespaces: [staging]\n    deployments: [\"api\", \"web*\"]\n  - users: [bob@example.com]\n    verbs: [list]\n    deployments: [api]\n  - users: [bob@example.com]\n    verbs: [list]\n    namespaces: [staging]\n",
        );
        let only = |email: &str, text: &str| match read(
            text,
            Sender {
                email,
                room_id: "room",
            },
            Some(&policy),
            &defaults(),
        ) {
            Reading::Command(request) => match request.kind {
                CommandKind::List { only } => only,
                // What any other command may name besides its own.
                _ => request.visible,
            },
            _ => panic!("{text:?} was not a command"),
        };
        assert_eq!(only("alice@example.com", "list"), ["web*"]);
        assert_eq!(only("alice@example.com", "status web-1"), ["web*"]);
        assert_eq!(
            only("alice@example.com", "list in staging"),
            ["api", "web*"]
        );
        assert_eq!(only("bob@example.com", "list"), ["api"]);
        assert!(
            only("bob@example.com", "list in staging").is_empty(),
            "all of them"
        );
        let policy = Policy::authorized_users(&["alice@example.com".to_owned()], 20);
        let Reading::Command(request) = read("list", ALICE, Some(&policy), &defaults()) else {
            panic!("list was not a command");
        };
        assert_eq!(request.kind, CommandKind::List { only: Vec::new() });
    }

    #[test]
    fn what_is_not_a_command_is_answered_with_what_is_wrong() {
        let policy = Policy::authorized_users(&["alice@example.com".to_owned()], 20);
        let Reading::Refused { markdown, outcome } =
            read("scael web to 3", ALICE, Some(&policy), &defaults())
        else {
            panic!("a misspelt verb was read as a command");
        };
        assert_eq!(outcome, "invalid");
        assert!(markdown.contains("Sorry"), "{markdown}");
    }
}
