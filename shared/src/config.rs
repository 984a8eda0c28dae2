//! Configuration from the environment, read once at start-up.
//!
//! Every variable name is a constant here. [`Env`] reads from the process or
//! from a map (tests), and the typed pieces (`NatsConfig`, `WebexConfig`,
//! `ClusterConfig`, ...) are parsed from it; each binary composes the pieces
//! it needs. A bad value is a [`ConfigError`] naming the variable; a secret's
//! value is never part of any message.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::names::Namespace;
use crate::streams::StreamSettings;

pub const NATS_URL: &str = "NATS_URL";
pub const WEBEX_BOT_TOKEN: &str = "WEBEX_BOT_TOKEN";
pub const WEBEX_BOT_NAME: &str = "WEBEX_BOT_NAME";
pub const WEBEX_WEBHOOK_SECRET: &str = "WEBEX_WEBHOOK_SECRET";
/// The seed's name for the webhook secret, still accepted.
pub const WEBEX_ENCRYPTION_SECRET: &str = "WEBEX_ENCRYPTION_SECRET";
pub const WEBEX_API_URL: &str = "WEBEX_API_URL";
pub const AUTHORIZED_USERS: &str = "AUTHORIZED_USERS";
pub const CHATOPS_POLICY: &str = "CHATOPS_POLICY";
pub const CHATOPS_MAX_REPLICAS: &str = "CHATOPS_MAX_REPLICAS";
pub const CLUSTER_NAME: &str = "CLUSTER_NAME";
pub const CLUSTER_URL: &str = "CLUSTER_URL";
pub const CLUSTER_CERT: &str = "CLUSTER_CERT";
pub const KUBERNETES_USERNAME: &str = "KUBERNETES_USERNAME";
pub const KUBERNETES_TOKEN: &str = "KUBERNETES_TOKEN";
pub const KUBERNETES_NAMESPACE: &str = "KUBERNETES_NAMESPACE";
pub const GATEWAY_ADDR: &str = "GATEWAY_ADDR";
pub const WORKER_ADDR: &str = "WORKER_ADDR";
pub const WORKER_CONCURRENCY: &str = "WORKER_CONCURRENCY";
pub const KUBE_QPS: &str = "CHATOPS_KUBE_QPS";
pub const FOLLOW_ROLLOUT: &str = "CHATOPS_FOLLOW_ROLLOUT";
pub const SHUTDOWN_GRACE: &str = "CHATOPS_SHUTDOWN_GRACE";
pub const KUBE_BURST: &str = "CHATOPS_KUBE_BURST";
pub const EVENTS_MAX_AGE: &str = "CHATOPS_EVENTS_MAX_AGE";
pub const COMMANDS_MAX_AGE: &str = "CHATOPS_COMMANDS_MAX_AGE";
pub const RESULTS_MAX_AGE: &str = "CHATOPS_RESULTS_MAX_AGE";
pub const STREAM_MAX_BYTES: &str = "CHATOPS_STREAM_MAX_BYTES";
pub const STREAM_REPLICAS: &str = "CHATOPS_STREAM_REPLICAS";
pub const DUPLICATE_WINDOW: &str = "CHATOPS_DUPLICATE_WINDOW";
pub const ACK_WAIT: &str = "CHATOPS_ACK_WAIT";
pub const MAX_DELIVER: &str = "CHATOPS_MAX_DELIVER";
pub const MAX_ACK_PENDING: &str = "CHATOPS_MAX_ACK_PENDING";
pub const PROCESSED_MAX_AGE: &str = "CHATOPS_PROCESSED_MAX_AGE";
pub const MAX_MESSAGE_AGE: &str = "CHATOPS_MAX_MESSAGE_AGE";
pub const UNCLAIMED_AFTER: &str = "CHATOPS_UNCLAIMED_AFTER";
pub const LOG_FORMAT: &str = "LOG_FORMAT";

/// The exit code for invalid configuration (`EX_USAGE`).
pub const EXIT_CONFIG: u8 = 64;

/// A variable that is missing or malformed. Displays as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {variable} {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// Prints the error as one line on stderr and exits with [`EXIT_CONFIG`].
pub fn exit_on_error<T>(program: &str, result: Result<T, ConfigError>) -> T {
    result.unwrap_or_else(|e| {
        eprintln!("{program}: {e}");
        std::process::exit(i32::from(EXIT_CONFIG))
    })
}

