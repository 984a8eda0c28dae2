//! What is wrong with a message that is not a command, said so that
//! following the advice cannot run another command than the one meant:
//! the words are compared with the form's own syntax line, and a word is
//! named as too many only where taking it out leaves the command meant.

use chatops_shared::text::{OFFERED, count, odd_characters};
use chatops_shared::{NameError, Namespace, Replicas, quote};

use super::{
    Defaults, END_PUNCTUATION, Form, ParseError, Parsed, VERBS, deployment, form_of, image_spec,
    parse, parse_message, revision, tagged, trim_invisible,
};

/// "please scale web to 3", "can you restart web?": a whole change after
/// polite words only, which it is safer to send back than to run; a
/// question or the help after them ("can you list?", "please help") is
/// answered, and a command that is not whole gets its own answer. Any
/// other words before it may turn it around ("don't restart web", "in
/// prod restart web"), so those get no command offered.
pub(super) fn preamble(words: &[&str], defaults: &Defaults) -> Option<Result<Parsed, ParseError>> {
    const OPENERS: [&str; 15] = [
        "can", "could", "hello", "hey", "hi", "kindly", "now", "ok", "okay", "please", "pls",
        "would", "will", "you", "u",
    ];
    let at = words
        .iter()
        .position(|w| *w != "?" && form_of(w).is_some())?;
    let polite = words[..at].iter().all(|w| {
        let w = w.trim_end_matches([',', ':']).to_ascii_lowercase();
        OPENERS.contains(&w.as_str())
    });
    if !polite {
        return None;
    }
    let command = words[at..].join(" ");
    let command = command
        .trim_end_matches(END_PUNCTUATION)
        .trim_end()
        .to_owned();
    Some(match parse(&command, defaults) {
        // A question, or the help: answered, as nothing changes.
        Ok(Parsed::Command(request)) if !request.kind.verb().is_write() => {
            Ok(Parsed::Command(request))
        }
        Ok(parsed @ (Parsed::Help | Parsed::HelpOn(_) | Parsed::Thanks)) => Ok(parsed),
        Ok(Parsed::Command(_)) => Err(ParseError::Preamble {
            before: words[..at].join(" "),
            command,
        }),
        // What the polite words lead to has its own answer ("please deploy
        // nginx:1.21. to web", "please scale web").
        Err(error) => Err(error),
    })
}

/// A name with capitals ("scale Web to 3", "status web in Prod"): as
/// Kubernetes names are lowercase, the message with its names in lowercase
/// is offered where that is a command (only offered: the person sends it).
/// Images keep their case (a tag may have capitals), and so does a
/// container's image in `set image`.
pub(super) fn lowercase(error: ParseError, text: &str, defaults: &Defaults) -> ParseError {
    let (ParseError::Deployment(NameError::Uppercase { what, letter, .. })
    | ParseError::Namespace(NameError::Uppercase { what, letter, .. })
    | ParseError::Container(NameError::Uppercase { what, letter, .. })) = error
    else {
        return error;
    };
    let words: Vec<String> = trim_invisible(text)
        .split_whitespace()
        .map(|word| match word.split_once('=') {
            Some((container, image)) => format!("{}={image}", container.to_ascii_lowercase()),
            None if word.contains([':', '/', '@']) => word.to_owned(),
            None => word.to_ascii_lowercase(),
        })
        .collect();
    let command = words.join(" ");
    match parse_message(&command, defaults) {
        Ok(Parsed::Command(_)) if offerable(&command) => ParseError::Lowercase {
            what,
            letter,
            command,
        },
        _ => error,
    }
}

