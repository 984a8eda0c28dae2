//! End-to-end tests live in `tests/faults/`: one test binary that starts the
//! real binaries (gateways, workers) with the sandboxes against a real
//! nats-server, injects faults and hostile input, and counts from the
//! outside. Its hostile-input corpus is `corpus/hostile.json`.
