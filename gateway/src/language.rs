//! The command language people type after mentioning the bot.
//!
//! ```text
//! scale <deployment> to <replicas>              (the seed's forms)
//! deploy <image:tag> to <deployment>
//! set image <deployment> [<container>=]<image:tag>
//! restart <deployment>
//! rollback <deployment> [to <revision>]
//! status <deployment>
//! list
//! history <deployment>
//! help
//! ```
//!
//! Any command may end with `in <namespace>`. Keywords are case-insensitive;
//! names and images go through the validated types of `chatops-shared`, so
//! a parsed command is valid by construction. Every error says what was
//! expected and gives an example.

use std::borrow::Cow;
use std::fmt;

use chatops_shared::text::{is_invisible, odd_characters, offer};
use diagnosis::meant;

mod diagnosis;
use chatops_shared::{
    CommandKind, ContainerName, DeploymentName, ImageError, ImageRef, NameError, Namespace,
    Replicas, ReplicasError, Verb, quote,
};

/// What a message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Command(Request),
    Help,
    /// `help scale`: the help for one form.
    HelpOn(Form),
    /// "thanks", "ok", "👍": no question, and a short answer.
    Thanks,
}

/// A command as typed, before policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: CommandKind,
    pub namespace: Namespace,
    /// `None` only for `list`.
    pub deployment: Option<DeploymentName>,
    /// The deployment-name patterns the sender may see (empty: any), as
    /// the policy sets them: parsing leaves it empty.
    pub visible: Vec<String>,
}

impl Request {
    /// The command as a person would type it, e.g. `scale web to 3 in prod`.
    pub fn describe(&self) -> String {
        self.kind
            .describe(self.deployment.as_ref(), &self.namespace)
    }
}

/// Defaults the parser needs from configuration.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub namespace: Namespace,
    /// The largest replica count any actor may ask for (the policy may lower it).
    pub max_replicas: u32,
}

/// Why a message is not a command. Its `Display` is the sentence for the
/// reply; [`ParseError::usage`] adds the expected form and an example.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("I don't know the command '{}'{}{}", quote(.word), odd_characters(.word), meant(.like, .command.as_deref()))]
    UnknownVerb {
        word: String,
        /// The form whose verb the word looks like a slip of.
        like: Option<Form>,
        /// The message with that verb, where it is a command.
        command: Option<String>,
    },
    #[error("that is not how {verb} works: {why}")]
    Malformed { verb: Form, why: String },
    #[error("a message holds one command, and this one has {0} lines")]
    SeveralLines(usize),
    #[error("a message holds one command, and this one joins several with '{0}'")]
    Joined(String),
    #[error("the bot cannot act on '{}'{}: it does exactly what a command says, so say only what to do, as in '{}'", quote(.word), odd_characters(.word), .form.example())]
    Qualified { word: String, form: Form },
    /// "deploy nginx:1.25 to nginx container in web": what is left without
    /// the word would deploy to a deployment in a namespace.
    #[error(
        "one container's image is set with 'set image', the deployment named first; a name after 'in' is a namespace"
    )]
    ContainerWord,
    #[error("the namespace is given as 'in <namespace>' at the end, not with '{}'", quote(.given))]
    NamespaceFlag { given: String, form: Form },
    #[error("the image '{}' names no version: give it a tag or a digest (without one, Kubernetes pulls whatever 'latest' is then), the image first", quote(.image))]
    Untagged { image: String, form: Form },
    /// "deploy 2.1 to web": the version, without its image.
    #[error("'{}' is a version without the image it is of: give both, as in '<image>:{}'", quote(.version), quote(.version))]
    VersionOnly { version: String, form: Form },
    #[error("a command starts with what to do, not with '{}': send '{}'", quote(.before), offer(.command))]
    Preamble { before: String, command: String },
    #[error("a change is made only from a command without '{mark}' at its end: send '{}' to make it", offer(.command))]
    Punctuated { mark: String, command: String },
    #[error("the image '{}' ends with '.', most likely a full stop rather than part of its tag: send '{}' to make the change", quote(.image), offer(.command))]
    TagPunctuated { image: String, command: String },
    /// "scale staging/web to 3": kubectl's `<namespace>/<name>`.
    #[error("the namespace is given as 'in <namespace>' at the end, not before the name as in '{}': send '{}'", quote(.given), offer(.command))]
    Slashed { given: String, command: String },
    #[error("{what} contains the uppercase letter '{letter}', and Kubernetes names are lowercase; did you mean '{}'?", offer(.command))]
    Lowercase {
        what: &'static str,
        letter: char,
        /// The message with its names in lowercase, a command.
        command: String,
    },
    #[error("{0}")]
    Deployment(NameError),
    #[error("{0}")]
    Namespace(NameError),
    #[error("{0}")]
    Container(NameError),
    #[error("{0}")]
    Image(ImageError),
    #[error("{0}")]
    Replicas(ReplicasError),
    #[error("the revision must be a whole number of at least 1, got '{}'{}", quote(.0), odd_characters(.0))]
    Revision(String),
    /// "01": a stray zero could as well be a missing digit.
    #[error("a revision is written without leading zeros, got '{}' (e.g. 'rollback web to 2')", quote(.0))]
    RevisionLeadingZero(String),
    #[error("revision {0} is larger than any revision can be; 'history <deployment>' lists them")]
    NoSuchRevision(String),
}

/// The forms of the language, for usage lines and help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Scale,
    Deploy,
    SetImage,
    Restart,
    Rollback,
    Status,
    List,
    History,
    Help,
}

impl Form {
    pub const ALL: [Form; 9] = [
        Form::Scale,
        Form::Deploy,
        Form::SetImage,
        Form::Restart,
        Form::Rollback,
        Form::Status,
        Form::List,
        Form::History,
        Form::Help,
    ];

    pub fn syntax(self) -> &'static str {
        match self {
            Form::Scale => "scale <deployment> to <replicas>",
            Form::Deploy => "deploy <image:tag> to <deployment>",
            Form::SetImage => "set image <deployment> [<container>=]<image:tag>",
            Form::Restart => "restart <deployment>",
            Form::Rollback => "rollback <deployment> [to <revision>]",
            Form::Status => "status <deployment>",
            Form::List => "list",
            Form::History => "history <deployment>",
            Form::Help => "help",
        }
    }

    pub fn example(self) -> &'static str {
        match self {
            Form::Scale => "scale web to 3",
            Form::Deploy => "deploy registry.example.com/web:2.1 to web",
            Form::SetImage => "set image web nginx=nginx:1.27",
            Form::Restart => "restart web",
            Form::Rollback => "rollback web to 2",
            Form::Status => "status web",
            Form::List => "list",
            Form::History => "history web",
            Form::Help => "help",
        }
    }

    /// What a command of this form does, for the help on it.
    pub fn does(self) -> &'static str {
        match self {
            Form::Scale => "sets how many replicas (pods) a deployment runs",
            Form::Deploy => {
                "rolls a deployment out with a new image in its container (one with several containers takes `set image`)"
            }
            Form::SetImage => {
                "rolls a deployment out with a new image in the container named (or its only one)"
            }
            Form::Restart => "replaces a deployment's pods, one by one, running what they ran",
            Form::Rollback => {
                "rolls a deployment back to its previous revision, or to the one given (`history` lists them)"
            }
            Form::Status => "shows a deployment's replicas, images, revision and conditions",
            Form::List => "lists the deployments of a namespace",
            Form::History => "shows a deployment's revisions and the latest commands on it",
            Form::Help => "shows what you can ask",
        }
    }

    /// The verb a policy must grant; `None` for help, which anyone may ask.
    pub fn verb(self) -> Option<Verb> {
        match self {
            Form::Scale => Some(Verb::Scale),
            Form::Deploy | Form::SetImage => Some(Verb::Deploy),
            Form::Restart => Some(Verb::Restart),
            Form::Rollback => Some(Verb::Rollback),
            Form::Status => Some(Verb::Status),
            Form::List => Some(Verb::List),
            Form::History => Some(Verb::History),
            Form::Help => None,
        }
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Form::SetImage => "set image",
            other => other.syntax().split(' ').next().unwrap_or_default(),
        };
        f.write_str(name)
    }
}