/// A deployment written `<namespace>/<name>` ("scale staging/web to 3"),
/// in a message without `in <namespace>`: the command with the namespace
/// at its end is offered (only offered: the person sends it).
pub(super) fn slashed(error: ParseError, text: &str, defaults: &Defaults) -> ParseError {
    let ParseError::Deployment(NameError::InvalidCharacter { .. }) = error else {
        return error;
    };
    let words: Vec<&str> = trim_invisible(text).split_whitespace().collect();
    // kubectl's TYPE/NAME ("pods/web", "rs/web") is no namespace.
    fn names(word: &str) -> Option<(&str, &str)> {
        word.split_once('/').filter(|(namespace, name)| {
            Namespace::parse(namespace).is_ok()
                && deployment(name).is_ok()
                && !names_a_kind(namespace)
                && !KUBECTL_KINDS.contains(namespace)
        })
    }
    let given: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| names(w).is_some())
        .collect();
    let ([given], false) = (
        given.as_slice(),
        words.iter().any(|w| w.eq_ignore_ascii_case("in")),
    ) else {
        return error;
    };
    let Some((namespace, name)) = names(given) else {
        return error;
    };
    let command = words
        .iter()
        .map(|w| if w == given { name } else { w })
        .chain(["in", namespace])
        .collect::<Vec<_>>()
        .join(" ");
    match parse_message(&command, defaults) {
        Ok(Parsed::Command(_)) if offerable(&command) => ParseError::Slashed {
            given: (*given).to_owned(),
            command,
        },
        _ => error,
    }
}

/// kubectl's short and long names of kinds people write before a '/'.
const KUBECTL_KINDS: [&str; 16] = [
    "deploy",
    "rs",
    "replicaset",
    "replicasets",
    "po",
    "svc",
    "service",
    "services",
    "sts",
    "statefulset",
    "statefulsets",
    "ds",
    "daemonset",
    "daemonsets",
    "job",
    "jobs",
];

/// A first word that is no verb: where it is one slip from a verb
/// ("scael", "stauts", "rolback"), the verb is offered, and the whole
/// command when the message with that verb is one (only offered: the
/// person sends it).
pub(super) fn unknown_verb(words: &[&str], defaults: &Defaults) -> ParseError {
    let word = words.first().copied().unwrap_or_default();
    // "wait scale web to 3", "don't restart web": a command the first word
    // changes, refused as such, as when it comes after the verb.
    if is_qualifier(word)
        && let Some(form) = words[1..]
            .iter()
            .filter_map(|w| form_of(w))
            .find(|form| *form != Form::Help)
    {
        return ParseError::Qualified {
            word: word.to_owned(),
            form,
        };
    }
    // kubectl's words ("rollout undo web") count as the verb they name.
    let (like, rest) = match kubectl_rollout(words) {
        Some(form) => (Some(form), &words[2..]),
        None => (misspelt(word), &words[1..]),
    };
    let command = like.filter(|form| *form != Form::Help).and_then(|form| {
        let verb = form.to_string();
        let command: Vec<&str> = std::iter::once(verb.as_str())
            .chain(rest.iter().copied())
            .collect();
        let command = command.join(" ");
        matches!(parse(&command, defaults), Ok(Parsed::Command(_)) if offerable(&command))
            .then_some(command)
    });
    ParseError::UnknownVerb {
        word: word.to_owned(),
        like,
        command,
    }
}

/// `kubectl rollout undo|restart|status|history ...`, typed without
/// `kubectl`: the form that does the same.
fn kubectl_rollout(words: &[&str]) -> Option<Form> {
    let [first, second, ..] = words else {
        return None;
    };
    if !first.eq_ignore_ascii_case("rollout") {
        return None;
    }
    match second.to_ascii_lowercase().as_str() {
        "undo" => Some(Form::Rollback),
        "restart" => Some(Form::Restart),
        "status" => Some(Form::Status),
        "history" => Some(Form::History),
        _ => None,
    }
}

/// A command short enough to offer whole: one too long is not offered.
fn offerable(command: &str) -> bool {
    command.chars().count() <= OFFERED
}

/// The form whose verb `word` is one slip from: a letter wrong, missing,
/// extra or two swapped (two slips in words of six letters or more), and
/// nearer to it than to any other verb. Words under four letters are too
/// near too many ("get" is not a slip of "set").
pub(super) fn misspelt(word: &str) -> Option<Form> {
    let word = word.to_lowercase();
    let length = word.chars().count();
    if length < 4 {
        return None;
    }
    let slips = if length >= 6 { 2 } else { 1 };
    let distances: Vec<(usize, Form)> = VERBS
        .iter()
        .filter(|(verb, _)| verb.len() >= 4)
        .map(|(verb, form)| (strsim::osa_distance(&word, verb), *form))
        .collect();
    let least = distances.iter().map(|(distance, _)| *distance).min()?;
    let mut nearest = distances
        .iter()
        .filter(|(distance, _)| *distance == least && least <= slips)
        .map(|(_, form)| *form);
    let form = nearest.next()?;
    nearest.all(|other| other == form).then_some(form)
}

