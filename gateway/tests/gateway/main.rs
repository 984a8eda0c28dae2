//! The gateway from the outside: its binary, its HTTP surface, and its
//! work with a real nats-server and the Webex sandbox.

mod helpers;
mod intake;
mod startup;