impl ParseError {
    /// The command the reply offers to send instead, if any.
    pub fn offered(&self) -> Option<&str> {
        match self {
            ParseError::UnknownVerb { command, .. } => command.as_deref(),
            ParseError::Preamble { command, .. }
            | ParseError::Punctuated { command, .. }
            | ParseError::TagPunctuated { command, .. }
            | ParseError::Slashed { command, .. }
            | ParseError::Lowercase { command, .. } => Some(command),
            _ => None,
        }
    }

    /// The form the person was attempting, when it is known.
    pub fn form(&self) -> Option<Form> {
        match self {
            ParseError::Malformed { verb, .. }
            | ParseError::Qualified { form: verb, .. }
            | ParseError::NamespaceFlag { form: verb, .. }
            | ParseError::Untagged { form: verb, .. }
            | ParseError::VersionOnly { form: verb, .. } => Some(*verb),
            ParseError::ContainerWord => Some(Form::SetImage),
            // With the whole command offered, no usage is needed; `help`
            // has no syntax to show.
            ParseError::UnknownVerb {
                like,
                command: None,
                ..
            } => like.filter(|form| *form != Form::Help),
            _ => None,
        }
    }
}

/// Removes the bot's name from the start of the plain text, as Webex renders
/// a mention (`kube scale web to 3`), with or without a leading `@`; twice
/// over if it was mentioned twice (`kube @kube status web`).
pub fn strip_mention<'a>(text: &'a str, bot_name: &str) -> &'a str {
    strip_mentions(text, bot_name).0
}

/// [`strip_mention`], with how many mentions it took off; a greeting
/// before the mention goes with it ("hi kube, status web").
pub fn strip_mentions<'a>(text: &'a str, bot_name: &str) -> (&'a str, usize) {
    let (rest, taken) = strip_leading_mentions(text, bot_name);
    if let Some((greeting, after)) = rest.split_once(char::is_whitespace)
        && GREETINGS.contains(
            &greeting
                .trim_end_matches([',', '!'])
                .to_ascii_lowercase()
                .as_str(),
        )
    {
        let (after, more) = strip_leading_mentions(after, bot_name);
        if more > 0 {
            return (after, taken + more);
        }
    }
    (rest, taken)
}

/// Words that may greet the bot before its name.
const GREETINGS: [&str; 7] = ["hi", "hello", "hey", "yo", "ok", "okay", "dear"];

fn strip_leading_mentions<'a>(text: &'a str, bot_name: &str) -> (&'a str, usize) {
    let mut rest = text.trim_start();
    let mut taken = 0;
    loop {
        let next = strip_one_mention(rest, bot_name);
        if next.len() == rest.len() {
            return (rest, taken);
        }
        rest = next;
        taken += 1;
    }
}

/// Removes the bot's name from the end of the plain text (`scale web to 3
/// kube`, `status web @kube?`), for a message that mentions it there: not
/// at its start, or there and at the end too. Punctuation after the name
/// stays at the end.
pub fn strip_trailing_mention<'a>(text: &'a str, bot_name: &str) -> Cow<'a, str> {
    let trimmed = text.trim_end();
    let core = trimmed.trim_end_matches(END_PUNCTUATION);
    let mark = &trimmed[core.len()..];
    let Some(at) = core.len().checked_sub(bot_name.len()) else {
        return Cow::Borrowed(text);
    };
    let (Some(head), Some(name)) = (core.get(..at), core.get(at..)) else {
        return Cow::Borrowed(text);
    };
    let head = head.strip_suffix('@').unwrap_or(head);
    if bot_name.is_empty()
        || !name.eq_ignore_ascii_case(bot_name)
        || !head.ends_with(char::is_whitespace)
    {
        return Cow::Borrowed(text);
    }
    match mark {
        "" => Cow::Borrowed(head.trim_end()),
        mark => Cow::Owned(format!("{}{mark}", head.trim_end())),
    }
}

/// The bot's name taken off a message typed without Webex's mention
/// markup (`chatops parse`, the demo's prompt): at its start, and at its
/// end where it is written `@kube`.
pub fn strip_typed_mentions<'a>(text: &'a str, bot_name: &str) -> Cow<'a, str> {
    let text = strip_mention(text, bot_name);
    let core = text.trim_end().trim_end_matches(END_PUNCTUATION);
    let typed_at = core
        .len()
        .checked_sub(bot_name.len())
        .and_then(|at| core.get(..at))
        .is_some_and(|head| head.ends_with('@'));
    if typed_at {
        strip_trailing_mention(text, bot_name)
    } else {
        Cow::Borrowed(text)
    }
}

fn strip_one_mention<'a>(text: &'a str, bot_name: &str) -> &'a str {
    let trimmed = text.trim_start();
    let without_at = trimmed.strip_prefix('@').unwrap_or(trimmed);
    let Some(head) = without_at.get(..bot_name.len()) else {
        return trimmed;
    };
    let rest = &without_at[bot_name.len()..];
    let at_word_end =
        rest.is_empty() || rest.starts_with(|c: char| c.is_whitespace() || ",:?!".contains(c));
    if !bot_name.is_empty() && head.eq_ignore_ascii_case(bot_name) && at_word_end {
        rest.trim_start_matches([',', ':', '?', '!']).trim_start()
    } else {
        trimmed
    }
}

/// Sentence punctuation a message may end with.
const END_PUNCTUATION: [char; 12] = [
    '.', ',', ';', '!', '?', '…', '。', '．', '，', '；', '！', '？',
];

/// Parses one message (mention already stripped).
pub fn parse(text: &str, defaults: &Defaults) -> Result<Parsed, ParseError> {
    parse_message(text, defaults).map_err(|error| {
        let error = diagnosis::lowercase(error, text, defaults);
        diagnosis::slashed(error, text, defaults)
    })
}

fn parse_message(text: &str, defaults: &Defaults) -> Result<Parsed, ParseError> {
    let text = unquoted(trim_invisible(text));
    let lines = text
        .split([
            '\n', '\r', '\u{b}', '\u{c}', '\u{85}', '\u{2028}', '\u{2029}',
        ])
        .filter(|l| !l.trim().is_empty())
        .count();
    if lines > 1 {
        return Err(ParseError::SeveralLines(lines));
    }
    // Sentence punctuation at the end ("status web?", "list."): a question
    // is answered without it. A change is not made from it: "restart web?"
    // may be asking, and in "set image web nginx=nginx:1.2." the '.' would
    // be part of the tag.
    let text = trim_invisible(text);
    let bare = text.trim_end_matches(END_PUNCTUATION).trim_end();
    for joint in [";", "&&"] {
        if bare.contains(joint) {
            return Err(ParseError::Joined(joint.to_owned()));
        }
    }
    if bare.len() == text.len() {
        return parse_command(text, defaults);
    }
    match parse_command(bare, defaults)? {
        Parsed::Command(request) if request.kind.verb().is_write() => Err(ParseError::Punctuated {
            mark: text[bare.len()..].trim().to_owned(),
            command: bare.to_owned(),
        }),
        parsed => Ok(parsed),
    }
}