/// How an unknown verb's reply goes on: the command or the verb it looks
/// like a slip of.
pub(super) fn meant(like: &Option<Form>, command: Option<&str>) -> String {
    match (command, like) {
        (Some(command), _) => format!("; did you mean '{command}'?"),
        (None, Some(form)) => format!("; did you mean '{form}'?"),
        (None, None) => String::new(),
    }
}

/// Why `words` (the verb first, `in <namespace>` taken off the end, if
/// `ends_with_namespace`) are not a command of `form`.
pub(super) fn malformed(form: Form, words: &[&str], ends_with_namespace: bool) -> ParseError {
    // "restart web, please": a comma between words is the sentence's.
    let words: Vec<&str> = words
        .iter()
        .map(|w| w.strip_suffix(',').filter(|w| !w.is_empty()).unwrap_or(w))
        .collect();
    let words = words.as_slice();
    // The words checked: not the deployment's place in the form, where
    // "no" or "ns" are names ("scale no 3"), and for the words below, not
    // a namespace after "in" either.
    let deployment_at = form
        .syntax()
        .split(' ')
        .skip(1)
        .position(|t| t == "<deployment>");
    let named: Vec<(bool, &str)> = words
        .get(1..)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter(|&(i, _)| Some(i) != deployment_at)
        .map(|(i, w)| (words[i].eq_ignore_ascii_case("in"), *w))
        .collect();
    // Words that make the command say something else than what to do
    // ("scale web to 0 not in prod", "restart web unless ..."): dropping
    // them, as a reply naming them invites, would do what was not meant.
    if let Some((_, word)) = named
        .iter()
        .find(|(after_in, w)| !after_in && is_qualifier(w))
    {
        return ParseError::Qualified {
            word: (*word).to_owned(),
            form,
        };
    }
    // "deploy nginx:1 to nginx container in web": without the word, a
    // deployment and a namespace.
    if matches!(form, Form::Deploy | Form::SetImage)
        && words.iter().skip(1).any(|w| {
            ["container", "containers", "-c", "--container"]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k) || w.starts_with("--container="))
        })
    {
        return ParseError::ContainerWord;
    }
    // kubectl's way of naming a namespace, or the word itself: taken
    // out, the command would run in the default namespace.
    // (A flag is no name, wherever it stands: "scale -n prod web to 3".)
    let flag = |w: &str| w == "-n" || w.starts_with("--namespace");
    let given = words
        .iter()
        .skip(1)
        .find(|w| flag(&w.to_ascii_lowercase()))
        .or_else(|| {
            named
                .iter()
                .find(|(after_in, w)| {
                    let w = w.to_ascii_lowercase();
                    w == "namespace" || (w == "ns" && !after_in)
                })
                .map(|(_, w)| w)
        });
    if let Some(given) = given {
        return ParseError::NamespaceFlag {
            given: (*given).to_owned(),
            form,
        };
    }
    let why = match mismatch(form, words, ends_with_namespace) {
        Mismatch::Said(why) => why,
        Mismatch::TooMany(n) => {
            if let Some(rest) = after_a_change(form, words.get(1..).unwrap_or_default()) {
                return ParseError::Qualified { word: rest, form };
            }
            too_many(&words.join(" "), n, form)
        }
    };
    ParseError::Malformed { verb: form, why }
}

/// How words differ from a form.
enum Mismatch {
    /// Said so.
    Said(String),
    /// This many words too many, none of which can be named.
    TooMany(usize),
}

/// Words that change what a command says (negations, conditions,
/// corrections, times, relative amounts): no command can carry them.
fn is_qualifier(word: &str) -> bool {
    const QUALIFIERS: [&str; 30] = [
        "after", "before", "but", "cancel", "don't", "dont", "except", "extra", "fewer", "hours",
        "if", "instead", "kidding", "later", "less", "maybe", "minutes", "more", "never", "no",
        "not", "or", "seconds", "stop", "then", "tomorrow", "tonight", "unless", "until", "wait",
    ];
    let word = word
        .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
        .to_lowercase()
        .replace('’', "'");
    QUALIFIERS.contains(&word.as_str())
}

