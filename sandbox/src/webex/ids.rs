//! Identifiers and timestamps shaped like Webex's: ids are the unpadded
//! base64 of `ciscospark://us/<KIND>/<uuid>`, timestamps are UTC with
//! milliseconds and a `Z` (`2026-11-20T16:35:10.852Z`), the only form the
//! Python SDK's `strptime` accepts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

/// What an id names; the word Webex puts in the decoded id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    People,
    Room,
    Message,
    Membership,
    Webhook,
    AttachmentAction,
    Organization,
    Application,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Self::People => "PEOPLE",
            Self::Room => "ROOM",
            Self::Message => "MESSAGE",
            Self::Membership => "MEMBERSHIP",
            Self::Webhook => "WEBHOOK",
            Self::AttachmentAction => "ATTACHMENT_ACTION",
            Self::Organization => "ORGANIZATION",
            Self::Application => "APPLICATION",
        }
    }
}

/// A fresh id of the given kind.
pub(crate) fn new_id(kind: Kind) -> String {
    encode(kind, &Uuid::new_v4().to_string())
}

/// The id Webex would give `value` (a uuid, usually) of this kind. The text
/// is plain ASCII without `>`, `?` or `~`, so standard and URL-safe base64
/// agree and the id needs no escaping in a query string.
pub(crate) fn encode(kind: Kind, value: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("ciscospark://us/{}/{value}", kind.word()))
}

/// Opaque, URL-safe text (pagination cursors, envelope org ids).
pub(crate) fn opaque(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// The inverse of [`opaque`]; `None` for anything that is not one.
pub(crate) fn unopaque(text: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    String::from_utf8(bytes).ok()
}

/// The uuid inside a Webex id (`createdBy` in webhook envelopes is bare).
pub(crate) fn raw_uuid(id: &str) -> String {
    unopaque(id)
        .and_then(|uri| uri.rsplit('/').next().map(str::to_owned))
        .unwrap_or_else(|| id.to_owned())
}

/// Now, as Webex writes it.
pub(crate) fn now() -> String {
    format_timestamp(jiff::Timestamp::now())
}

/// Milliseconds, always three digits, then `Z`.
pub(crate) fn format_timestamp(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A new tracking id for one request, like Webex's `ROUTER_…` ones.
pub(crate) fn tracking_id() -> String {
    format!(
        "SANDBOX_{}",
        Uuid::new_v4().as_hyphenated().to_string().to_uppercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_decode_to_the_webex_uri() {
        let id = encode(Kind::Message, "92db3be0-43bd-11e6-8ae9-dd5b3dfc565d");
        assert_eq!(
            id,
            "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvOTJkYjNiZTAtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk"
        );
        assert_eq!(
            unopaque(&id).as_deref(),
            Some("ciscospark://us/MESSAGE/92db3be0-43bd-11e6-8ae9-dd5b3dfc565d")
        );
    }

    #[test]
    fn fresh_ids_need_no_escaping() {
        for kind in [
            Kind::People,
            Kind::Room,
            Kind::Message,
            Kind::AttachmentAction,
        ] {
            let id = new_id(kind);
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
        }
    }

    #[test]
    fn timestamps_have_milliseconds_and_zulu() {
        let at: jiff::Timestamp = "2026-11-20T16:35:10.852123Z".parse().expect("a timestamp");
        assert_eq!(format_timestamp(at), "2026-11-20T16:35:10.852Z");
        let whole: jiff::Timestamp = "2026-11-20T16:35:10Z".parse().expect("a timestamp");
        assert_eq!(format_timestamp(whole), "2026-11-20T16:35:10.000Z");
    }
}
