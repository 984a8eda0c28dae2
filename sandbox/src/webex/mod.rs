//! The Webex API stand-in (filled by its own issue).