/// How `words` (the verb first, `in <namespace>` taken off the end, if
/// `ends_with_namespace`) differ from `form`'s syntax: a keyword where
/// another word stands, a word too many, or what is missing. A word is
/// named as too many only where taking it out cannot leave another command
/// than the one meant.
fn mismatch(form: Form, words: &[&str], ends_with_namespace: bool) -> Mismatch {
    let typed = words.join(" ");
    let (all, words) = (words, words.get(1..).unwrap_or_default());
    let patterns = patterns(form);
    // The pattern nearest in length to what was typed; the longer on a tie.
    let Some(pattern) = patterns
        .iter()
        .min_by_key(|p| (p.len().abs_diff(words.len()), std::cmp::Reverse(p.len())))
    else {
        return Mismatch::Said("say `help` for its form".to_owned());
    };
    if words.last().is_some_and(|w| w.eq_ignore_ascii_case("in")) {
        return Mismatch::Said("'in' needs a namespace after it".to_owned());
    }
    // `in <namespace>` anywhere but at the end: taken out, the command
    // would run in another namespace.
    if let Some(at) = words[..words.len().saturating_sub(1)]
        .iter()
        .position(|w| w.eq_ignore_ascii_case("in"))
    {
        let clause = quote(&words[at..=at + 1].join(" "));
        let after = &words[at + 2..];
        let rest: Vec<&str> = words[..at].iter().chain(after).copied().collect();
        return Mismatch::Said(if ends_with_namespace {
            "it names a namespace twice; keep one 'in <namespace>', at the end".to_owned()
        } else if !after.is_empty() && after.iter().all(|w| is_filler(w)) {
            format!("'{}' is not part of it", quote(&after.join(" ")))
        } else if patterns.iter().any(|p| fits(p, &rest)) {
            format!("'{clause}' goes at the end of the command")
        } else {
            format!(
                "'{}' follows '{clause}', and a command ends with its namespace",
                quote(&after.join(" "))
            )
        });
    }
    // "list prod": the namespace to list, without its 'in'.
    if let (Form::List, [word]) = (form, words)
        && !is_filler(word)
        && !names_a_kind(word)
        && Namespace::parse(word).is_ok()
    {
        return Mismatch::Said(format!(
            "'{0}' is not part of it; a namespace is named after 'in', as in 'list in {0}'",
            quote(word)
        ));
    }
    match extra_words(pattern, words) {
        Some(Extra::Named(parts)) => {
            let quoted: Vec<String> = parts.iter().map(|p| format!("'{}'", quote(p))).collect();
            return Mismatch::Said(match quoted.as_slice() {
                [one] => format!("{one} is not part of it"),
                many => format!("{} are not part of it", many.join(" and ")),
            });
        }
        // Naming one would send the person to another command, as likely
        // as not the wrong one.
        Some(Extra::Unclear(n)) => return Mismatch::TooMany(n),
        None => {}
    }
    let is_slot = |t: &str| t.contains('<');
    for (i, expected) in pattern.iter().enumerate() {
        let Some(word) = words.get(i) else {
            return Mismatch::Said(format!(
                "'{}' needs '{}' after it",
                quote(&all[..=i].join(" ")),
                pattern[i..].join(" ")
            ));
        };
        if is_slot(expected) {
            // The word belongs further on: what this slot wants is missing
            // ("scale to 5", "set image nginx=nginx:1").
            let belongs_later = pattern[i + 1..]
                .iter()
                .any(|later| fits_slot(pattern, later, word));
            if belongs_later && !fits_slot(pattern, expected, word) {
                return Mismatch::Said(format!("'{expected}' is missing before '{word}'"));
            }
        } else if !word.eq_ignore_ascii_case(expected) {
            if form == Form::Scale && word.eq_ignore_ascii_case("by") {
                return Mismatch::Said("scale sets the count to have, as in 'scale web to 5'; it cannot add or take away".to_owned());
            }
            // "scale web 5": the keyword left out, not replaced.
            let with_keyword: Vec<&str> = words[..i]
                .iter()
                .copied()
                .chain(std::iter::once(*expected))
                .chain(words[i..].iter().copied())
                .collect();
            if fits(pattern, &with_keyword) {
                return Mismatch::Said(format!("'{expected}' is missing before '{}'", quote(word)));
            }
            return Mismatch::Said(format!(
                "'{}' stands where '{expected}' should{}",
                quote(word),
                odd_characters(word)
            ));
        }
    }
    let why = match &words[pattern.len()..] {
        [] => format!("'{}' is not {}", quote(&typed), form.syntax()),
        extra if extra.iter().all(|w| is_filler(w)) => {
            format!("'{}' is not part of it", quote(&extra.join(" ")))
        }
        extra => return Mismatch::TooMany(extra.len()),
    };
    Mismatch::Said(why)
}