/// A service takes no arguments, only environment variables: `--help` and
/// `--version` answer and exit 0, anything else is refused with
/// [`EXIT_CONFIG`] rather than ignored (a service started by mistake would
/// consume work). `None` when there are no arguments.
pub fn service_arguments(
    program: &str,
    version: &str,
    about: &str,
    args: impl IntoIterator<Item = String>,
) -> Option<std::process::ExitCode> {
    let first = args.into_iter().next()?;
    match first.as_str() {
        "-h" | "--help" => {
            println!(
                "{program} {version}: {about}\n\nUsage: {program}\n\nIt takes no arguments; it is configured by environment variables (see the README's Configuration)."
            );
            Some(std::process::ExitCode::SUCCESS)
        }
        "-V" | "--version" => {
            println!("{program} {version}");
            Some(std::process::ExitCode::SUCCESS)
        }
        other => {
            let shown: String = other.chars().take(64).collect();
            eprintln!(
                "{program}: takes no arguments, got '{shown}'; it is configured by environment variables (see --help)"
            );
            Some(std::process::ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// Where variables come from: the process environment or, in tests, a map.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// The value, with surrounding whitespace removed; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str, meaning: &str) -> Result<&str, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::new(name, format!("is not set: {meaning}")))
    }

    /// A secret: required, a single token (no whitespace inside), never echoed.
    pub fn secret(
        &self,
        names: &[&'static str],
        meaning: &str,
    ) -> Result<SecretString, ConfigError> {
        // Two names for one secret, set to two values: which one the
        // webhook was registered with cannot be told.
        let given: Vec<&str> = names.iter().filter_map(|n| self.get(n)).collect();
        if given.windows(2).any(|pair| pair[0] != pair[1]) {
            return Err(ConfigError::new(
                names[0],
                format!(
                    "and {} are both set, to different values; set one (the values are not shown)",
                    names[1..].join(", ")
                ),
            ));
        }
        let Some((&name, value)) = names.iter().find_map(|n| Some((n, self.get(n)?))) else {
            let also = match names {
                [_, alias, ..] => format!(" (or {alias})"),
                _ => String::new(),
            };
            return Err(ConfigError::new(
                names[0],
                format!("is not set{also}: {meaning}"),
            ));
        };
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::new(
                name,
                "contains whitespace or a control character; a token or secret is a single word (the value is not shown)",
            ));
        }
        Ok(SecretString::from(value.to_owned()))
    }

    /// Parses an optional variable, with `default` when unset.
    pub fn parse_or<T>(
        &self,
        name: &'static str,
        default: T,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => parse(raw).ok_or_else(|| {
                let shown: String = raw.chars().take(64).collect();
                ConfigError::new(name, format!("is '{shown}', expected {expected}"))
            }),
        }
    }

    /// A duration from above zero up to ten years (longer ones overflow
    /// JetStream's nanosecond ages and date arithmetic).
    pub fn duration_or(
        &self,
        name: &'static str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        self.duration_from(name, default, Duration::from_nanos(1))
    }

    /// As [`Env::duration_or`], of at least `least`.
    pub fn duration_from(
        &self,
        name: &'static str,
        default: Duration,
        least: Duration,
    ) -> Result<Duration, ConfigError> {
        const MOST: Duration = Duration::from_secs(3650 * 24 * 3600);
        let from = if least > Duration::from_nanos(1) {
            format!("from {}", humantime::format_duration(least))
        } else {
            "above 0".to_owned()
        };
        let expected = format!("a duration such as '90d', '12h' or '30s', {from} up to 3650d");
        self.parse_or(name, default, &expected, |s| {
            parse_duration(s).filter(|d| (least..=MOST).contains(d))
        })
    }

    fn address_or(&self, name: &'static str, default: &str) -> Result<SocketAddr, ConfigError> {
        let default = default
            .parse()
            .map_err(|_| ConfigError::new(name, "has a bad default"))?;
        let expected = format!("an address such as '{default}'");
        self.parse_or(name, default, &expected, |s| s.parse().ok())
    }
}

