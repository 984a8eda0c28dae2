//! What the bot says in the room, in the seed's tone ("Nicely done!",
//! "Oh no! Something went wrong!"), as Webex markdown.
//!
//! Anything that came from a person or from Kubernetes is escaped before it
//! is echoed, so a deployment name like `<@all>` or `**x**` can neither
//! mention people nor change the formatting. Each result carries its
//! command id as a marker (`ref <id>`), which is how the notifier finds a
//! reply it already posted before a crash.

use std::time::Duration;

use chatops_shared::text::count;
use chatops_shared::{Command, CommandId, CommandResult, Outcome, Verb};

use crate::language::{Form, ParseError, Request};
use crate::policy::Denied;

/// The most bytes Webex takes in a message's markdown.
const MAX_MESSAGE_BYTES: usize = 7439;

/// The most bytes of a text (a worker's message, a reason) shown in a
/// reply: the rest of [`MAX_MESSAGE_BYTES`] is kept for the mention (an
/// address is at most 254 bytes), the reply's own words and the `ref`
/// marker. Input quoted in a text is already short (`chatops_shared::quote`).
const MAX_TEXT_BYTES: usize = MAX_MESSAGE_BYTES - 512;

/// Marks where a text was cut.
const CUT: char = '…';

/// Escapes markdown and mention syntax; control, zero-width and
/// bidirectional characters are shown as their code points. The whole
/// text, unless it would not fit in [`MAX_TEXT_BYTES`]: then as much as
/// fits, with a `…` where it was cut.
pub fn escape(s: &str) -> String {
    let room = MAX_TEXT_BYTES - CUT.len_utf8();
    let mut out = String::with_capacity(s.len().min(MAX_TEXT_BYTES));
    for c in s.chars() {
        let before = out.len();
        match c {
            // Emphasis, code, links, mentions, HTML, tables, strikethrough:
            // everything that could change what a reply shows or whom it
            // notifies. Characters that matter only at a line start never
            // stand at one in a reply.
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '<' | '>' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => match chatops_shared::text::spelled_out(c) {
                Some(code) => out.push_str(&code),
                None => out.push(c),
            },
        }
        if out.len() > room {
            out.truncate(before);
            out.push(CUT);
            break;
        }
    }
    out
}

/// `<@personEmail:alice@example.com>`, or nothing for an address that could
/// break out of the mention syntax.
pub fn mention(email: &str) -> String {
    let safe = !email.is_empty()
        && email
            .chars()
            .all(|c| c.is_ascii_graphic() && !"<>|`\\".contains(c));
    if safe {
        format!("<@personEmail:{email}>")
    } else {
        String::new()
    }
}

/// The marker that identifies the final reply to a command.
pub fn result_marker(id: &CommandId) -> String {
    format!("ref {id}")
}

/// The marker of the message that in-progress results edit.
pub fn progress_marker(id: &CommandId) -> String {
    format!("progress {id}")
}

pub fn queued(email: &str, request: &Request, id: &CommandId) -> String {
    format!(
        "{} queued: `{}` (id {id})",
        mention(email),
        request.describe()
    )
}

/// A command no worker has taken `after` it was queued.
pub fn unclaimed(command: &Command, after: Duration) -> String {
    format!(
        "{} no worker has taken `{}` in {}: none may be running, or all are busy. It stays queued and runs when one takes it (id {}).",
        mention(&command.actor.email),
        command.describe(),
        humanize(after),
        command.id
    )
}

/// A duration as a person says it, rounded down: "40 seconds", "3 hours".
pub fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "less than a second".to_owned(),
        1..=119 => count(s, "second", "seconds"),
        120..=7199 => count(s / 60, "minute", "minutes"),
        _ => count(s / 3600, "hour", "hours"),
    }
}

/// What is wrong with a message that is not a command; `verbs`, those the
/// person may use, choose the examples offered for an unknown verb.
pub fn rejected(email: &str, error: &ParseError, verbs: &[Verb]) -> String {
    let usage = match error.form() {
        Some(form) => format!(
            " Expected `{}`, for example `{}`.",
            form.syntax(),
            form.example()
        ),
        None => match error {
            ParseError::UnknownVerb {
                command: Some(_), ..
            }
            | ParseError::Lowercase { .. } => String::new(),
            ParseError::UnknownVerb { .. } => {
                let examples: Vec<String> = Form::ALL
                    .into_iter()
                    .filter(|form| form.verb().is_some_and(|v| verbs.contains(&v)))
                    .take(2)
                    .map(|form| format!("`{}`, ", form.example()))
                    .collect();
                format!(" Try {}or `help` for every command.", examples.concat())
            }
            _ => " Say `help` for every command, with examples.".to_owned(),
        },
    };
    let why = escape(&error.to_string());
    let stop = if why.ends_with('?') { "" } else { "." };
    format!("{} Sorry, {why}{stop}{usage}", mention(email))
}

