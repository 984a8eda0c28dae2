//! The Kubernetes API stand-in (filled by its own issue).