/// The shapes of `form` after its verb: `rollback <deployment> [to
/// <revision>]` with and without the part in brackets, the shorter first.
/// (A bracket within one slot, `[<container>=]<image:tag>`, is part of
/// that slot.)
fn patterns(form: Form) -> Vec<Vec<&'static str>> {
    let syntax: Vec<&str> = form.syntax().split(' ').skip(1).collect();
    let start = syntax
        .iter()
        .position(|t| t.starts_with('[') && !t.contains(']'));
    match start {
        Some(i) => vec![
            syntax[..i].to_vec(),
            syntax
                .iter()
                .map(|t| t.trim_start_matches('[').trim_end_matches(']'))
                .collect(),
        ],
        None => vec![syntax],
    }
}

/// Words after a whole change ("scale web to 5 at 10pm", "scale web to 5
/// minus 1", "deploy nginx:1.2 to web web2"), other than filler words:
/// they may say when, how much, or something else again, and a reply
/// counting them would invite sending the change without them.
fn after_a_change(form: Form, words: &[&str]) -> Option<String> {
    let changes = form.verb().is_some_and(|verb| verb.is_write());
    // A namespace clause among them is told apart elsewhere.
    if !changes || words.iter().any(|w| w.eq_ignore_ascii_case("in")) {
        return None;
    }
    let patterns = patterns(form);
    // "deploy nginx:1.2 to the web", "rollback web to rev 2": one word
    // is too many, and it is named.
    if patterns
        .iter()
        .any(|pattern| matches!(extra_words(pattern, words), Some(Extra::Named(_))))
    {
        return None;
    }
    patterns.iter().rev().find_map(|pattern| {
        let rest = words.get(pattern.len()..).filter(|rest| !rest.is_empty())?;
        let whole = fits(pattern, &words[..pattern.len()]);
        (whole && !rest.iter().all(|w| is_filler(w))).then(|| rest.join(" "))
    })
}

/// "'status web prod' has 1 word more than 'status <deployment>'".
fn too_many(typed: &str, n: usize, form: Form) -> String {
    format!(
        "'{}' has {} more than '{}'",
        quote(typed),
        count(n, "word", "words"),
        form.syntax()
    )
}

/// A word for a kind of thing, where a name stands in a command.
fn names_a_kind(word: &str) -> bool {
    const KINDS: [&str; 10] = [
        "all",
        "container",
        "containers",
        "deployment",
        "deployments",
        "image",
        "namespace",
        "pod",
        "pods",
        "replicas",
    ];
    KINDS.iter().any(|kind| word.eq_ignore_ascii_case(kind))
}

/// Words people put around a command that name nothing in it.
fn is_filler(word: &str) -> bool {
    const FILLERS: [&str; 24] = [
        "a",
        "again",
        "all",
        "an",
        "app",
        "be",
        "deployment",
        "deployments",
        "down",
        "for",
        "me",
        "now",
        "of",
        "please",
        "pls",
        "replica",
        "replicas",
        "rev",
        "revision",
        "the",
        "thanks",
        "to",
        "up",
        "version",
    ];
    FILLERS.contains(&word.to_ascii_lowercase().as_str())
}

/// Words beyond what a form takes.
enum Extra {
    /// Words that, taken out, leave a command of the form's shape: filler
    /// words where no other choice of filler words does ("status of web",
    /// "scale up web to 5", "restart web now"), or any words where every
    /// choice leaves the same command ("list all", "history web web").
    /// Each part is a run of words next to each other.
    Named(Vec<String>),
    /// This many words too many, and no one choice of filler words to
    /// take out: naming a word of the command could send the person to
    /// another command ("scale Web api to 3" is not for api).
    Unclear(usize),
}

