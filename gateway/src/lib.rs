//! The gateway: receives Webex webhooks, turns messages into commands on the
//! stream, and relays results back to the room.

pub mod catch_up;
pub mod config;
pub mod ingestion;
pub mod intake;
pub mod language;
pub mod limits;
pub mod metrics;
pub mod notifier;
pub mod policy;
pub mod reading;
pub mod replies;
pub mod startup;
pub mod unclaimed;
pub mod webex;