/// A duration as the README gives them: whole numbers each with one of
/// the units `ms`, `s`, `m`, `h` and `d` (`90d`, `1h30m`), and nothing
/// else: no 'M' that could be minutes or months, no spaces, no fractions.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let seconds_per: u64 = match unit {
            "ms" => 0,
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        let part = match seconds_per {
            0 => Duration::from_millis(n),
            per => Duration::from_secs(n.checked_mul(per)?),
        };
        total = total.checked_add(part)?;
        rest = next;
    }
    (!s.is_empty()).then_some(total)
}

/// NATS server URLs (comma-separated) with any password or token in them
/// replaced by `***`, for messages: `nats://bob:***@host:4222`.
pub fn redacted(urls: &str) -> String {
    urls.split(',')
        .map(|url| {
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            let Some((userinfo, host)) = rest.rsplit_once('@') else {
                return url.to_owned();
            };
            let user = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => "***".to_owned(),
            };
            let scheme = if scheme.is_empty() {
                String::new()
            } else {
                format!("{scheme}://")
            };
            format!("{scheme}{user}@{host}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The NATS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// One or more server URLs, comma-separated.
    pub url: String,
}

impl NatsConfig {
    pub const DEFAULT_URL: &'static str = "nats://127.0.0.1:4222";

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let url = env.get(NATS_URL).unwrap_or(Self::DEFAULT_URL);
        for part in url.split(',') {
            if part.trim().is_empty() || part.trim().parse::<async_nats::ServerAddr>().is_err() {
                let shown: String = redacted(part).chars().take(64).collect();
                return Err(ConfigError::new(
                    NATS_URL,
                    format!(
                        "has '{shown}', expected server URLs such as 'nats://127.0.0.1:4222', comma-separated"
                    ),
                ));
            }
        }
        let config = Self {
            url: url.to_owned(),
        };
        let given: Vec<NatsCredentials> = config
            .parsed()
            .filter_map(|addr| credentials(&addr))
            .collect();
        if given.windows(2).any(|pair| pair[0] != pair[1]) {
            return Err(ConfigError::new(
                NATS_URL,
                "gives servers different credentials; give every server the same ones, or give them once",
            ));
        }
        Ok(config)
    }

    fn parsed(&self) -> impl Iterator<Item = async_nats::ServerAddr> + '_ {
        self.url.split(',').filter_map(|s| s.trim().parse().ok())
    }

    /// The servers as `async_nats` takes them, without credentials: the
    /// client does not send those of a URL, and would log them with the
    /// address ([`NatsConfig::credentials`] has them).
    pub fn addresses(&self) -> Vec<async_nats::ServerAddr> {
        self.parsed()
            .filter_map(|addr| {
                let mut url = addr.into_inner();
                // Only a URL that cannot have credentials refuses these.
                let _ = url.set_username("");
                let _ = url.set_password(None);
                async_nats::ServerAddr::from_url(url).ok()
            })
            .collect()
    }

    /// The credentials NATS_URL gives (those of any server, as they must be
    /// the same): `nats://user:password@host` or `nats://token@host`.
    pub fn credentials(&self) -> Option<NatsCredentials> {
        self.parsed().find_map(|addr| credentials(&addr))
    }
}

/// What a client proves itself with to NATS.
#[derive(Clone, PartialEq, Eq)]
pub enum NatsCredentials {
    UserPassword { user: String, password: String },
    Token(String),
}

impl std::fmt::Debug for NatsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UserPassword { user, .. } => write!(f, "UserPassword({user}, ***)"),
            Self::Token(_) => f.write_str("Token(***)"),
        }
    }
}

/// The credentials in one server's URL, percent-decoded.
fn credentials(addr: &async_nats::ServerAddr) -> Option<NatsCredentials> {
    let decoded = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = decoded(addr.username()?);
    Some(match addr.password() {
        Some(password) => NatsCredentials::UserPassword {
            user,
            password: decoded(password),
        },
        None => NatsCredentials::Token(user),
    })
}

