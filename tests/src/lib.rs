//! End-to-end tests live in `tests/e2e/`; they start the real binaries
//! (gateway, workers, sandboxes) against a real nats-server.
