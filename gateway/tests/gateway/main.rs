//! The gateway binary, from the outside.

mod startup;
