//! Secrets (tokens, the webhook secret) are held as `secrecy::SecretString`,
//! whose `Debug` never prints the value; this module only re-exports it so
//! every crate names the same type.

pub use secrecy::{ExposeSecret, SecretString};
