//! Sandbox fidelity tests: real clients against the stand-ins.

mod kube;
mod webex;