impl StreamSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            events_max_age: env.duration_or(EVENTS_MAX_AGE, d.events_max_age)?,
            commands_max_age: env.duration_or(COMMANDS_MAX_AGE, d.commands_max_age)?,
            results_max_age: env.duration_or(RESULTS_MAX_AGE, d.results_max_age)?,
            max_bytes: env.parse_or(
                STREAM_MAX_BYTES,
                d.max_bytes,
                "a positive number of bytes, or -1 for no limit",
                |s| s.parse().ok().filter(|n: &i64| *n > 0 || *n == -1),
            )?,
            replicas: env.parse_or(STREAM_REPLICAS, d.replicas, "1, 3 or 5", |s| {
                s.parse().ok().filter(|n| [1, 3, 5].contains(n))
            })?,
            // JetStream refuses a window under 100 ms; an ack wait under a
            // second redelivers what is still being handled.
            duplicate_window: env.duration_from(
                DUPLICATE_WINDOW,
                d.duplicate_window,
                Duration::from_millis(100),
            )?,
            ack_wait: env.duration_from(ACK_WAIT, d.ack_wait, Duration::from_secs(1))?,
            max_deliver: env.parse_or(
                MAX_DELIVER,
                d.max_deliver,
                "a whole number of at least 1",
                |s| s.parse().ok().filter(|n| *n >= 1),
            )?,
            processed_max_age: env.duration_or(PROCESSED_MAX_AGE, d.processed_max_age)?,
            max_ack_pending: env.parse_or(
                MAX_ACK_PENDING,
                d.max_ack_pending,
                "a whole number of at least 1",
                |s| s.parse().ok().filter(|n| *n >= 1),
            )?,
        })
    }
}

/// The Webex bot's identity and the webhook's shared secret.
#[derive(Debug, Clone)]
pub struct WebexConfig {
    pub bot_token: SecretString,
    pub webhook_secret: SecretString,
    /// The API base, ending in `/v1`.
    pub api_url: String,
    /// The name people mention; `None` means ask `GET /v1/people/me`.
    pub bot_name: Option<String>,
}

impl WebexConfig {
    pub const DEFAULT_API_URL: &'static str = "https://webexapis.com/v1";

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let (bot_token, api_url) = Self::api_from_env(env)?;
        Ok(Self {
            bot_token,
            webhook_secret: Self::webhook_secret_from_env(env)?,
            api_url,
            bot_name: env.get(WEBEX_BOT_NAME).map(str::to_owned),
        })
    }

    /// The bot's token and the API base: all that calling Webex takes
    /// (listing webhooks needs no webhook secret).
    pub fn api_from_env(env: &Env) -> Result<(SecretString, String), ConfigError> {
        let bot_token = env.secret(
            &[WEBEX_BOT_TOKEN],
            "the bot's access token from the Webex developer portal",
        )?;
        let api_url = env.parse_or(
            WEBEX_API_URL,
            Self::DEFAULT_API_URL.to_owned(),
            "an http(s) URL such as 'https://webexapis.com/v1'",
            |s| http_url(s).map(|u| u.trim_end_matches('/').to_owned()),
        )?;
        Ok((bot_token, api_url))
    }

    /// The secret webhooks are registered with and deliveries verified by.
    pub fn webhook_secret_from_env(env: &Env) -> Result<SecretString, ConfigError> {
        env.secret(
            &[WEBEX_WEBHOOK_SECRET, WEBEX_ENCRYPTION_SECRET],
            "the secret the webhook was registered with; without it no delivery can be verified",
        )
    }
}

/// Accepts `http://host...` and `https://host...` with a non-empty host.
fn http_url(s: &str) -> Option<&str> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))?;
    let host = rest.split('/').next()?;
    (!host.is_empty() && !s.contains(char::is_whitespace)).then_some(s)
}

/// Who may do what: the seed's list of emails, or a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    AuthorizedUsers(Vec<String>),
    File(PathBuf),
}