pub fn denied(email: &str, denial: &Denied) -> String {
    // A question refused changes nothing anyway: no need to say so.
    let asked_a_question = match denial {
        Denied::Verb(verb) | Denied::Namespace { verb, .. } | Denied::Deployment { verb, .. } => {
            !verb.is_write()
        }
        Denied::Unknown | Denied::Room | Denied::YourRoom | Denied::Replicas { .. } => false,
    };
    let note = if asked_a_question {
        ""
    } else {
        " Nothing was changed."
    };
    format!(
        "{} Sorry, {}.{note}",
        mention(email),
        escape(&denial.to_string())
    )
}

/// Could not be processed at all (the message could not be read, or is too old).
pub fn not_processed(email: &str, why: &str) -> String {
    format!(
        "{} Sorry, {}. Nothing was changed.",
        mention(email),
        escape(why)
    )
}

/// Someone the policy lets run nothing here, whatever they asked.
pub fn refused(email: &str, denial: &Denied) -> String {
    format!("{} Sorry, {denial}.", mention(email))
}

/// Thanks, or an acknowledgement: a short answer, not the whole help.
pub fn welcome(email: &str) -> String {
    format!(
        "{} You're welcome! Say `help` whenever you need the commands.",
        mention(email)
    )
}

/// `limits`: the person's rules that hold them to some namespaces or
/// deployments, as [`crate::policy::Policy::limits_for`] words them.
pub fn help(email: &str, verbs: &[Verb], max_replicas: Option<u32>, limits: &[String]) -> String {
    if verbs.is_empty() {
        return refused(email, &Denied::Unknown);
    }
    let mut lines = vec![format!("{} Here is what you can ask me:", mention(email))];
    for form in Form::ALL {
        if form.verb().is_none_or(|v| verbs.contains(&v)) && form != Form::Help {
            lines.push(format!("- `{}`, e.g. `{}`", form.syntax(), form.example()));
        }
    }
    lines.push("Add `in <namespace>` to any command to choose the namespace.".to_owned());
    bounds(
        &mut lines,
        max_replicas.filter(|_| verbs.contains(&Verb::Scale)),
        limits,
    );
    lines.join("\n")
}

/// The sender's bounds, for a help: how far they may scale (where the help
/// is on scaling), and their rules' limits.
fn bounds(lines: &mut Vec<String>, max_replicas: Option<u32>, limits: &[String]) {
    if let Some(max) = max_replicas {
        lines.push(format!(
            "You may scale up to {}.",
            chatops_shared::text::count(max, "replica", "replicas")
        ));
    }
    if !limits.is_empty() {
        lines.push("Your rules limit where:".to_owned());
        lines.extend(limits.iter().map(|limit| format!("- {limit}")));
    }
}

/// The help on one form the sender may use (`help scale`): what it does,
/// how it is written, an example, and the sender's bounds on it.
pub fn help_on(email: &str, form: Form, max_replicas: Option<u32>, limits: &[String]) -> String {
    let mut lines = vec![
        format!(
            "{} `{}` {}; e.g. `{}`.",
            mention(email),
            form.syntax(),
            form.does(),
            form.example()
        ),
        "Add `in <namespace>` to choose the namespace.".to_owned(),
    ];
    bounds(
        &mut lines,
        max_replicas.filter(|_| form == Form::Scale),
        limits,
    );
    lines.push("`help` lists every command.".to_owned());
    lines.join("\n")
}

/// The reply for a worker's result.
pub fn result(result: &CommandResult) -> String {
    noted_result(result, "")
}

/// The last in-progress result a progress message can show: Webex lets a
/// message be edited only so often.
pub fn last_progress(result: &CommandResult) -> String {
    noted_result(
        result,
        "; the result will follow in a reply of its own (Webex allows this message no more edits)",
    )
}

