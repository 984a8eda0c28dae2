//! Who may do what. Deny by default: a request is allowed only when a rule
//! names the actor (by email or email domain) and grants the verb, the
//! namespace, the deployment, the room and, for `scale`, the replica count.
//!
//! Two sources: the seed's `AUTHORIZED_USERS` (those people may do
//! everything, up to `CHATOPS_MAX_REPLICAS`), or a YAML policy file:
//!
//! ```yaml
//! max_replicas: 50            # a bound for every rule, at most CHATOPS_MAX_REPLICAS (optional)
//! rooms: [ROOM_ID]            # commands accepted only from these rooms (optional)
//! rules:
//!   - users: [alice@example.com]
//!     domains: [ops.example.com]
//!     verbs: ["*"]            # scale, deploy, restart, rollback, status, list, history
//!     namespaces: [default, "team-*"]
//!     deployments: ["*"]
//!     max_replicas: 10        # optional, lowers the bound for this rule
//!     rooms: [ROOM_ID]        # optional, narrows the rooms for this rule
//! ```

use std::path::Path;

use chatops_shared::config::PolicySource;
use chatops_shared::names::glob;
use chatops_shared::{DeploymentName, Namespace, Verb};
use serde::Deserialize;

/// A request as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub email: &'a str,
    pub room_id: &'a str,
    pub verb: Verb,
    pub namespace: &'a Namespace,
    pub deployment: Option<&'a DeploymentName>,
    /// For `scale`: the count asked for.
    pub replicas: Option<u32>,
}

/// A verb as people type it: `deploy` is also `set image`.
fn named(verb: Verb) -> String {
    match verb {
        Verb::Deploy => "'deploy' or 'set image'".to_owned(),
        verb => format!("'{verb}'"),
    }
}

/// Why a request was refused, phrased for the person who asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error(
        "you are not authorised to run commands with this bot; the people who run it can add you to its policy"
    )]
    Unknown,
    #[error("commands are not accepted from this room")]
    Room,
    /// The room takes commands, but none of this person's.
    #[error("your commands are not accepted from this room")]
    YourRoom,
    #[error("you may not use {}", named(*.0))]
    Verb(Verb),
    #[error("you may not use {} in namespace {namespace}", named(*.verb))]
    Namespace { verb: Verb, namespace: Namespace },
    #[error("you may not use {} on deployment {deployment} in namespace {namespace}", named(*.verb))]
    Deployment {
        verb: Verb,
        deployment: DeploymentName,
        namespace: Namespace,
    },
    #[error(
        "you may scale {deployment} in namespace {namespace} to at most {max} replicas, not {asked}"
    )]
    Replicas {
        deployment: DeploymentName,
        namespace: Namespace,
        max: u32,
        asked: u32,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read the policy file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the policy file {path} is invalid: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    max_replicas: Option<u32>,
    #[serde(default)]
    rooms: Option<Vec<String>>,
    rules: Vec<RuleFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    domains: Vec<String>,
    verbs: Vec<String>,
    #[serde(default = "everything")]
    namespaces: Vec<String>,
    #[serde(default = "everything")]
    deployments: Vec<String>,
    #[serde(default)]
    max_replicas: Option<u32>,
    #[serde(default)]
    rooms: Option<Vec<String>>,
}

fn everything() -> Vec<String> {
    vec!["*".to_owned()]
}

#[derive(Debug, Clone)]
struct Rule {
    users: Vec<String>,
    domains: Vec<String>,
    verbs: Vec<Verb>,
    namespaces: Vec<String>,
    deployments: Vec<String>,
    max_replicas: u32,
    rooms: Option<Vec<String>>,
}

/// The loaded policy.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
    rooms: Option<Vec<String>>,
}