/// A command pasted as code: `` `scale web to 3` ``, or a fenced block
/// (its language tag on the fence's line too), without the backticks.
fn unquoted(text: &str) -> &str {
    if let Some(inner) = text.strip_prefix("```").and_then(|t| t.strip_suffix("```")) {
        // "```bash\nstatus web\n```": a word on the opening fence's line
        // is the code's language.
        let inner = match inner.split_once('\n') {
            Some((tag, code))
                if !tag.trim().contains(char::is_whitespace) && !code.trim().is_empty() =>
            {
                code
            }
            _ => inner,
        };
        return inner.trim();
    }
    match text.strip_prefix('`').and_then(|t| t.strip_suffix('`')) {
        Some(inner) if !inner.contains('`') => inner.trim(),
        _ => text,
    }
}

/// `text` without the white space and the invisible characters that copy
/// and paste leave at its edges (a zero-width space, a soft hyphen, a
/// direction mark at the end, an emoji's variation selector). Marks that
/// reorder what follows them (overrides, embeddings, isolates) are kept
/// wherever they are, and so is a right-to-left mark at the start: others
/// in the room may see another command than the one run, so it is refused.
fn trim_invisible(text: &str) -> &str {
    let reorders = |c: char| matches!(u32::from(c), 0x202A..=0x202E | 0x2066..=0x2069);
    let lays_out = |c: char| reorders(c) || matches!(u32::from(c), 0x061C | 0x200F);
    text.trim_start_matches(|c: char| c.is_whitespace() || (is_invisible(c) && !lays_out(c)))
        .trim_end_matches(|c: char| {
            c.is_whitespace() || (is_invisible(c) && !reorders(c)) || c == '\u{FE0F}'
        })
}

/// Parses one command, punctuation and all.
fn parse_command(text: &str, defaults: &Defaults) -> Result<Parsed, ParseError> {
    let parsed = parse_words(text, defaults)?;
    if let Parsed::Command(request) = &parsed
        && let CommandKind::SetImage { container, image } = &request.kind
        && image.digest().is_none()
        && let Some(tag) = image.tag()
        && tag.ends_with('.')
    {
        let meant = tag.trim_end_matches('.');
        // "deploy nginx:1.21. to web": a '.' the grammar allows at a tag's
        // end, and a sentence's full stop that slipped in.
        let at = image.as_str().len() - tag.len();
        let meant = ImageRef::parse(&format!("{}{meant}", &image.as_str()[..at]))
            .map_err(ParseError::Image)?;
        let command = Request {
            kind: CommandKind::SetImage {
                container: container.clone(),
                image: meant,
            },
            ..request.clone()
        };
        return Err(ParseError::TagPunctuated {
            image: image.as_str().to_owned(),
            command: command.describe(),
        });
    }
    Ok(parsed)
}

/// [`parse_command`] without its check of the result.
fn parse_words(text: &str, defaults: &Defaults) -> Result<Parsed, ParseError> {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    let Some(first) = words.first() else {
        return Ok(Parsed::Help);
    };
    let Some(form) = form_of(first) else {
        if thanks(&words) {
            return Ok(Parsed::Thanks);
        }
        if let Some(answer) = question(&words, defaults) {
            return Ok(answer);
        }
        if asks_what_to_ask(&words) {
            return Ok(Parsed::Help);
        }
        return diagnosis::preamble(&words, defaults)
            .unwrap_or_else(|| Err(diagnosis::unknown_verb(&words, defaults)));
    };
    // "scale --help", "set image -h", "restart help": the help on it (a
    // deployment called help is asked about with `in <namespace>`).
    if asks_for_help(form, &words, &["--help", "-h", "help"]) {
        return Ok(Parsed::HelpOn(form));
    }
    let namespace = match words.len() {
        n if n >= 2 && words[n - 2].eq_ignore_ascii_case("in") => {
            let ns = words[n - 1];
            words.truncate(n - 2);
            Namespace::parse(ns).map_err(ParseError::Namespace)?
        }
        _ => defaults.namespace.clone(),
    };
    let ends_with_namespace = words.len() < text.split_whitespace().count();
    let malformed = || diagnosis::malformed(form, &words, ends_with_namespace);
    let kw = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    let request = |kind, deployment: Option<DeploymentName>| {
        Ok(Parsed::Command(Request {
            kind,
            namespace: namespace.clone(),
            deployment,
            visible: Vec::new(),
        }))
    };
    match (form, &words[1..]) {
        // `help scale`, `help set image`: the help on that form; `help`,
        // `help me`: whatever else follows, the help is the answer.
        (Form::Help, rest) => Ok(match rest.first().and_then(|w| form_of(w)) {
            Some(on) if on != Form::Help => Parsed::HelpOn(on),
            _ => Parsed::Help,
        }),
        // "scale web to 3 replicas", as people say it.
        (Form::Scale, [d, to, n, unit @ ..]) if kw(to, "to") && said(unit, &UNITS) => {
            let replicas =
                Replicas::parse(n, defaults.max_replicas).map_err(ParseError::Replicas)?;
            request(CommandKind::Scale { replicas }, Some(deployment(d)?))
        }
        (Form::Deploy, [image, to, d]) if kw(to, "to") => {
            let image = tagged(image, form)?;
            request(
                CommandKind::SetImage {
                    container: None,
                    image,
                },
                Some(deployment(d)?),
            )
        }
        (Form::SetImage, [img_kw, d, spec]) if kw(img_kw, "image") => {
            let deployment = deployment(d)?;
            let (container, image) = image_spec(spec)?;
            request(CommandKind::SetImage { container, image }, Some(deployment))
        }
        (Form::Restart, [d]) => request(CommandKind::Restart, Some(deployment(d)?)),
        (Form::Rollback, [d]) => request(
            CommandKind::Rollback { revision: None },
            Some(deployment(d)?),
        ),
        // "rollback web to revision 2", as `history` names them.
        (Form::Rollback, [d, to, named @ .., r]) if kw(to, "to") && said(named, &["revision"]) => {
            let deployment = deployment(d)?;
            let revision = revision(r)?;
            request(
                CommandKind::Rollback {
                    revision: Some(revision),
                },
                Some(deployment),
            )
        }
        (Form::Status, [d]) => request(CommandKind::Status, Some(deployment(d)?)),
        (Form::History, [d]) => request(CommandKind::History, Some(deployment(d)?)),
        (Form::List, []) => request(CommandKind::List { only: Vec::new() }, None),
        _ => Err(malformed()),
    }
}

/// Whether `words` are `form`'s verb ("scale", "set image") and then one
/// of `asking`, in any case.
fn asks_for_help(form: Form, words: &[&str], asking: &[&str]) -> bool {
    let verb = form
        .syntax()
        .split(' ')
        .take_while(|t| t.chars().all(|c| c.is_ascii_lowercase()))
        .count();
    form != Form::Help
        && words.len() == verb + 1
        && asking.iter().any(|a| words[verb].eq_ignore_ascii_case(a))
}

/// The words "scale web to 3" may end with.
const UNITS: [&str; 4] = ["replicas", "replica", "pods", "pod"];

