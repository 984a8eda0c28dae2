//! `chatops parse`: the gateway's parser (and policy) from the command line.

use chatops_gateway::language::{self, Defaults, Parsed};
use chatops_gateway::policy::{Access, Policy};
use chatops_gateway::replies;
use chatops_shared::config::{self, Env, PolicySource};
use chatops_shared::{Actor, Command, CommandId, ContractVersion, Origin, subjects};

use crate::CliError;

#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// The message as typed, with or without the bot's mention.
    pub text: String,
    /// Check the policy for this person too.
    #[arg(long = "as", value_name = "EMAIL")]
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
    // With --as, the policy decides as in the gateway: someone it lets run
    // nothing is refused before the message is parsed.
    let policy = match &args.actor {
        Some(actor) => {
            let policy = Policy::load(&PolicySource::from_env(env)?, defaults.max_replicas)?;
            if let Some(denial) = policy.refuses_outright(actor, ROOM) {
                println!("{}", plain(&replies::refused(actor, &denial)));
                return Err(CliError::Refused);
            }
            Some(policy)
        }
        None => None,
    };
    let text = language::strip_mention(&args.text, &args.bot_name);
    let request = match language::parse(text, &defaults) {
        Ok(Parsed::Command(request)) => request,
        Ok(Parsed::Help) => {
            let (verbs, max) = match &policy {
                Some(policy) => (
                    policy.verbs_for(&email, ROOM),
                    policy.max_replicas_for(&email),
                ),
                None => (
                    chatops_shared::Verb::ALL.to_vec(),
                    Some(defaults.max_replicas),
                ),
            };
            println!("{}", plain(&replies::help(&email, &verbs, max)));
            return Ok(());
        }
        Err(e) => {
            println!("{}", plain(&replies::rejected(&email, &e)));
            return Err(CliError::Refused);
        }
    };
    if let Some(policy) = &policy {
        let replicas = match &request.kind {
            chatops_shared::CommandKind::Scale { replicas } => Some(replicas.get()),
            _ => None,
        };
        let access = Access {
            email: &email,
            room_id: ROOM,
            verb: request.kind.verb(),
            namespace: &request.namespace,
            deployment: request.deployment.as_ref(),
            replicas,
        };
        if let Err(denial) = policy.authorize(&access) {
            println!("{}", plain(&replies::denied(&email, &denial)));
            return Err(CliError::Refused);
        }
    }
    let command = Command {
        version: ContractVersion,
        id: CommandId::new(),
        kind: request.kind,
        namespace: request.namespace,
        deployment: request.deployment,
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
    println!(
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