impl Policy {
    /// Loads the policy the configuration names.
    pub fn load(source: &PolicySource, max_replicas: u32) -> Result<Self, PolicyError> {
        match source {
            PolicySource::AuthorizedUsers(users) => Ok(Self::authorized_users(users, max_replicas)),
            PolicySource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Self::from_yaml(&text, path, max_replicas)
            }
        }
    }

    /// The seed's model: these people may do everything.
    pub fn authorized_users(users: &[String], max_replicas: u32) -> Self {
        Self {
            rules: vec![Rule {
                users: users.iter().map(|u| u.to_lowercase()).collect(),
                domains: Vec::new(),
                verbs: Verb::ALL.to_vec(),
                namespaces: everything(),
                deployments: everything(),
                max_replicas,
                rooms: None,
            }],
            rooms: None,
        }
    }

    pub fn from_yaml(text: &str, path: &Path, max_replicas: u32) -> Result<Self, PolicyError> {
        let invalid = |message: String| PolicyError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let file: PolicyFile = serde_yaml_ng::from_str(text).map_err(|e| invalid(e.to_string()))?;
        // A bound over the one above it would be cut to it without a word.
        let over = |what: String, asked: u32, bound: u32, above: &str| {
            invalid(format!(
                "{what} is {asked}, over {above} ({bound}); lower it, or raise {above}"
            ))
        };
        let bound = match file.max_replicas {
            Some(asked) if asked > max_replicas => {
                return Err(over(
                    "max_replicas".to_owned(),
                    asked,
                    max_replicas,
                    "CHATOPS_MAX_REPLICAS",
                ));
            }
            Some(asked) => asked,
            None => max_replicas,
        };
        if file.rules.is_empty() {
            return Err(invalid(
                "has no rules, which would let nobody in; give each person or domain a rule"
                    .to_owned(),
            ));
        }
        let mut rules = Vec::new();
        for (i, rule) in file.rules.into_iter().enumerate() {
            let n = i + 1;
            if rule.users.is_empty() && rule.domains.is_empty() {
                return Err(invalid(format!("rule {n} names no users and no domains")));
            }
            // An empty list would grant nothing by name and, to `list`,
            // read as no limit at all.
            for (field, list) in [
                ("namespaces", &rule.namespaces),
                ("deployments", &rule.deployments),
            ] {
                if list.is_empty() {
                    return Err(invalid(format!(
                        "rule {n} has an empty {field} list; leave it out to mean all"
                    )));
                }
            }
            let mut verbs = Vec::new();
            for v in &rule.verbs {
                if v == "*" {
                    verbs.extend(Verb::ALL);
                    continue;
                }
                let verb = Verb::ALL
                    .into_iter()
                    .find(|verb| verb.as_str().eq_ignore_ascii_case(v))
                    .ok_or_else(|| {
                        invalid(format!(
                            "rule {n} has the verb '{v}'; verbs are *, {}",
                            Verb::ALL.map(Verb::as_str).join(", ")
                        ))
                    })?;
                verbs.push(verb);
            }
            let rule_bound = match rule.max_replicas {
                Some(asked) if asked > bound => {
                    let above = if file.max_replicas.is_some() {
                        "the file's max_replicas"
                    } else {
                        "CHATOPS_MAX_REPLICAS"
                    };
                    return Err(over(
                        format!("rule {n}'s max_replicas"),
                        asked,
                        bound,
                        above,
                    ));
                }
                Some(asked) => asked,
                None => bound,
            };
            rules.push(Rule {
                users: rule.users.iter().map(|u| u.trim().to_lowercase()).collect(),
                domains: rule
                    .domains
                    .iter()
                    .map(|d| d.trim().trim_start_matches('@').to_lowercase())
                    .collect(),
                verbs,
                namespaces: rule.namespaces,
                deployments: rule.deployments,
                max_replicas: rule_bound,
                rooms: rule.rooms,
            });
        }
        Ok(Self {
            rules,
            rooms: file.rooms,
        })
    }

    fn rules_for<'a>(&'a self, email: &str) -> impl Iterator<Item = &'a Rule> + 'a {
        let email = email.to_lowercase();
        let domain = email
            .rsplit_once('@')
            .map(|(_, d)| d.to_owned())
            .unwrap_or_default();
        self.rules.iter().filter(move |r| {
            r.users.contains(&email) || (!domain.is_empty() && r.domains.contains(&domain))
        })
    }

    fn room_allowed(rooms: Option<&Vec<String>>, room: &str) -> bool {
        rooms.is_none_or(|rooms| rooms.iter().any(|r| r == room))
    }

    /// Why this actor may run nothing at all in this room, if so: the room
    /// is not one the bot takes commands from, no rule names the actor, or
    /// every rule that does is limited to other rooms. Asked before a
    /// message is parsed, so such a person learns nothing of the language.
    pub fn refuses_outright(&self, email: &str, room_id: &str) -> Option<Denied> {
        if !Self::room_allowed(self.rooms.as_ref(), room_id) {
            return Some(Denied::Room);
        }
        let mut rules = self.rules_for(email).peekable();
        if rules.peek().is_none() {
            return Some(Denied::Unknown);
        }
        if !rules.any(|r| Self::room_allowed(r.rooms.as_ref(), room_id)) {
            return Some(Denied::YourRoom);
        }
        None
    }

    /// The deployments a permitted `list` may show (`access` without a
    /// deployment): the patterns of the person's rules that grant it here,
    /// or none (all of them) when one of those grants every deployment.
    /// A rule limited to some deployments does not show the others.
    pub fn visible_deployments(&self, access: &Access<'_>) -> Vec<String> {
        let granting: Vec<&Rule> = self
            .rules_for(access.email)
            .filter(|rule| rule.check(access).1.is_none())
            .collect();
        if granting
            .iter()
            .any(|rule| rule.deployments.iter().any(|p| p == "*"))
        {
            return Vec::new();
        }
        let mut patterns: Vec<String> = granting
            .iter()
            .flat_map(|rule| rule.deployments.iter().cloned())
            .collect();
        patterns.sort();
        patterns.dedup();
        patterns
    }

    /// Allows the request, or says why not: the refusal names the most
    /// specific thing the actor may not do.
    pub fn authorize(&self, access: &Access<'_>) -> Result<(), Denied> {
        if let Some(denial) = self.refuses_outright(access.email, access.room_id) {
            return Err(denial);
        }
        // Some rule names the actor in this room, so some rule gets past
        // the room (closeness 1 or more) and `closest` is replaced.
        let mut closest = Denied::Room;
        let mut closeness = 0;
        for rule in self.rules_for(access.email) {
            let (reached, denial) = rule.check(access);
            let Some(denial) = denial else {
                return Ok(());
            };
            if reached >= closeness {
                closeness = reached;
                closest = denial;
            }
        }
        Err(closest)
    }

    /// The verbs this actor may use in this room at all (for `help`).
    pub fn verbs_for(&self, email: &str, room_id: &str) -> Vec<Verb> {
        if !Self::room_allowed(self.rooms.as_ref(), room_id) {
            return Vec::new();
        }
        let mut verbs: Vec<Verb> = self
            .rules_for(email)
            .filter(|r| Self::room_allowed(r.rooms.as_ref(), room_id))
            .flat_map(|r| r.verbs.iter().copied())
            .collect();
        verbs.sort();
        verbs.dedup();
        verbs
    }

    /// The rules that limit this actor to some namespaces or deployments
    /// in this room, each as "`scale`, `status` in namespaces `team-*` on
    /// deployments `web*`" (for `help`). None when every rule is open.
    pub fn limits_for(&self, email: &str, room_id: &str) -> Vec<String> {
        let any = |patterns: &[String]| patterns.iter().any(|p| p == "*");
        let listed = |patterns: &[String]| {
            patterns
                .iter()
                .map(|p| format!("`{}`", p.replace('`', "")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        self.rules_for(email)
            .filter(|r| Self::room_allowed(r.rooms.as_ref(), room_id))
            .filter(|r| !any(&r.namespaces) || !any(&r.deployments))
            .map(|r| {
                let verbs: Vec<String> = r
                    .verbs
                    .iter()
                    .map(|v| format!("`{}`", v.as_str()))
                    .collect();
                let mut limit = verbs.join(", ");
                if !any(&r.namespaces) {
                    limit.push_str(&format!(" in namespaces {}", listed(&r.namespaces)));
                }
                if !any(&r.deployments) {
                    limit.push_str(&format!(" on deployments {}", listed(&r.deployments)));
                }
                limit
            })
            .collect()
    }

    /// The largest `scale` this actor may ask for anywhere (for `help`).
    pub fn max_replicas_for(&self, email: &str) -> Option<u32> {
        self.rules_for(email)
            .filter(|r| r.verbs.contains(&Verb::Scale))
            .map(|r| r.max_replicas)
            .max()
    }
}

impl Rule {
    /// How far the request got through this rule (room, verb, namespace,
    /// deployment, replicas), and the refusal where it stopped.
    fn check(&self, a: &Access<'_>) -> (u8, Option<Denied>) {
        if !Policy::room_allowed(self.rooms.as_ref(), a.room_id) {
            return (0, Some(Denied::Room));
        }
        if !self.verbs.contains(&a.verb) {
            return (1, Some(Denied::Verb(a.verb)));
        }
        if !self
            .namespaces
            .iter()
            .any(|p| glob(p, a.namespace.as_str()))
        {
            return (
                2,
                Some(Denied::Namespace {
                    verb: a.verb,
                    namespace: a.namespace.clone(),
                }),
            );
        }
        if let Some(d) = a.deployment {
            if !self.deployments.iter().any(|p| glob(p, d.as_str())) {
                return (
                    3,
                    Some(Denied::Deployment {
                        verb: a.verb,
                        deployment: d.clone(),
                        namespace: a.namespace.clone(),
                    }),
                );
            }
            if let Some(asked) = a.replicas.filter(|n| *n > self.max_replicas) {
                return (
                    4,
                    Some(Denied::Replicas {
                        deployment: d.clone(),
                        namespace: a.namespace.clone(),
                        max: self.max_replicas,
                        asked,
                    }),
                );
            }
        }
        (5, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> Namespace {
        Namespace::parse(s).expect("valid")
    }
    fn dep(s: &str) -> DeploymentName {
        DeploymentName::parse(s).expect("valid")
    }

    const POLICY: &str = r#"
max_replicas: 40
rules:
  - users: [alice@example.com]
    verbs: ["*"]
  - domains: [ops.example.com]
    verbs: [scale, status, list, history]
    namespaces: [default, "team-*"]
    deployments: ["web*"]
    max_replicas: 10
  - users: [carol@example.com]
    verbs: [status]
    rooms: [room-ops]
"#;

    fn policy() -> Policy {
        Policy::from_yaml(POLICY, Path::new("policy.yaml"), 50).expect("valid policy")
    }

    fn access<'a>(
        email: &'a str,
        verb: Verb,
        namespace: &'a Namespace,
        deployment: Option<&'a DeploymentName>,
    ) -> Access<'a> {
        Access {
            email,
            room_id: "room-ops",
            verb,
            namespace,
            deployment,
            replicas: None,
        }
    }

    #[test]
    fn an_empty_namespaces_or_deployments_list_is_refused_at_load() {
        for field in ["namespaces", "deployments"] {
            let yaml = format!(
                "rules:\n  - users: [bob@example.com]\n    verbs: [list]\n    {field}: []\n"
            );
            let e = Policy::from_yaml(&yaml, Path::new("policy.yaml"), 20).expect_err(field);
            assert!(
                e.to_string()
                    .contains(&format!("rule 1 has an empty {field} list")),
                "{e}"
            );
        }
    }

    #[test]
    fn a_bound_over_the_one_above_it_is_refused_at_load_not_cut_silently() {
        let rule = |bound: &str| {
            format!("rules:\n  - users: [bob@example.com]\n    verbs: [scale]\n{bound}")
        };
        for (yaml, said) in [
            (
                format!("max_replicas: 100\n{}", rule("")),
                "max_replicas is 100, over CHATOPS_MAX_REPLICAS (50); lower it, or raise CHATOPS_MAX_REPLICAS",
            ),
            (
                rule("    max_replicas: 60\n"),
                "rule 1's max_replicas is 60, over CHATOPS_MAX_REPLICAS (50)",
            ),
            (
                format!("max_replicas: 10\n{}", rule("    max_replicas: 20\n")),
                "rule 1's max_replicas is 20, over the file's max_replicas (10)",
            ),
        ] {
            let e = Policy::from_yaml(&yaml, Path::new("policy.yaml"), 50).expect_err(&yaml);
            assert!(e.to_string().contains(said), "{yaml}: {e}");
        }
        for (yaml, bound) in [
            (format!("max_replicas: 50\n{}", rule("")), 50),
            (
                format!("max_replicas: 10\n{}", rule("    max_replicas: 5\n")),
                5,
            ),
            (rule(""), 50),
        ] {
            let p = Policy::from_yaml(&yaml, Path::new("policy.yaml"), 50).expect(&yaml);
            assert_eq!(p.max_replicas_for("bob@example.com"), Some(bound), "{yaml}");
        }
    }

    #[test]
    fn the_seed_list_allows_everything_for_those_users_only() {
        let p = Policy::authorized_users(&["alice@example.com".into()], 20);
        let (default, web) = (ns("default"), dep("web"));
        for verb in Verb::ALL {
            assert_eq!(
                p.authorize(&access("Alice@Example.com", verb, &default, Some(&web))),
                Ok(())
            );
            assert_eq!(
                p.authorize(&access("mallory@example.com", verb, &default, Some(&web))),
                Err(Denied::Unknown)
            );
        }
        let mut a = access("alice@example.com", Verb::Scale, &default, Some(&web));
        a.replicas = Some(21);
        assert!(matches!(
            p.authorize(&a),
            Err(Denied::Replicas {
                max: 20,
                asked: 21,
                ..
            })
        ));
    }

    #[test]
    fn a_policy_file_narrows_by_domain_verb_namespace_deployment_replicas_and_room() {
        let p = policy();
        let (default, team, prod) = (ns("default"), ns("team-a"), ns("prod"));
        let (web, api) = (dep("web-2"), dep("api"));
        let bob = "bob@ops.example.com";
        assert_eq!(
            p.authorize(&access(bob, Verb::Scale, &team, Some(&web))),
            Ok(())
        );
        assert_eq!(
            p.authorize(&access(bob, Verb::List, &default, None)),
            Ok(())
        );
        assert_eq!(
            p.authorize(&access(bob, Verb::Deploy, &default, Some(&web)))
                .map_err(|e| e.to_string()),
            Err("you may not use 'deploy' or 'set image'".into())
        );
        assert_eq!(
            p.authorize(&access(bob, Verb::Scale, &prod, Some(&web)))
                .map_err(|e| e.to_string()),
            Err("you may not use 'scale' in namespace prod".into())
        );
        assert_eq!(
            p.authorize(&access(bob, Verb::Scale, &default, Some(&api)))
                .map_err(|e| e.to_string()),
            Err("you may not use 'scale' on deployment api in namespace default".into())
        );
        let mut a = access(bob, Verb::Scale, &default, Some(&web));
        a.replicas = Some(11);
        assert_eq!(
            p.authorize(&a).map_err(|e| e.to_string()),
            Err("you may scale web-2 in namespace default to at most 10 replicas, not 11".into())
        );
        // Alice may do anything, bounded by the file's max_replicas (40).
        let mut a = access("alice@example.com", Verb::Scale, &prod, Some(&api));
        a.replicas = Some(40);
        assert_eq!(p.authorize(&a), Ok(()));
        a.replicas = Some(41);
        assert!(p.authorize(&a).is_err());
        // Carol only from room-ops; a look-alike domain is not a domain match.
        let mut c = access("carol@example.com", Verb::Status, &default, Some(&web));
        assert_eq!(p.authorize(&c), Ok(()));
        c.room_id = "room-other";
        assert_eq!(p.authorize(&c), Err(Denied::YourRoom));
        assert_eq!(
            p.authorize(&access(
                "eve@evil-ops.example.com",
                Verb::List,
                &default,
                None
            )),
            Err(Denied::Unknown)
        );
        assert_eq!(
            p.authorize(&access(
                "eve@example.com.ops.example.com",
                Verb::List,
                &default,
                None
            )),
            Err(Denied::Unknown)
        );
    }

    #[test]
    fn those_granted_nothing_in_a_room_are_refused_before_anything_else() {
        let p = policy();
        assert_eq!(p.refuses_outright("bob@ops.example.com", "r"), None);
        assert_eq!(p.refuses_outright("carol@example.com", "room-ops"), None);
        assert_eq!(
            p.refuses_outright("carol@example.com", "elsewhere"),
            Some(Denied::YourRoom),
            "the room takes others' commands, not carol's"
        );
        assert_eq!(
            p.refuses_outright("nobody@example.com", "r"),
            Some(Denied::Unknown)
        );
    }

    #[test]
    fn help_lists_the_verbs_an_actor_may_use() {
        let p = policy();
        assert_eq!(
            p.verbs_for("bob@ops.example.com", "r"),
            [Verb::Scale, Verb::Status, Verb::List, Verb::History]
        );
        assert_eq!(p.verbs_for("carol@example.com", "room-ops"), [Verb::Status]);
        assert!(p.verbs_for("carol@example.com", "elsewhere").is_empty());
        assert!(p.verbs_for("nobody@example.com", "r").is_empty());
        assert_eq!(p.max_replicas_for("bob@ops.example.com"), Some(10));
    }

    #[test]
    fn invalid_policy_files_say_what_is_wrong() {
        let cases = [
            (
                "rules: [{verbs: [scale]}]",
                "rule 1 names no users and no domains",
            ),
            (
                "rules: [{users: [a@b.c], verbs: [delete]}]",
                "verb 'delete'",
            ),
            (
                "rules: [{users: [a@b.c], verbs: [scale], colour: red}]",
                "unknown field `colour`",
            ),
            ("rulez: []", "unknown field `rulez`"),
            ("rules: []", "has no rules, which would let nobody in"),
            ("rules: 3", "invalid type"),
        ];
        for (text, want) in cases {
            let err = Policy::from_yaml(text, Path::new("p.yaml"), 50)
                .expect_err(text)
                .to_string();
            assert!(
                err.contains(want) && err.contains("p.yaml"),
                "{text:?}: {err}"
            );
        }
    }
}