fn noted_result(result: &CommandResult, note: &str) -> String {
    let who = mention(&result.actor.email);
    let message = escape(&result.message);
    // Praise is for a change made and kept: not for an answer to a
    // question, for a change that found the deployment already so, nor for
    // one a later change overtook before its rollout ended.
    let answers_a_question = result.verb.is_some_and(|v| !v.is_write());
    let text = match result.outcome {
        Outcome::Applied if answers_a_question || result.unchanged || result.overtaken => message,
        Outcome::Applied => format!("Nicely done! {message}"),
        Outcome::AlreadyApplied => format!("Already done: {message}"),
        Outcome::Superseded => format!("Skipped: {message}"),
        Outcome::Rejected => format!("Sorry, {message}"),
        Outcome::Failed => format!("Oh no! Something went wrong! {message}"),
        Outcome::InProgress => format!("In progress: {message}"),
    };
    let marker = if result.outcome.is_final() {
        result_marker(&result.command_id)
    } else {
        progress_marker(&result.command_id)
    };
    format!("{who} {text}{note} ({marker})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_change_says_nothing_changed_and_a_refused_question_does_not() {
        let change = denied("a@example.com", &Denied::Verb(Verb::Scale));
        assert!(
            change.ends_with("you may not use 'scale'. Nothing was changed."),
            "{change}"
        );
        let question = denied("a@example.com", &Denied::Verb(Verb::Status));
        assert!(
            question.ends_with("you may not use 'status'."),
            "{question}"
        );
    }

    #[test]
    fn echoed_input_cannot_mention_or_format() {
        let specials = ['<', '>', '*', '_', '`', '[', ']', '|', '~'];
        for hostile in [
            "<@all>",
            "**bold**",
            "[x](http://evil)",
            "`code`",
            "<@personEmail:ceo@example.com|CEO>",
            r"\<@all>",
        ] {
            let escaped = escape(hostile);
            // Every special character is preceded by a backslash that is
            // not itself escaped.
            let mut chars = escaped.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    assert!(chars.next().is_some(), "{escaped}: dangling backslash");
                } else {
                    assert!(
                        !specials.contains(&c),
                        "{hostile:?} -> {escaped}: unescaped {c:?}"
                    );
                }
            }
        }
        assert_eq!(
            escape("web-2.prod"),
            "web-2.prod",
            "harmless punctuation stays readable"
        );
        assert_eq!(escape("a\u{200b}b\nc"), "aU+200BbU+000Ac");
        assert_eq!(
            escape("web\u{2067}-x\u{2069}"),
            "webU+2067-xU+2069",
            "no text in a reply can turn the rest around"
        );
        assert_eq!(
            escape("café ❤\u{fe0f}"),
            "café ❤\u{fe0f}",
            "visible letters and emoji are shown as typed"
        );
        assert_eq!(
            escape(&"x".repeat(500)),
            "x".repeat(500),
            "nothing cut that fits"
        );
    }

    #[test]
    fn a_refusal_is_one_sentence_and_its_usage() {
        let defaults = crate::language::tests::defaults();
        let reply = |text: &str| {
            let error = crate::language::parse(text, &defaults).expect_err(text);
            rejected("alice@example.com", &error, &Verb::ALL)
        };
        assert!(
            reply("scael web to 3").ends_with("did you mean 'scale web to 3'?"),
            "a question ends the reply, with no usage after the command offered"
        );
        assert!(
            reply("scael web to x")
                .contains("did you mean 'scale'? Expected `scale <deployment> to <replicas>`")
        );
        assert!(reply("frobnicate").contains(
            "'frobnicate'. Try `scale web to 3`, `deploy registry.example.com/web:2.1 to web`, or `help`"
        ));
        let error = crate::language::parse("frobnicate", &defaults).expect_err("no verb");
        let reader = rejected("carol@example.com", &error, &[Verb::Status, Verb::List]);
        assert!(
            reader.ends_with("Try `status web`, `list`, or `help` for every command."),
            "the examples are of what the person may use: {reader}"
        );
        assert!(reply("scale web to x").contains("got 'x' (e.g. 'scale web to 3'). Say `help`"));
    }

    fn result_saying(message: String) -> CommandResult {
        CommandResult {
            version: chatops_shared::ContractVersion,
            command_id: CommandId::new(),
            verb: Some(Verb::List),
            outcome: Outcome::Applied,
            message,
            before: None,
            after: None,
            unchanged: false,
            overtaken: false,
            refused: false,
            attempts: 1,
            duration: std::time::Duration::from_millis(5),
            namespace: chatops_shared::Namespace::parse("default").expect("a namespace"),
            deployment: None,
            actor: chatops_shared::Actor {
                email: "alice@example.com".to_owned(),
                person_id: "p".to_owned(),
            },
            origin: chatops_shared::Origin {
                room_id: "r".to_owned(),
                message_id: "m".to_owned(),
                thread_id: None,
            },
            finished_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_workers_whole_message_is_shown_within_what_webex_takes() {
        // `list` of fifty deployments: far over the echo limit, all shown.
        let list: Vec<String> = (0..50)
            .map(|i| format!("web-{i} 3/3 (registry.example.com/web:2.{i})"))
            .collect();
        let list = format!("50 deployments in default: {}", list.join("; "));
        let reply = result(&result_saying(list.clone()));
        assert!(reply.contains(&list), "{reply}");
        assert!(!reply.contains(CUT), "{reply}");

        // Over Webex's limit, whatever the characters cost escaped: cut,
        // marked, and the marker that finds the reply again kept.
        for unit in ["x", "*", "é", "漢", "\u{1}", "\u{200b}", "🚀"] {
            let r = result_saying(unit.repeat(MAX_MESSAGE_BYTES));
            let reply = result(&r);
            assert!(
                reply.len() <= MAX_MESSAGE_BYTES,
                "{unit:?}: {} bytes",
                reply.len()
            );
            assert!(
                reply.ends_with(&format!("{CUT} ({})", result_marker(&r.command_id))),
                "{unit:?}: {}",
                &reply[reply.len() - 80..]
            );
        }
    }

    #[test]
    fn an_answer_to_a_question_is_not_congratulated() {
        let said = |verb: Option<Verb>, outcome: Outcome| {
            let mut r = result_saying("web: 3/3 ready".to_owned());
            r.verb = verb;
            r.outcome = outcome;
            result(&r)
        };
        for verb in [Verb::Status, Verb::List, Verb::History] {
            let reply = said(Some(verb), Outcome::Applied);
            assert!(
                reply.starts_with("<@personEmail:alice@example.com> web: 3/3 ready (ref "),
                "{verb}: {reply}"
            );
            assert!(
                said(Some(verb), Outcome::Failed).contains("Oh no! Something went wrong! web"),
                "{verb}: a read that failed still says so"
            );
        }
        for verb in [Some(Verb::Scale), Some(Verb::Restart), None] {
            assert!(
                said(verb, Outcome::Applied).contains("Nicely done! web"),
                "{verb:?}"
            );
        }
        assert!(said(Some(Verb::Scale), Outcome::Rejected).contains("> Sorry, web"));

        let mut same = result_saying("web already had 3 replicas; nothing changed".to_owned());
        same.verb = Some(Verb::Scale);
        same.unchanged = true;
        let reply = result(&same);
        assert!(
            reply.starts_with("<@personEmail:alice@example.com> web already had 3 replicas"),
            "{reply}"
        );
        // A rollback across a restart leaves the images as they were, and
        // is a change all the same: the worker says which it was.
        same.unchanged = false;
        (same.before, same.after) = (
            Some("nginx=nginx:1".to_owned()),
            Some("nginx=nginx:1".to_owned()),
        );
        assert!(result(&same).contains("Nicely done!"));
        // A change a later one overtook before its rollout ended was made,
        // and is no success to celebrate: its message says what happened.
        same.overtaken = true;
        let reply = result(&same);
        assert!(
            reply.starts_with("<@personEmail:alice@example.com> web already had"),
            "{reply}"
        );
    }

    #[test]
    fn mentions_refuse_addresses_that_break_the_syntax() {
        assert_eq!(
            mention("alice@example.com"),
            "<@personEmail:alice@example.com>"
        );
        assert_eq!(mention("a>b@example.com"), "");
        assert_eq!(mention("a|b@example.com"), "");
        assert_eq!(mention(""), "");
    }

    #[test]
    fn help_shows_only_what_the_actor_may_use() {
        let text = help("bob@example.com", &[Verb::Status, Verb::List], None, &[]);
        assert!(
            text.contains("`status <deployment>`") && text.contains("`list`"),
            "{text}"
        );
        assert!(
            !text.contains("`scale") && !text.contains("`deploy "),
            "{text}"
        );
        let text = help("a@example.com", &Verb::ALL, Some(10), &[]);
        for form in Form::ALL.iter().filter(|f| **f != Form::Help) {
            assert!(text.contains(form.syntax()), "{text}");
        }
        assert!(text.contains("up to 10 replicas"));
        assert!(help("x@example.com", &[], None, &[]).contains("not authorised"));
    }
}
