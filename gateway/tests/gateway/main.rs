//! The gateway from the outside: its binary, its HTTP surface, and its
//! work with a real nats-server and the Webex sandbox.

// Test helpers are `pub` for the modules of this one test binary.
#![allow(unreachable_pub)]

mod crash;
mod flow;
mod helpers;
mod intake;
mod limits;
mod startup;
