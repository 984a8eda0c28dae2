//! `chatops webhook`: register, list, delete and re-activate the bot's
//! Webex webhooks (messages/created, signed with the configured secret):
//! one for group spaces (filter `mentionedPeople=me`) and one for 1:1
//! spaces (filter `roomType=direct`), where people write to the bot
//! without mentioning it. A 1:1 message that does mention it comes by both;
//! the events stream keeps one (the same message id).

use chatops_gateway::webex::{WebexClient, Webhook};
use chatops_shared::config::{ConfigError, Env, WebexConfig};
use chatops_shared::secret::ExposeSecret;
use serde_json::{Value, json};

use crate::CliError;

/// The group-space webhook's name, so `list` and `register` find ours
/// among others.
pub const NAME: &str = "chatops";

/// The 1:1-space webhook's name.
pub const DIRECT_NAME: &str = "chatops-direct";

/// Our webhooks: name and filter.
const OURS: [(&str, &str); 2] = [
    (NAME, "mentionedPeople=me"),
    (DIRECT_NAME, "roomType=direct"),
];

#[derive(Debug, clap::Subcommand)]
pub enum WebhookCmd {
    /// Register the bot's webhooks at URL (or update ours if they exist).
    ///
    /// Example: chatops webhook register --url https://bot.example.com/webhooks/webex
    Register {
        /// The gateway's public URL, ending in /webhooks/webex.
        #[arg(long)]
        url: String,
    },
    /// List the bot's webhooks with their status.
    List,
    /// Delete a webhook by id.
    ///
    /// Example: chatops webhook delete Y2lzY29zcGFyazovL3VzL1dFQkhPT0sv...
    Delete { id: String },
    /// Re-activate disabled webhooks (Webex disables one after 100 failed
    /// deliveries in five minutes); all of ours, or the one given.
    Activate { id: Option<String> },
}

/// The bodies Webex takes to create the bot's webhooks.
pub fn bodies(target_url: &str, secret: &str) -> Vec<Value> {
    OURS.iter()
        .map(|(name, filter)| {
            json!({
                "name": name,
                "targetUrl": target_url,
                "resource": "messages",
                "event": "created",
                "filter": filter,
                "secret": secret,
            })
        })
        .collect()
}

/// Where the gateway takes webhooks.
const PATH: &str = "/webhooks/webex";

/// `--url`, checked: an http(s) URL with a host, and a path, which should
/// be the gateway's (a proxy may map another to it: that is only warned
/// of). Without a path, Webex would post where the gateway answers 404,
/// and disable the webhook.
fn target(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| format!("--url must be an http(s) URL, got '{url}'"))?;
    match parsed.path() {
        "/" => Err(format!(
            "--url '{url}' has no path, and the gateway takes webhooks at {PATH}: did you mean '{}{PATH}'?",
            url.trim_end_matches('/')
        )),
        path if !path.ends_with(PATH) => {
            eprintln!(
                "chatops: warning: the gateway takes webhooks at {PATH}; make sure '{path}' reaches it (a proxy mapping it there)"
            );
            Ok(url.to_owned())
        }
        _ => Ok(url.to_owned()),
    }
}

fn ours(w: &Webhook) -> bool {
    OURS.iter().any(|(name, _)| w.name == *name)
}

/// A client for the bot's token; only `register` needs the webhook secret.
fn client(env: &Env) -> Result<WebexClient, ConfigError> {
    let (token, api_url) = WebexConfig::api_from_env(env)?;
    Ok(WebexClient::new(&api_url, token))
}

fn show(w: &Webhook) -> String {
    format!(
        "{}  {}  {}  {}/{}  {}  {}",
        w.id,
        w.name,
        w.status.as_deref().unwrap_or("?"),
        w.resource,
        w.event,
        w.filter.as_deref().unwrap_or("-"),
        w.target_url
    )
}

pub async fn run(cmd: &WebhookCmd, env: &Env) -> Result<(), CliError> {
    let webex = client(env)?;
    match cmd {
        WebhookCmd::Register { url } => {
            let url = target(url).map_err(CliError::Usage)?;
            let secret = WebexConfig::webhook_secret_from_env(env)?;
            let existing = webex.webhooks().await?;
            for body in bodies(&url, secret.expose_secret()) {
                let hook = match existing.iter().find(|w| body["name"] == w.name.as_str()) {
                    Some(w) => {
                        let mut update = body.clone();
                        update["status"] = "active".into();
                        webex.update_webhook(&w.id, &update).await?
                    }
                    None => webex.create_webhook(&body).await?,
                };
                say!("registered: {}", show(&hook));
            }
        }
        WebhookCmd::List => {
            for w in webex.webhooks().await? {
                say!("{}", show(&w));
            }
        }
        WebhookCmd::Delete { id } => {
            match webex.delete_webhook(id).await {
                Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
                    return Err(CliError::Usage(
                        "no such webhook; see `chatops webhook list`".to_owned(),
                    ));
                }
                deleted => deleted?,
            }
            say!("deleted {id}");
        }
        WebhookCmd::Activate { id } => {
            let hooks = webex.webhooks().await?;
            let chosen: Vec<&Webhook> = hooks
                .iter()
                .filter(|w| id.as_ref().map_or(ours(w), |id| &w.id == id))
                .collect();
            if chosen.is_empty() {
                return Err(CliError::Usage(
                    "no such webhook; see `chatops webhook list`".to_owned(),
                ));
            }
            for w in chosen {
                let update = json!({"name": w.name, "targetUrl": w.target_url, "status": "active"});
                let hook = webex.update_webhook(&w.id, &update).await?;
                say!("active: {}", show(&hook));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::target;

    #[test]
    fn a_target_needs_a_scheme_a_host_and_a_path() {
        let ok = "https://bot.example.com/webhooks/webex";
        assert_eq!(target(ok).as_deref(), Ok(ok));
        let proxied = "https://example.com/hooks/chatops";
        assert_eq!(target(proxied).as_deref(), Ok(proxied));
        for bare in ["https://bot.example.com", "https://bot.example.com/"] {
            let e = target(bare).expect_err("no path");
            assert!(
                e.contains("did you mean 'https://bot.example.com/webhooks/webex'?"),
                "{e}"
            );
        }
        for wrong in [
            "bot.example.com/webhooks/webex",
            "ftp://x/webhooks/webex",
            "http://",
        ] {
            let e = target(wrong).expect_err("not http(s) with a host");
            assert!(e.starts_with("--url must be an http(s) URL"), "{e}");
        }
    }
}
