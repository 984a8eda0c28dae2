//! The gateway: receives Webex webhooks, turns messages into commands on the
//! stream, and relays results back to the room.

pub mod config;
pub mod language;
pub mod policy;
pub mod startup;
