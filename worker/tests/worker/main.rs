//! The worker binary, from the outside.

// Test helpers are `pub` for the modules of this one test binary.
#![allow(unreachable_pub)]

mod consume;
mod engine;
mod helpers;
mod startup;
