//! Proving the invariants of DESIGN.md across real processes: gateways and
//! workers (the binaries), a real nats-server (or a cluster of three), and
//! the Kubernetes and Webex sandboxes, with faults injected and hostile
//! input sent, counted from the outside.
//!
//! Each scenario prints one line of the closing table to stderr. With
//! `CHATOPS_SOAK_SECS=N` every scenario repeats for N seconds (a soak).

// Test helpers are `pub` for the modules of this one test binary.
#![allow(unreachable_pub)]

mod bins;
mod cluster;
mod hostile;
mod scenarios;
mod secrets;
mod tally;
mod world;