/// Whether `words` are none, or one of `may` (in any case): a word a
/// command may add where people say it.
fn said(words: &[&str], may: &[&str]) -> bool {
    match words {
        [] => true,
        [word] => may.iter().any(|m| word.eq_ignore_ascii_case(m)),
        _ => false,
    }
}

/// Thanks or an acknowledgement, and nothing else ("thanks!", "ok thank
/// you", "great, ty", "👍").
fn thanks(words: &[&str]) -> bool {
    const THANKS: [&str; 21] = [
        "thanks", "thank", "thx", "ty", "tyvm", "cheers", "ok", "okay", "k", "great", "cool",
        "nice", "perfect", "awesome", "got", "it", "👍", "🙏", "🙌", "✅", "👌",
    ];
    const WITH: [&str; 6] = ["you", "so", "much", "a", "lot", "very"];
    words.iter().all(|word| {
        let word = word
            .trim_end_matches(END_PUNCTUATION)
            // An emoji's presentation and skin tone.
            .trim_end_matches(|c: char| matches!(u32::from(c), 0xFE0F | 0x1F3FB..=0x1F3FF))
            .trim_end_matches([',', ':'])
            .to_lowercase();
        THANKS.contains(&word.as_str()) || WITH.contains(&word.as_str()) || word.is_empty()
    }) && words.iter().any(|word| {
        let word = word.trim_end_matches(END_PUNCTUATION).to_lowercase();
        THANKS.iter().any(|t| word.starts_with(t))
    })
}

/// A question that names a command: "what's the status of web?" is that
/// question (a change is never made from a question), "how do I scale?"
/// the help on it.
fn question(words: &[&str], defaults: &Defaults) -> Option<Parsed> {
    const ASKING: [&str; 8] = [
        "what", "what's", "whats", "how", "how's", "hows", "show", "tell",
    ];
    let first = words[0].to_lowercase().replace('’', "'");
    if !ASKING.contains(&first.as_str()) {
        return None;
    }
    let at = words.iter().position(|w| {
        form_of(w.trim_end_matches(END_PUNCTUATION)).is_some_and(|f| f != Form::Help)
    })?;
    let verb = words[at].trim_end_matches(END_PUNCTUATION);
    let form = form_of(verb)?;
    let rest = &words[at + 1..];
    let rest = match rest.first() {
        Some(w) if ["of", "for", "on"].contains(&w.to_ascii_lowercase().as_str()) => &rest[1..],
        _ => rest,
    };
    let asked = std::iter::once(verb)
        .chain(rest.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let asked = asked.trim_end_matches(END_PUNCTUATION);
    match parse_message(asked, defaults) {
        Ok(Parsed::Command(request)) if !request.kind.verb().is_write() => {
            Some(Parsed::Command(request))
        }
        _ => Some(Parsed::HelpOn(form)),
    }
}

/// A greeting or a question with no command in it ("hi", "what can you
/// do?"): answered with the help, which says what to ask.
fn asks_what_to_ask(words: &[&str]) -> bool {
    const OPENERS: [&str; 12] = [
        "hi", "hello", "hey", "yo", "thanks", "thank", "thx", "what", "how", "commands", "usage",
        "menu",
    ];
    let first = words[0]
        .trim_end_matches(END_PUNCTUATION)
        .trim_end_matches([',', ':'])
        .to_ascii_lowercase();
    // A verb, or a slip of one ("hi scael web to 3"), is a command to read.
    let verb = |w: &&str| form_of(w).is_some() || diagnosis::misspelt(w).is_some();
    OPENERS.contains(&first.as_str()) && !words.iter().skip(1).any(verb)
}

/// The words a command starts with, and the form each starts.
const VERBS: [(&str, Form); 12] = [
    ("scale", Form::Scale),
    ("deploy", Form::Deploy),
    ("set", Form::SetImage),
    ("restart", Form::Restart),
    ("rollback", Form::Rollback),
    ("undo", Form::Rollback),
    ("status", Form::Status),
    ("list", Form::List),
    ("ls", Form::List),
    ("history", Form::History),
    ("help", Form::Help),
    ("?", Form::Help),
];

/// The first form a message's words name, other than the help ("scale web
/// to 99", "please scale web to 99" attempt a scale, however wrong the
/// rest).
pub fn attempted(text: &str) -> Option<Form> {
    unquoted(trim_invisible(text))
        .split_whitespace()
        .filter_map(form_of)
        .find(|form| *form != Form::Help)
}

/// The form a command's first word names.
fn form_of(word: &str) -> Option<Form> {
    VERBS
        .iter()
        .find(|(verb, _)| verb.eq_ignore_ascii_case(word))
        .map(|(_, form)| *form)
}

/// An image to deploy: valid, and with a tag or digest, so the version
/// that runs is the one asked for ("deploy web to api", its words swapped,
/// would otherwise deploy an image called "web").
fn tagged(word: &str, form: Form) -> Result<ImageRef, ParseError> {
    // "2.1", "v1.4.2": a version, which as an image would name a
    // repository.
    let digits = word.strip_prefix(['v', 'V']).unwrap_or(word);
    if digits.starts_with(|c: char| c.is_ascii_digit())
        && digits.contains('.')
        && digits
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
    {
        return Err(ParseError::VersionOnly {
            version: word.to_owned(),
            form,
        });
    }
    let image = ImageRef::parse(word).map_err(ParseError::Image)?;
    if image.tag().is_none() && image.digest().is_none() {
        return Err(ParseError::Untagged {
            image: word.to_owned(),
            form,
        });
    }
    Ok(image)
}

/// `set image`'s last word, `[<container>=]<image:tag>`: an image
/// reference never contains '=', so the first '=' separates the container.
fn image_spec(spec: &str) -> Result<(Option<ContainerName>, ImageRef), ParseError> {
    let (container, image) = match spec.split_once('=') {
        Some((c, i)) => (
            Some(ContainerName::parse(c).map_err(ParseError::Container)?),
            i,
        ),
        None => (None, spec),
    };
    Ok((container, tagged(image, Form::SetImage)?))
}

/// A revision as typed: `3` or `r3`, at least 1, without leading zeros
/// ("01": a stray zero could as well be a missing digit).
fn revision(word: &str) -> Result<u64, ParseError> {
    let digits = word.strip_prefix(['r', 'R']).unwrap_or(word);
    if digits.len() > 1 && digits.starts_with('0') {
        return Err(ParseError::RevisionLeadingZero(word.to_owned()));
    }
    match digits.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        Err(_) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Err(ParseError::NoSuchRevision(quote(word)))
        }
        _ => Err(ParseError::Revision(word.to_owned())),
    }
}