/// What is too many in `words` for `pattern`: `None` when they are not
/// more than it takes, or when no choice leaves a command of its shape.
fn extra_words(pattern: &[&str], words: &[&str]) -> Option<Extra> {
    // Patterns have at most three words, so a message here has at most
    // six: every choice can be tried.
    let n = words
        .len()
        .checked_sub(pattern.len())
        .filter(|n| (1..=3).contains(n))?;
    // Each choice that fits: the words taken out, and the command left.
    let fitting: Vec<(Vec<String>, Vec<&str>)> = choices(words.len(), n)
        .into_iter()
        .map(|out| {
            let kept: Vec<&str> = (0..words.len())
                .filter(|i| !out.contains(i))
                .map(|i| words[i])
                .collect();
            (runs(words, &out), kept)
        })
        .filter(|(_, kept)| fits(pattern, kept))
        .collect();
    let (first_out, first_kept) = fitting.first()?;
    // Whichever is taken out, the same command is left ("history web
    // web"), or the form takes no words the surplus could have been meant
    // for ("list all"). (One choice alone proves nothing: in "scale Web
    // api to 3", "Web" may be the name meant, mistyped.)
    let same_left = fitting.len() > 1 && fitting.iter().all(|(_, kept)| kept == first_kept);
    if same_left || !pattern.iter().any(|t| t.contains('<')) {
        return Some(Extra::Named(first_out.clone()));
    }
    let mut fillers: Vec<&Vec<String>> = fitting
        .iter()
        .map(|(out, _)| out)
        .filter(|parts| parts.iter().all(|run| run.split(' ').all(is_filler)))
        .collect();
    fillers.sort();
    fillers.dedup();
    match fillers.as_slice() {
        [only] => Some(Extra::Named((*only).clone())),
        _ => Some(Extra::Unclear(n)),
    }
}

/// Every choice of `n` of the indices `0..len`, each in ascending order.
fn choices(len: usize, n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    (0..len)
        .flat_map(|first| {
            choices(len - first - 1, n - 1)
                .into_iter()
                .map(move |rest| {
                    std::iter::once(first)
                        .chain(rest.into_iter().map(|i| i + first + 1))
                        .collect()
                })
        })
        .collect()
}

/// The words at `indices` (ascending), those next to each other joined.
fn runs(words: &[&str], indices: &[usize]) -> Vec<String> {
    let mut runs: Vec<Vec<&str>> = Vec::new();
    for (k, &i) in indices.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if k > 0 && indices[k - 1] + 1 == i => run.push(words[i]),
            _ => runs.push(vec![words[i]]),
        }
    }
    runs.into_iter().map(|run| run.join(" ")).collect()
}

/// Whether `words` have `pattern`'s shape: its keywords where they stand,
/// and in each slot a word of the slot's kind.
fn fits(pattern: &[&str], words: &[&str]) -> bool {
    pattern.len() == words.len()
        && pattern
            .iter()
            .zip(words)
            .all(|(slot, w)| fits_slot(pattern, slot, w))
}

/// Whether `word` can stand at `slot` of `pattern`: the keyword itself, or
/// for a `<slot>` a word of its kind that is not one of the keywords.
fn fits_slot(pattern: &[&str], slot: &str, word: &str) -> bool {
    let is_keyword = |w: &str| {
        pattern
            .iter()
            .any(|k| !k.contains('<') && w.eq_ignore_ascii_case(k))
    };
    match slot {
        _ if slot.contains('<') && is_keyword(word) => false,
        // "restart all pods in web": 'pods' is no deployment meant.
        "<deployment>" => deployment(word).is_ok() && !names_a_kind(word),
        "<replicas>" => Replicas::parse(word, Replicas::KUBERNETES_MAX).is_ok(),
        "<revision>" => revision(word).is_ok(),
        "<image:tag>" => tagged(word, Form::Deploy).is_ok(),
        "[<container>=]<image:tag>" => image_spec(word).is_ok(),
        keyword => word.eq_ignore_ascii_case(keyword),
    }
}
