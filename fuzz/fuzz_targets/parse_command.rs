//! The command parser on arbitrary text: it never panics, every command it
//! accepts is valid by construction, and describing a command and parsing
//! the description gives the same command back.
#![no_main]

use chatops_gateway::language::{self, Defaults, Parsed};
use chatops_shared::Namespace;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let defaults = Defaults {
        namespace: Namespace::default_namespace(),
        max_replicas: 50,
    };
    let text = language::strip_mention(text, "kube");
    match language::parse(text, &defaults) {
        Ok(Parsed::Command(request)) => {
            let again = language::parse(&request.describe(), &defaults);
            assert_eq!(again, Ok(Parsed::Command(request)), "describe and parse disagree");
        }
        Ok(Parsed::Help | Parsed::HelpOn(_) | Parsed::Thanks) => {}
        Err(e) => {
            // Every refusal renders as a reply without panicking.
            let _ = chatops_gateway::replies::rejected(
                "a@example.com",
                &e,
                &chatops_shared::Verb::ALL,
            );
        }
    }
});