/// A deployment as typed; kubectl's `deployment/web` form is accepted, in
/// each of the ways kubectl names the resource (`deploy/web`,
/// `deployments.apps/web`, `Deployment.v1.apps/web`).
fn deployment(word: &str) -> Result<DeploymentName, ParseError> {
    let is_deployments = |resource: &str| {
        let resource = resource.to_ascii_lowercase();
        let resource = resource
            .strip_suffix(".v1.apps")
            .or_else(|| resource.strip_suffix(".apps"))
            .unwrap_or(&resource);
        ["deployment", "deployments", "deploy"].contains(&resource)
    };
    let name = match word.split_once('/') {
        Some((resource, name)) if is_deployments(resource) => name,
        _ => word,
    };
    DeploymentName::parse(name).map_err(ParseError::Deployment)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The defaults the language's tests read with: namespace `default`,
    /// at most 20 replicas.
    pub(crate) fn defaults() -> Defaults {
        Defaults {
            namespace: Namespace::parse("default").expect("valid"),
            max_replicas: 20,
        }
    }

    fn ok(text: &str) -> Request {
        match parse(text, &defaults()) {
            Ok(Parsed::Command(r)) => r,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn every_form_parses() {
        let cases = [
            ("scale web to 5", "scale web to 5 in default"),
            ("SCALE Web-Not to 5", ""),
            ("Scale web TO 0 in prod", "scale web to 0 in prod"),
            ("scale deployment/web to 20", "scale web to 20 in default"),
            ("status deployments.apps/web", "status web in default"),
            ("restart Deployment.v1.apps/web", "restart web in default"),
            ("status deploy/web", "status web in default"),
            (
                "deploy registry/web:2.1 to web",
                "deploy registry/web:2.1 to web in default",
            ),
            (
                "deploy nginx:1.21 to nginx-deployment in staging",
                "deploy nginx:1.21 to nginx-deployment in staging",
            ),
            (
                "set image web nginx=nginx:1.27",
                "set image web nginx=nginx:1.27 in default",
            ),
            (
                "set image web nginx:1.27",
                "deploy nginx:1.27 to web in default",
            ),
            (
                "Set Image api.v2 sidecar=[::1]:5000/proxy:1 IN prod",
                "set image api.v2 sidecar=[::1]:5000/proxy:1 in prod",
            ),
            ("restart web", "restart web in default"),
            ("rollback web", "rollback web in default"),
            ("rollback web to 3", "rollback web to 3 in default"),
            ("undo web to r2", "rollback web to 2 in default"),
            ("rollback web to Revision 2", "rollback web to 2 in default"),
            ("scale web to 3 replicas", "scale web to 3 in default"),
            ("scale web to 1 Pod in prod", "scale web to 1 in prod"),
            ("status web in prod", "status web in prod"),
            ("list", "list in default"),
            ("list in prod", "list in prod"),
            ("history web", "history web in default"),
            ("  scale   web   to   5  ", "scale web to 5 in default"),
            // A question after polite words, or with an ellipsis, is
            // answered; "status help" asks about the deployment `help`.
            ("could you list?", "list in default"),
            ("please status web in prod", "status web in prod"),
            ("status web…", "status web in default"),
            ("status help in default", "status help in default"),
            // Pasted as code.
            ("`scale web to 3`", "scale web to 3 in default"),
            ("```status web```", "status web in default"),
            ("```\nrestart web\n```", "restart web in default"),
            ("```bash\nrestart web in prod\n```", "restart web in prod"),
            ("```list\n```", "list in default"),
            // What copy and paste leaves at the edges.
            (
                "\u{200b}scale web to 4\u{200f}",
                "scale web to 4 in default",
            ),
            ("\u{feff}restart web\u{ad}", "restart web in default"),
            (
                "scale web to 4\u{fe0f}\u{200e}",
                "scale web to 4 in default",
            ),
            // A mark that lays out what follows is not: the room may show
            // another command than the one run.
            ("\u{202e}scale web to 4", ""),
            ("scale web to 4\u{202e}", ""),
            ("\u{200f}scale web to 4", ""),
            ("scale web\u{200b} to 4", ""),
        ];
        for (text, want) in cases {
            if want.is_empty() {
                assert!(parse(text, &defaults()).is_err(), "{text:?}");
                continue;
            }
            assert_eq!(ok(text).describe(), want, "{text:?}");
        }
        assert_eq!(parse("help", &defaults()), Ok(Parsed::Help));
        assert_eq!(parse("HELP", &defaults()), Ok(Parsed::Help));
        assert_eq!(parse("", &defaults()), Ok(Parsed::Help));
        assert_eq!(parse("help me please", &defaults()), Ok(Parsed::Help));
        assert_eq!(parse("help help", &defaults()), Ok(Parsed::Help));
        assert_eq!(parse("please help", &defaults()), Ok(Parsed::Help));
        for thanks in [
            "thanks!",
            "Thank you so much",
            "ok thanks",
            "great, ty",
            "👍",
            "🙏🏻",
            "ok",
            "got it",
        ] {
            assert_eq!(parse(thanks, &defaults()), Ok(Parsed::Thanks), "{thanks}");
        }
        assert_eq!(
            parse("thanks, what can you do?", &defaults()),
            Ok(Parsed::Help)
        );
        assert_eq!(parse("can you help?", &defaults()), Ok(Parsed::Help));
        for (text, form) in [
            ("scale help", Form::Scale),
            ("scale --help", Form::Scale),
            ("Set Image -h", Form::SetImage),
            ("deploy help", Form::Deploy),
            ("status --help", Form::Status),
            ("list help", Form::List),
            ("restart help", Form::Restart),
            ("status help", Form::Status),
            ("help scale", Form::Scale),
            ("Help Set image", Form::SetImage),
            ("help undo", Form::Rollback),
            ("help ls?", Form::List),
        ] {
            assert_eq!(
                parse(text, &defaults()),
                Ok(Parsed::HelpOn(form)),
                "{text:?}"
            );
        }
    }

    /// A '.' at the end of a tag is taken for a full stop, and the command
    /// without it offered; elsewhere in a tag it is part of it.
    #[test]
    fn a_full_stop_after_a_tag_is_not_deployed() {
        for (text, offered) in [
            (
                "deploy nginx:1.21. to web",
                "deploy nginx:1.21 to web in default",
            ),
            (
                "set image web app=registry.example.com:5000/app:2.0. in prod",
                "set image web app=registry.example.com:5000/app:2.0 in prod",
            ),
            (
                "deploy nginx:1.. to web",
                "deploy nginx:1 to web in default",
            ),
        ] {
            let err = parse(text, &defaults()).expect_err(text).to_string();
            assert!(
                err.contains(&format!(
                    "most likely a full stop rather than part of its tag: send '{offered}'"
                )),
                "{text:?}: {err}"
            );
        }
        for text in ["deploy nginx:1.21.3 to web", "deploy nginx:v1.-rc to web"] {
            assert!(
                matches!(parse(text, &defaults()), Ok(Parsed::Command(_))),
                "{text:?}"
            );
        }
    }

    /// A greeting or a question with no command in it gets the help; one
    /// with a command in it is read as before.
    #[test]
    fn greetings_and_questions_get_the_help() {
        for text in [
            "hi",
            "Hello!",
            "hey, what's up",
            "what can you do?",
            "What do you do",
            "how does this work",
            "thanks, and what else can you do?",
            "commands?",
        ] {
            assert_eq!(parse(text, &defaults()), Ok(Parsed::Help), "{text:?}");
        }
        // A question naming a command: answered if it asks, the help on
        // the command if it would change something.
        for (text, want) in [
            ("what's the status of web?", "status web in default"),
            ("What’s the status of web in prod?", "status web in prod"),
            ("show me the history for web", "history web in default"),
        ] {
            assert_eq!(ok(text).describe(), want, "{text:?}");
        }
        for (text, form) in [
            ("how do I scale web", Form::Scale),
            ("how do I deploy?", Form::Deploy),
            ("what's the way to restart web", Form::Restart),
            ("what about scale web to 3", Form::Scale),
        ] {
            assert_eq!(
                parse(text, &defaults()),
                Ok(Parsed::HelpOn(form)),
                "{text:?}"
            );
        }
        for (text, want) in [
            ("hi, scale web to 3", "send 'scale web to 3'"),
            ("hi scael web to 3", "I don't know the command 'hi'"),
            ("whatever", "I don't know the command 'whatever'"),
        ] {
            let err = parse(text, &defaults()).expect_err(text).to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn parsed_commands_carry_validated_arguments() {
        let r = ok("scale web to 5 in prod");
        assert_eq!(
            r.kind,
            CommandKind::Scale {
                replicas: Replicas::new(5, 5).expect("valid")
            }
        );
        assert_eq!(r.namespace.as_str(), "prod");
        assert_eq!(r.deployment.map(|d| d.to_string()).as_deref(), Some("web"));
        let r = ok("set image web nginx=nginx:1.27");
        let CommandKind::SetImage { container, image } = r.kind else {
            panic!()
        };
        assert_eq!(container.map(|c| c.to_string()).as_deref(), Some("nginx"));
        assert_eq!(image.as_str(), "nginx:1.27");
        assert_eq!(ok("list").deployment, None);
        // A question is answered whatever punctuation ends it.
        assert_eq!(ok("status web?").describe(), "status web in default");
        assert_eq!(ok("list.").describe(), "list in default");
        // Names that are also words the diagnosis looks for stay names.
        assert_eq!(ok("restart no").describe(), "restart no in default");
        assert_eq!(
            ok("scale more to 3").describe(),
            "scale more to 3 in default"
        );
        assert_eq!(
            ok("scale web to 3 in ns").describe(),
            "scale web to 3 in ns"
        );
        assert_eq!(
            ok("deploy registry:5000/web:1.2 to web").describe(),
            "deploy registry:5000/web:1.2 to web in default"
        );
        assert_eq!(ok("status web？").describe(), "status web in default");
        assert_eq!(ok("history web in prod,").describe(), "history web in prod");
        for text in ["Help!", "help?", "?", "!", "help..."] {
            assert_eq!(parse(text, &defaults()), Ok(Parsed::Help), "{text:?}");
        }
    }

    #[test]
    fn malformed_forms_say_what_was_expected() {
        let cases: &[(&str, &str)] = &[
            (
                "scale web",
                "that is not how scale works: 'scale web' needs 'to <replicas>' after it",
            ),
            ("scale web 5", "'to' is missing before '5'"),
            ("scale to 5", "'<deployment>' is missing before 'to'"),
            ("scale web to 5 please", "'please' is not part of it"),
            (
                "scale web tо 5",
                "'tо' stands where 'to' should (it contains 'о' (U+043E))",
            ),
            ("deploy nginx:1.21 web", "'to' is missing before 'web'"),
            (
                "deploy nginx:1.21",
                "'deploy nginx:1.21' needs 'to <deployment>' after it",
            ),
            (
                "set web nginx=nginx:1",
                "that is not how set image works: 'image' is missing before 'web'",
            ),
            (
                "set image web",
                "'set image web' needs '[<container>=]<image:tag>' after it",
            ),
            ("restart", "'restart' needs '<deployment>' after it"),
            ("restart web now", "'now' is not part of it"),
            ("status of web", "'of' is not part of it"),
            ("scale up web to 5", "'up' is not part of it"),
            (
                "scale deployment web to 3",
                "'deployment' is not part of it",
            ),
            ("scale web to to 3", "'to' is not part of it"),
            (
                "scale web to 3 replicas please",
                "'replicas please' is not part of it",
            ),
            ("rollback web to version 2", "'version' is not part of it"),
            ("deploy nginx:1.2 to the web", "'the' is not part of it"),
            ("set image web nginx=nginx:1 now", "'now' is not part of it"),
            ("set image web to nginx:1", "'to' is not part of it"),
            ("restart deployment web", "'deployment' is not part of it"),
            ("scale web up to 5", "'up' is not part of it"),
            ("scale the web up to 5", "'the' and 'up' are not part of it"),
            ("rollback web to rev 2", "'rev' is not part of it"),
            (
                "rollback web to the previous",
                "cannot act on 'to the previous'",
            ),
            (
                "status web prod",
                "'status web prod' has 1 word more than 'status <deployment>'",
            ),
            (
                "set image nginx=nginx:1",
                "'<deployment>' is missing before 'nginx=nginx:1'",
            ),
            ("rollback web 3", "'to' is missing before '3'"),
            (
                "rollback web to",
                "'rollback web to' needs '<revision>' after it",
            ),
            ("rollback web to revision two", "at least 1, got 'two'"),
            (
                "status",
                "that is not how status works: 'status' needs '<deployment>' after it",
            ),
            (
                "status web in default in default",
                "it names a namespace twice",
            ),
            (
                "list web",
                "that is not how list works: 'web' is not part of it",
            ),
            (
                "list prod",
                "'prod' is not part of it; a namespace is named after 'in', as in 'list in prod'",
            ),
            (
                "list deployments",
                "list works: 'deployments' is not part of it",
            ),
            ("history", "'history' needs '<deployment>' after it"),
            ("history web web", "'web' is not part of it"),
            (
                "status web\nscale web to 5",
                "a message holds one command, and this one has 2 lines",
            ),
            (
                "status web\rscale web to 5\u{2028}list",
                "a message holds one command, and this one has 3 lines",
            ),
            // A change is not made from a sentence that may be asking, nor
            // with a '.' that would become part of a tag.
            (
                "restart web?",
                "a change is made only from a command without '?' at its end: send 'restart web' to make it",
            ),
            (
                "set image web nginx=nginx:1.22.",
                "without '.' at its end: send 'set image web nginx=nginx:1.22' to make it",
            ),
            ("scale web to 3 !!", "without '!!' at its end"),
            ("restart web…", "without '…' at its end: send 'restart web'"),
            ("restart web, please", "'please' is not part of it"),
            (
                "scale staging/web to 3",
                "not before the name as in 'staging/web': send 'scale web to 3 in staging'",
            ),
            ("status prod/api.v2", "send 'status api.v2 in prod'"),
            ("restart pods/web", "contains '/'"),
            ("restart rs/web", "contains '/'"),
            ("scale staging/web to 3 in prod", "contains '/'"),
            ("scale -n staging web to 3", "not with '-n'"),
            ("list pods", "list works: 'pods' is not part of it"),
            (
                "deploy 2.1 to web",
                "'2.1' is a version without the image it is of: give both, as in '<image>:2.1'",
            ),
            (
                "set image web nginx=v1.4.2",
                "'v1.4.2' is a version without the image",
            ),
            // Punctuation does not hide what else is wrong.
            (
                "scale web to three.",
                "whole number from 0 to 20, got 'three'",
            ),
            ("delete web", "I don't know the command 'delete'"),
            // A slip of a verb is pointed out, with the command it would
            // be, where that is one (offered, not run).
            (
                "scael web to 3",
                "I don't know the command 'scael'; did you mean 'scale web to 3'?",
            ),
            (
                "Stauts web in prod",
                "'Stauts'; did you mean 'status web in prod'?",
            ),
            ("rolback web", "did you mean 'rollback web'?"),
            ("histroy web", "did you mean 'history web'?"),
            ("lsit", "did you mean 'list'?"),
            ("hlep", "did you mean 'help'?"),
            ("scael web to 99", "'scael'; did you mean 'scale'?"),
            ("depoly nginx to web", "'depoly'; did you mean 'deploy'?"),
            (
                "please scale web to 3",
                "a command starts with what to do, not with 'please': send 'scale web to 3'",
            ),
            (
                "can you restart web?",
                "not with 'can you': send 'restart web'",
            ),
            // Words that change what the command says are refused as such,
            // never named as too many: dropping them would do what was not
            // meant.
            (
                "scale web to 0 not in prod",
                "the bot cannot act on 'not': it does exactly what a command says, so say only what to do, as in 'scale web to 3'",
            ),
            ("restart web unless in prod", "cannot act on 'unless'"),
            ("scale web to 5 no wait 3", "cannot act on 'no'"),
            ("scale web to 0 if errors spike", "cannot act on 'if'"),
            ("scale web to 5 (just kidding)", "cannot act on 'kidding)'"),
            ("scale web to 5 more", "cannot act on 'more'"),
            // Nor are any other words after a whole change: they may say
            // when, or how much, and counting them invites dropping them.
            ("scale web to 5 at 10pm", "cannot act on 'at 10pm'"),
            ("scale web to 5 minus 1", "cannot act on 'minus 1'"),
            ("scale web to 5 x2", "cannot act on 'x2'"),
            ("restart web jk", "cannot act on 'jk'"),
            ("rollback web to 2 per zone", "cannot act on 'per zone'"),
            (
                "deploy nginx:1.2 to web each zone",
                "cannot act on 'each zone'",
            ),
            ("scale web by 2", "scale sets the count to have"),
            (
                "scale web to +2",
                "the count to have, not a change to it; got '+2'",
            ),
            // A namespace only as `in <namespace>` at the end.
            (
                "restart web -n prod",
                "the namespace is given as 'in <namespace>' at the end, not with '-n'",
            ),
            // Names that are also such words are names where they stand.
            ("scale no 3", "'to' is missing before '3'"),
            ("scale ns 3", "'to' is missing before '3'"),
            ("restart web in no please", "'please' is not part of it"),
            ("restart web in ns please", "'please' is not part of it"),
            (
                "scale web to 5 --namespace=prod",
                "not with '--namespace=prod'",
            ),
            ("restart web in namespace prod", "not with 'namespace'"),
            ("restart web in prod please", "'please' is not part of it"),
            (
                "restart web in prod staging",
                "'staging' follows 'in prod', and a command ends with its namespace",
            ),
            // An image names its version; swapped words are caught by it.
            (
                "deploy web to api",
                "the image 'web' names no version: give it a tag or a digest",
            ),
            (
                "set replicas web 5",
                "'replicas' stands where 'image' should",
            ),
            ("set image web 5", "the image '5' names no version"),
            // One command per message, however joined.
            (
                "restart web; scale api to 3",
                "a message holds one command, and this one joins several with ';'",
            ),
            ("restart web && restart api", "joins several with '&&'"),
            // Words that may turn the command around get none offered.
            ("don't restart web", "the bot cannot act on 'don't'"),
            ("wait scale web to 3", "the bot cannot act on 'wait'"),
            ("in prod restart web", "I don't know the command 'in'"),
            ("why did you restart web?", "I don't know the command 'why'"),
            ("hey ? list", "I don't know the command 'hey'"),
            // Nor does anything that would run elsewhere or on another.
            (
                "scale web in prod to 3",
                "'in prod' goes at the end of the command",
            ),
            (
                "deploy nginx:1 to web in prod in staging",
                "it names a namespace twice",
            ),
            (
                "scale Web api to 3",
                "'scale Web api to 3' has 1 word more than 'scale <deployment> to <replicas>'",
            ),
            (
                "restart web_api pods",
                "has 1 word more than 'restart <deployment>'",
            ),
            (
                "set image web to nginx:1 right now please",
                "has 4 words more than",
            ),
            ("deploy nginx:1 to web web2", "the bot cannot act on 'web2'"),
            // Polite words before a command that is not whole: what is
            // wrong with the command is said.
            (
                "please scale web",
                "'scale web' needs 'to <replicas>' after it",
            ),
            (
                "please deploy nginx:1.21. to web",
                "ends with '.', most likely a full stop rather than part of its tag: send 'deploy nginx:1.21 to web in default'",
            ),
            ("can you scale Web to 3?", "did you mean 'scale web to 3'?"),
            (
                "kubectl scale deploy/web --replicas=3",
                "I don't know the command 'kubectl'",
            ),
            (
                "ѕcale web to 3",
                "I don't know the command 'ѕcale' (it contains 'ѕ' (U+0455))",
            ),
            ("kubectl get pods", "I don't know the command 'kubectl'"),
            ("scale web to 21", "from 0 to 20, got '21'"),
            ("scale web to -1", "from 0 to 20, got '-1'"),
            ("scale web to -0", "not a change to it; got '-0'"),
            (
                "deploy nginx:1.25 to nginx container in web",
                "one container's image is set with 'set image', the deployment named first",
            ),
            (
                "deploy nginx:1.25 to container nginx in web",
                "one container's image is set with 'set image'",
            ),
            (
                "restart all pods in web",
                "'restart all pods' has 1 word more than",
            ),
            ("restart web pods in prod", "cannot act on 'pods'"),
            (
                "scale web to 3 іn prod",
                "cannot act on 'іn prod' (it contains 'і' (U+0456))",
            ),
            ("scale web to ３", "got '３' (U+FF13)"),
            (
                "scale web to 99999999999999999999999999999999999999999999",
                "from 0 to 20",
            ),
            ("scale web to three", "whole number from 0 to 20"),
            ("scale web to 2.5", "whole number from 0 to 20"),
            ("scale Web to 3", "uppercase letter 'W'"),
            ("scale ../etc to 3", "'..'"),
            ("scale web/x/y to 3", "'/'"),
            ("scale we\u{200b}b to 3", "U+200B"),
            (
                "scale web to 3 in Prod",
                "a namespace contains the uppercase letter 'P'",
            ),
            ("scale web to 3 in a.b", "a namespace contains '.'"),
            ("scale web to 3 in", "'in' needs a namespace after it"),
            ("status web in", "'in' needs a namespace after it"),
            ("rollback web in", "'in' needs a namespace after it"),
            ("deploy NGINX to web", "must be lowercase"),
            ("deploy nginx@sha256:abc to web", "exactly 64"),
            (
                "set image web Nginx=nginx:1",
                "a container name contains the uppercase letter 'N'",
            ),
            ("set image web nginx=", "empty"),
            ("rollback web to 0", "at least 1, got '0'"),
            ("rollback web to 01", "without leading zeros, got '01'"),
            ("rollback web to r007", "without leading zeros, got 'r007'"),
            ("rollback web to 00", "without leading zeros, got '00'"),
            ("rollback web to last", "at least 1, got 'last'"),
            ("rollback web to ³", "got '³' (U+00B3)"),
        ];
        for (text, want) in cases {
            let err = parse(text, &defaults()).expect_err(text);
            assert!(
                err.to_string().contains(want),
                "{text:?}: {err} should contain {want:?}"
            );
        }
    }

    #[test]
    fn names_with_capitals_get_the_command_in_lowercase_offered() {
        let offered = [
            ("scale Web to 3", "scale web to 3"),
            ("Scale WEB to 3 in Prod", "scale web to 3 in prod"),
            ("status Web in Prod?", "status web in prod?"),
            ("restart Api.V2", "restart api.v2"),
            // The image keeps its case: a tag may have capitals.
            ("deploy nginx:V1.2 to Web", "deploy nginx:V1.2 to web"),
            (
                "set image Web Nginx=registry/nginx:RC1",
                "set image web nginx=registry/nginx:RC1",
            ),
            ("\u{200b}rollback Web to 2", "rollback web to 2"),
        ];
        for (text, command) in offered {
            match parse(text, &defaults()) {
                Err(ParseError::Lowercase { command: got, .. }) => {
                    assert_eq!(got, command, "{text:?}");
                    parse(&got, &defaults()).expect(&got);
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let err = parse("scale Web to 3", &defaults()).expect_err("a capital");
        assert_eq!(
            err.to_string(),
            "a deployment name contains the uppercase letter 'W', and Kubernetes names \
             are lowercase; did you mean 'scale web to 3'?"
        );
        // Nothing offered where the lowercase message is still no command.
        for text in [
            "scale Web to 30",
            "scale Web_x to 3",
            "restart Web?",
            "scale Web to 3 now",
        ] {
            let err = parse(text, &defaults()).expect_err(text);
            assert!(
                !matches!(err, ParseError::Lowercase { .. }),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn only_a_slip_of_one_verb_is_taken_for_it() {
        // Short words ("get" is not a slip of "set"), words two slips from
        // a short verb, and words near no verb get no guess.
        for word in ["get", "stop", "stat", "start", "state", "delete", "rollout"] {
            let err = parse(&format!("{word} web"), &defaults()).expect_err(word);
            assert_eq!(
                err.to_string(),
                format!("I don't know the command '{word}'")
            );
        }
        // The guess is a whole command only where that is one.
        let err = parse("scael web to three", &defaults()).expect_err("no command");
        assert!(err.to_string().ends_with("did you mean 'scale'?"), "{err}");
        assert_eq!(err.form(), Some(Form::Scale));
        let err = parse("scael web to 3", &defaults()).expect_err("not run");
        assert_eq!(err.form(), None, "the command offered needs no usage line");
        // kubectl's rollout words name the command that does the same.
        for (typed, meant) in [
            ("rollout undo web", "; did you mean 'rollback web'?"),
            (
                "rollout undo web to 2",
                "; did you mean 'rollback web to 2'?",
            ),
            (
                "rollout restart web in prod",
                "; did you mean 'restart web in prod'?",
            ),
            ("rollout status web", "; did you mean 'status web'?"),
            ("rollout history web", "; did you mean 'history web'?"),
            (
                "rollout undo web --to-revision=2",
                "; did you mean 'rollback'?",
            ),
            ("rollout pause web", ""),
        ] {
            let err = parse(typed, &defaults()).expect_err(typed).to_string();
            assert_eq!(
                err,
                format!("I don't know the command 'rollout'{meant}"),
                "{typed}"
            );
        }
    }

    /// What the bot offers to be sent is whole, however long: it is there
    /// to be copied, and a cut one cannot be.
    #[test]
    fn an_offered_command_is_whole_however_long() {
        let image = format!(
            "registry.example.com:5000/team/{}/web:2.1.7-rc1",
            "a".repeat(60)
        );
        let name = format!("payments-{}", "b".repeat(60));
        let cases = [
            (
                format!("deploy {image} to {name} in team-payments-prod."),
                format!("send 'deploy {image} to {name} in team-payments-prod' to make it"),
            ),
            (
                format!("scael {name} to 3 in team-payments-prod"),
                format!("did you mean 'scale {name} to 3 in team-payments-prod'?"),
            ),
            (
                format!("set image {name} NGINX={image}"),
                format!("did you mean 'set image {name} nginx={image}'?"),
            ),
        ];
        for (text, want) in &cases {
            let err = parse(text, &defaults()).expect_err(text).to_string();
            assert!(err.contains(want.as_str()), "{text:?}: {err}");
        }
    }

    #[test]
    fn refused_input_is_quoted_short_and_the_rule_given_whole() {
        let shown = |c: &str| format!("{}…", c.repeat(40));
        let cases = [
            (
                format!("scale web to {}", "9".repeat(60)),
                format!("from 0 to 20, got '{}'", shown("9")),
            ),
            (
                format!("deploy nginx:{} to web", "t".repeat(300)),
                format!(
                    "the tag '{}' must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
                    shown("t")
                ),
            ),
            (
                format!("deploy {}:1 to web", "A".repeat(150)),
                format!("the image repository '{}' must be lowercase", shown("A")),
            ),
            (
                format!("rollback web to {}", "9".repeat(60)),
                format!("revision {} is larger than any revision can be", shown("9")),
            ),
            (
                "rollback web to 99999999999999999999".to_owned(),
                "revision 99999999999999999999 is larger than any revision can be".to_owned(),
            ),
            (
                format!("{} web", "x".repeat(45)),
                format!("I don't know the command '{}'", shown("x")),
            ),
        ];
        for (text, want) in &cases {
            let err = parse(text, &defaults()).expect_err(text).to_string();
            assert!(err.contains(want.as_str()), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_bot_mention_is_stripped_only_at_the_start() {
        assert_eq!(
            strip_mention("kube scale web to 3", "kube"),
            "scale web to 3"
        );
        assert_eq!(
            strip_mention("  Kube, scale web to 3", "kube"),
            "scale web to 3"
        );
        assert_eq!(strip_mention("@kube: list", "kube"), "list");
        assert_eq!(strip_mention("kube", "kube"), "");
        assert_eq!(strip_mention("kube?", "kube"), "");
        assert_eq!(strip_mention("kube! status web", "kube"), "status web");
        assert_eq!(strip_mention("kubectl scale", "kube"), "kubectl scale");
        assert_eq!(strip_mention("scale kube to 3", "kube"), "scale kube to 3");
        assert_eq!(strip_mention("ké", "kube"), "ké");
        // Mentioned twice at the start.
        assert_eq!(strip_mention("kube @kube status web", "kube"), "status web");
        assert_eq!(strip_mention("kube restart kube", "kube"), "restart kube");
        // At the end, where the gateway knows it was mentioned there.
        assert_eq!(
            strip_trailing_mention("scale web to 3 kube", "kube"),
            "scale web to 3"
        );
        assert_eq!(
            strip_trailing_mention("scale web to 3 @Kube ", "kube"),
            "scale web to 3"
        );
        assert_eq!(
            strip_trailing_mention("restart mykube", "kube"),
            "restart mykube"
        );
        assert_eq!(strip_trailing_mention("kube", "kube"), "kube");
        assert_eq!(strip_trailing_mention("status wéb", "kube"), "status wéb");
        assert_eq!(
            strip_trailing_mention("status web @kube?", "kube"),
            "status web?"
        );
        assert_eq!(
            strip_trailing_mention("restart web kube!!", "kube"),
            "restart web!!"
        );
        // After a greeting.
        assert_eq!(strip_mention("hi kube, status web", "kube"), "status web");
        assert_eq!(
            strip_mention("Hey @kube please restart web", "kube"),
            "please restart web"
        );
        assert_eq!(
            strip_mention("hi kubectl get pods", "kube"),
            "hi kubectl get pods"
        );
        assert_eq!(strip_mention("hello there", "kube"), "hello there");
        // Typed, without Webex's markup: at the end only with '@'.
        assert_eq!(
            strip_typed_mentions("@kube status web @kube?", "kube"),
            "status web?"
        );
        assert_eq!(strip_typed_mentions("status kube", "kube"), "status kube");
        assert_eq!(
            strip_typed_mentions("status web@kube", "kube"),
            "status web@kube"
        );
    }
}