impl PolicySource {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        if let Some(path) = env.get(CHATOPS_POLICY) {
            // One would be ignored without a word.
            if env.get(AUTHORIZED_USERS).is_some() {
                return Err(ConfigError::new(
                    CHATOPS_POLICY,
                    "and AUTHORIZED_USERS are both set; set one: the policy file can list the same users",
                ));
            }
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(ConfigError::new(
                    CHATOPS_POLICY,
                    format!("names '{}', which is not a readable file", path.display()),
                ));
            }
            return Ok(Self::File(path));
        }
        let users = env.required(
            AUTHORIZED_USERS,
            "commands are denied by default; set it to comma-separated emails, or set CHATOPS_POLICY to a policy file",
        )?;
        let emails: Vec<String> = users
            .split(',')
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        if emails.is_empty() {
            return Err(ConfigError::new(
                AUTHORIZED_USERS,
                "lists no email, which would let nobody in; set it to comma-separated emails such as 'alice@example.com', or set CHATOPS_POLICY to a policy file",
            ));
        }
        if let Some(bad) = emails.iter().find(|e| !is_email(e)) {
            let shown: String = bad.chars().take(64).collect();
            return Err(ConfigError::new(
                AUTHORIZED_USERS,
                format!(
                    "has '{shown}', expected emails such as 'alice@example.com', comma-separated"
                ),
            ));
        }
        Ok(Self::AuthorizedUsers(emails))
    }
}

/// Whether `s` has the shape of an email address (not whether it exists).
pub fn is_email(s: &str) -> bool {
    matches!(s.split_once('@'), Some((user, domain))
        if !user.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
            && !s.contains(char::is_whitespace) && !domain.contains('@'))
}

/// `CHATOPS_KUBE_QPS`: Kubernetes API calls per second, on average.
pub fn kube_qps(env: &Env, default: f64) -> Result<f64, ConfigError> {
    env.parse_or(
        KUBE_QPS,
        default,
        "a positive number of calls per second",
        |s| s.parse().ok().filter(|n: &f64| n.is_finite() && *n > 0.0),
    )
}

/// `CHATOPS_KUBE_BURST`: Kubernetes API calls at once, before the rate
/// spaces them.
pub fn kube_burst(env: &Env, default: u32) -> Result<u32, ConfigError> {
    env.parse_or(KUBE_BURST, default, "a whole number of at least 1", |s| {
        s.parse().ok().filter(|n| *n >= 1)
    })
}

/// `CLUSTER_NAME`: the cluster's name in logs (and in the kubeconfig the
/// worker builds from the seed's variables).
pub fn cluster_name(env: &Env) -> String {
    env.get(CLUSTER_NAME).unwrap_or("chatops").to_owned()
}

/// How workers reach Kubernetes.
#[derive(Debug, Clone)]
pub enum ClusterConfig {
    /// The seed's variables: an API URL, its CA, a bearer token.
    Explicit {
        name: String,
        url: String,
        /// PEM text of the cluster's CA; `None` trusts the system roots.
        ca_pem: Option<String>,
        username: Option<String>,
        token: Option<SecretString>,
    },
    /// In-cluster service account or KUBECONFIG, as kubectl decides.
    Infer,
}

impl ClusterConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let Some(url) = env.get(CLUSTER_URL) else {
            return Ok(Self::Infer);
        };
        let url = http_url(url).ok_or_else(|| {
            ConfigError::new(
                CLUSTER_URL,
                format!(
                    "is '{}', expected the API server's URL such as 'https://10.0.0.1:6443'",
                    url.chars().take(64).collect::<String>()
                ),
            )
        })?;
        let ca_pem = match env.get(CLUSTER_CERT) {
            None => None,
            Some(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => Some(pem.to_owned()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new(
                        CLUSTER_CERT,
                        format!("is neither PEM text nor a readable file ('{path}': {e})"),
                    )
                })?;
                if !text.contains("-----BEGIN CERTIFICATE-----") {
                    return Err(ConfigError::new(
                        CLUSTER_CERT,
                        format!("names '{path}', which holds no PEM certificate"),
                    ));
                }
                Some(text)
            }
        };
        let token = match env.get(KUBERNETES_TOKEN) {
            None => None,
            Some(_) => Some(env.secret(&[KUBERNETES_TOKEN], "the service account token")?),
        };
        Ok(Self::Explicit {
            name: cluster_name(env),
            url: url.to_owned(),
            ca_pem,
            username: env.get(KUBERNETES_USERNAME).map(str::to_owned),
            token,
        })
    }
}

