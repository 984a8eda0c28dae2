//! `chatops parse`: the gateway's parser (and policy) from the command line.

use chatops_gateway::language::{self, Defaults};
use chatops_gateway::policy::Policy;
use chatops_gateway::reading::{self, Reading, Sender};
use chatops_shared::config::{self, Env, PolicySource};
use chatops_shared::{Actor, Command, CommandId, ContractVersion, Origin, subjects};

use crate::CliError;

#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// The message as typed, with or without the bot's mention.
    pub text: String,
    /// Check the policy for this person too.
    #[arg(long = "as", value_name = "EMAIL", value_parser = crate::email)]
    pub actor: Option<String>,
    /// The bot's name, stripped from the start of the message.
    #[arg(long, default_value = "kube", env = "WEBEX_BOT_NAME")]
    pub bot_name: String,
}

/// The room `--as` is checked in: the command line is no Webex room.
const ROOM: &str = "cli";

pub fn run(args: &ParseArgs, env: &Env) -> Result<(), CliError> {
    let defaults = Defaults {
        namespace: config::default_namespace(env)?,
        max_replicas: config::max_replicas(env)?,
    };
    let email = args.actor.clone().unwrap_or_default();
    // With --as, the policy decides as in the gateway.
    let policy = match &args.actor {
        Some(_) => Some(Policy::load(
            &PolicySource::from_env(env)?,
            defaults.max_replicas,
        )?),
        None => None,
    };
    let sender = Sender {
        email: &email,
        room_id: ROOM,
    };
    let text = language::strip_typed_mentions(&args.text, &args.bot_name);
    let request = match reading::read(&text, sender, policy.as_ref(), &defaults) {
        Reading::Command(request) => request,
        Reading::Help(markdown) => {
            say!("{}", plain(&markdown));
            return Ok(());
        }
        Reading::Refused { markdown, .. } => {
            say!("{}", plain(&markdown));
            return Err(CliError::Refused);
        }
    };
    let command = Command {
        version: ContractVersion,
        id: CommandId::new(),
        kind: request.kind,
        namespace: request.namespace,
        deployment: request.deployment,
        visible: request.visible,
        actor: Actor {
            email,
            person_id: String::new(),
        },
        origin: Origin {
            room_id: String::new(),
            message_id: String::new(),
            thread_id: None,
        },
        issued_at: jiff::Timestamp::now(),
    };
    eprintln!(
        "subject: {}",
        subjects::command(&command.namespace, command.deployment.as_ref())
    );
    say!(
        "{}",
        serde_json::to_string_pretty(&command).unwrap_or_default()
    );
    Ok(())
}

/// A reply as a terminal shows it: no mention, markdown escapes removed.
fn plain(markdown: &str) -> String {
    let without_mention = match markdown.split_once("> ") {
        Some((head, rest)) if head.starts_with("<@personEmail:") => rest,
        _ => markdown,
    };
    let mut out = String::with_capacity(without_mention.len());
    let mut chars = without_mention.trim().chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}
