//! The worker binary, from the outside.

mod startup;