/// The namespace commands address when they name none.
pub fn default_namespace(env: &Env) -> Result<Namespace, ConfigError> {
    match env.get(KUBERNETES_NAMESPACE) {
        None => Ok(Namespace::default_namespace()),
        Some(s) => Namespace::parse(s)
            .map_err(|e| ConfigError::new(KUBERNETES_NAMESPACE, format!("is invalid: {e}"))),
    }
}

/// The most replicas a `scale` may ask for when the policy sets no bound.
pub fn max_replicas(env: &Env) -> Result<u32, ConfigError> {
    env.parse_or(
        CHATOPS_MAX_REPLICAS,
        50,
        "a whole number from 0 to 2147483647",
        |s| s.parse().ok().filter(|n: &u32| i32::try_from(*n).is_ok()),
    )
}

pub fn gateway_addr(env: &Env) -> Result<SocketAddr, ConfigError> {
    env.address_or(GATEWAY_ADDR, "0.0.0.0:8080")
}

pub fn worker_addr(env: &Env) -> Result<SocketAddr, ConfigError> {
    env.address_or(WORKER_ADDR, "0.0.0.0:9090")
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    const TOKEN: &str = "bot-token-SECRET-123";

    #[test]
    fn services_answer_help_and_version_and_refuse_other_arguments() {
        let run = |args: &[&str]| {
            service_arguments(
                "svc",
                "1.0",
                "does things",
                args.iter().map(|a| (*a).to_owned()),
            )
        };
        assert_eq!(run(&[]), None, "no arguments: the service runs");
        assert_eq!(run(&["--help"]), Some(std::process::ExitCode::SUCCESS));
        assert_eq!(run(&["-V"]), Some(std::process::ExitCode::SUCCESS));
        assert_eq!(
            run(&["serve"]),
            Some(std::process::ExitCode::from(EXIT_CONFIG))
        );
    }

    #[test]
    fn durations_take_the_units_the_readme_gives_and_nothing_else() {
        for (text, seconds) in [
            ("90d", 90 * 86_400),
            ("12h", 12 * 3600),
            ("30s", 30),
            ("1h30m", 5400),
            ("2m", 120),
        ] {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_secs(seconds)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        // 'M' (months to humantime), years, weeks, fractions, spaces,
        // other words for the units, a number without a unit.
        for text in [
            "10M",
            "1y",
            "1w",
            "1.5m",
            "5 m",
            "2min",
            "30",
            "",
            "m",
            "s30",
            "-5s",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(text), None, "{text:?}");
        }
    }

    #[test]
    fn durations_are_bounded_and_urls_shown_without_passwords() {
        for (name, value) in [
            (MAX_MESSAGE_AGE, "1000000000d"),
            (COMMANDS_MAX_AGE, "3651d"),
            (ACK_WAIT, "500ms"),
            (DUPLICATE_WINDOW, "1ns"),
            (EVENTS_MAX_AGE, "0s"),
        ] {
            let env = Env::from_pairs([(name, value)]);
            let err = match name {
                MAX_MESSAGE_AGE => env.duration_or(name, Duration::from_secs(1)).map(|_| ()),
                _ => StreamSettings::from_env(&env).map(|_| ()),
            }
            .expect_err(value);
            assert!(err.to_string().contains(name), "{err}");
            assert!(err.to_string().contains("up to 3650d"), "{err}");
        }
        let env = Env::from_pairs([(ACK_WAIT, "1s"), (COMMANDS_MAX_AGE, "3650d")]);
        assert!(StreamSettings::from_env(&env).is_ok());
        assert_eq!(
            redacted("nats://bob:pa:ss@w@h1:4222, nats://token@h2:4222,tls://h3"),
            "nats://bob:***@h1:4222, nats://***@h2:4222,tls://h3"
        );
        let env = Env::from_pairs([(NATS_URL, "nats://bob:NATSPASS@127.0.0.1:notaport")]);
        let err = NatsConfig::from_env(&env).expect_err("bad port");
        assert!(!err.to_string().contains("NATSPASS"), "{err}");
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        let env = Env::from_pairs([(NATS_URL, "  "), (KUBERNETES_NAMESPACE, "")]);
        assert_eq!(
            NatsConfig::from_env(&env).map(|c| c.url),
            Ok(NatsConfig::DEFAULT_URL.into())
        );
        assert_eq!(
            default_namespace(&env).map(|n| n.to_string()),
            Ok("default".into())
        );
        assert_eq!(
            StreamSettings::from_env(&env),
            Ok(StreamSettings::default())
        );
        assert_eq!(gateway_addr(&env).map(|a| a.port()), Ok(8080));
        assert_eq!(worker_addr(&env).map(|a| a.port()), Ok(9090));
        assert_eq!(max_replicas(&env), Ok(50));
        assert!(matches!(
            ClusterConfig::from_env(&env),
            Ok(ClusterConfig::Infer)
        ));
    }

    #[test]
    fn the_seed_names_keep_working() {
        let env = Env::from_pairs([
            (WEBEX_BOT_TOKEN, TOKEN),
            (WEBEX_ENCRYPTION_SECRET, "seed-secret"),
            (CLUSTER_URL, "https://10.0.0.1:6443"),
            (CLUSTER_NAME, "prod"),
            (KUBERNETES_USERNAME, "bot"),
            (KUBERNETES_TOKEN, "k8s-token"),
            (
                CLUSTER_CERT,
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            ),
        ]);
        let webex = WebexConfig::from_env(&env).expect("valid");
        assert_eq!(webex.webhook_secret.expose_secret(), "seed-secret");
        let both = |second: &'static str| {
            Env::from_pairs([
                (WEBEX_BOT_TOKEN, TOKEN),
                (WEBEX_WEBHOOK_SECRET, "seed-secret"),
                (WEBEX_ENCRYPTION_SECRET, second),
            ])
        };
        assert!(
            WebexConfig::from_env(&both("seed-secret")).is_ok(),
            "the same"
        );
        let error = WebexConfig::from_env(&both("other-secret")).expect_err("two secrets");
        assert!(
            error
                .to_string()
                .contains("WEBEX_WEBHOOK_SECRET and WEBEX_ENCRYPTION_SECRET are both set"),
            "{error}"
        );
        assert!(!error.to_string().contains("secret\""), "{error}");
        assert_eq!(webex.api_url, WebexConfig::DEFAULT_API_URL);
        let Ok(ClusterConfig::Explicit {
            name,
            url,
            ca_pem,
            username,
            token,
        }) = ClusterConfig::from_env(&env)
        else {
            panic!("explicit cluster expected");
        };
        assert_eq!(
            (name.as_str(), url.as_str(), username.as_deref()),
            ("prod", "https://10.0.0.1:6443", Some("bot"))
        );
        assert!(ca_pem.is_some_and(|p| p.contains("MIIB")));
        assert_eq!(
            token.map(|t| t.expose_secret().to_owned()).as_deref(),
            Some("k8s-token")
        );
    }

    #[test]
    fn errors_name_the_variable_in_one_line_and_never_the_secret() {
        type Read = fn(&Env) -> Result<(), ConfigError>;
        let cases: Vec<(Env, &str, Read)> = vec![
            (Env::default(), WEBEX_BOT_TOKEN, |e| {
                WebexConfig::from_env(e).map(drop)
            }),
            (
                Env::from_pairs([(WEBEX_BOT_TOKEN, TOKEN)]),
                WEBEX_WEBHOOK_SECRET,
                |e| WebexConfig::from_env(e).map(drop),
            ),
            (
                Env::from_pairs([
                    (WEBEX_BOT_TOKEN, "bot token SECRET-123"),
                    (WEBEX_WEBHOOK_SECRET, "s"),
                ]),
                WEBEX_BOT_TOKEN,
                |e| WebexConfig::from_env(e).map(drop),
            ),
            (
                Env::from_pairs([
                    (WEBEX_BOT_TOKEN, TOKEN),
                    (WEBEX_WEBHOOK_SECRET, "s"),
                    (WEBEX_API_URL, "ftp://x"),
                ]),
                WEBEX_API_URL,
                |e| WebexConfig::from_env(e).map(drop),
            ),
            (
                Env::from_pairs([(NATS_URL, "nats://host:notaport")]),
                NATS_URL,
                |e| NatsConfig::from_env(e).map(drop),
            ),
            (
                Env::from_pairs([(COMMANDS_MAX_AGE, "forever")]),
                COMMANDS_MAX_AGE,
                |e| StreamSettings::from_env(e).map(drop),
            ),
            (
                Env::from_pairs([(STREAM_REPLICAS, "2")]),
                STREAM_REPLICAS,
                |e| StreamSettings::from_env(e).map(drop),
            ),
            (Env::from_pairs([(MAX_DELIVER, "0")]), MAX_DELIVER, |e| {
                StreamSettings::from_env(e).map(drop)
            }),
            (Env::default(), AUTHORIZED_USERS, |e| {
                PolicySource::from_env(e).map(drop)
            }),
            (
                Env::from_pairs([(AUTHORIZED_USERS, "alice@example.com,bob")]),
                AUTHORIZED_USERS,
                |e| PolicySource::from_env(e).map(drop),
            ),
            (
                Env::from_pairs([(AUTHORIZED_USERS, " , ")]),
                AUTHORIZED_USERS,
                |e| PolicySource::from_env(e).map(drop),
            ),
            (
                Env::from_pairs([
                    (WEBEX_BOT_TOKEN, "bot-SECRET-123\u{7}"),
                    (WEBEX_WEBHOOK_SECRET, "s"),
                ]),
                WEBEX_BOT_TOKEN,
                |e| WebexConfig::from_env(e).map(drop),
            ),
            (
                Env::from_pairs([(CHATOPS_POLICY, "/nonexistent/policy.yaml")]),
                CHATOPS_POLICY,
                |e| PolicySource::from_env(e).map(drop),
            ),
            (
                Env::from_pairs([
                    (CHATOPS_POLICY, "/nonexistent/policy.yaml"),
                    (AUTHORIZED_USERS, "alice@example.com"),
                ]),
                CHATOPS_POLICY,
                |e| PolicySource::from_env(e).map(drop),
            ),
            (
                Env::from_pairs([(CLUSTER_URL, "10.0.0.1:6443")]),
                CLUSTER_URL,
                |e| ClusterConfig::from_env(e).map(drop),
            ),
            (
                Env::from_pairs([
                    (CLUSTER_URL, "https://k"),
                    (CLUSTER_CERT, "/nonexistent/ca.crt"),
                ]),
                CLUSTER_CERT,
                |e| ClusterConfig::from_env(e).map(drop),
            ),
            (
                Env::from_pairs([
                    (CLUSTER_URL, "https://k"),
                    (KUBERNETES_TOKEN, "k8s SECRET-123"),
                ]),
                KUBERNETES_TOKEN,
                |e| ClusterConfig::from_env(e).map(drop),
            ),
            (
                Env::from_pairs([(KUBERNETES_NAMESPACE, "Prod")]),
                KUBERNETES_NAMESPACE,
                |e| default_namespace(e).map(drop),
            ),
            (
                Env::from_pairs([(GATEWAY_ADDR, "8080")]),
                GATEWAY_ADDR,
                |e| gateway_addr(e).map(drop),
            ),
            (
                Env::from_pairs([(CHATOPS_MAX_REPLICAS, "-1")]),
                CHATOPS_MAX_REPLICAS,
                |e| max_replicas(e).map(drop),
            ),
        ];
        for (env, variable, read) in cases {
            let err = read(&env).expect_err(variable);
            assert_eq!(err.variable, variable);
            let line = err.to_string();
            assert!(line.contains(variable), "{line}");
            assert!(!line.contains('\n'), "one line: {line:?}");
            assert!(!line.contains("SECRET-123"), "a secret leaked: {line}");
        }
    }

    #[test]
    fn secrets_never_print_in_debug() {
        let env = Env::from_pairs([
            (WEBEX_BOT_TOKEN, TOKEN),
            (WEBEX_WEBHOOK_SECRET, "hook-SECRET-123"),
        ]);
        let webex = WebexConfig::from_env(&env).expect("valid");
        let shown = format!("{webex:?}");
        assert!(!shown.contains("SECRET-123"), "{shown}");
    }

    #[test]
    fn policy_users_are_normalised() {
        let env = Env::from_pairs([(AUTHORIZED_USERS, " Alice@Example.com , bob@example.org,")]);
        assert_eq!(
            PolicySource::from_env(&env),
            Ok(PolicySource::AuthorizedUsers(vec![
                "alice@example.com".into(),
                "bob@example.org".into()
            ]))
        );
    }
}
