//! Webex webhook deliveries as Webex sends them: a `messages`/`created`
//! envelope with Webex-sized ids, signed with HMAC-SHA1 over the raw body.

use bytes::Bytes;

/// The webhook secret every bench gateway is configured with.
pub const SECRET: &str = "bench-webhook-secret-0123456789abcdef";

/// Who the envelope says wrote the message.
#[derive(Debug, Clone)]
pub struct Author {
    pub room_id: String,
    pub person_id: String,
    pub email: String,
}

impl Author {
    /// A made-up author, for intake runs (intake reads no ids).
    pub fn synthetic() -> Self {
        Self {
            room_id: webex_id("ROOM", 1),
            person_id: webex_id("PEOPLE", 2),
            email: "alice@example.com".to_owned(),
        }
    }
}

/// An id shaped like Webex's (base64 of `ciscospark://us/KIND/uuid`), unique
/// per `n`: about 80 characters, so bodies are as large as real ones.
pub fn webex_id(kind: &str, n: u64) -> String {
    let raw = format!(
        "ciscospark://us/{kind}/{:08x}-4c9b-11f1-9d8e-{n:012x}",
        n & 0xffff_ffff
    );
    base64(raw.as_bytes())
}

/// Standard base64 without padding (Webex ids have none).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A signed delivery: the body and its `X-Spark-Signature`.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub body: Bytes,
    pub signature: String,
}

/// The envelope Webex posts for a new message `message_id`.
pub fn delivery(message_id: &str, author: &Author) -> Delivery {
    let body = serde_json::json!({
        "id": "Y2lzY29zcGFyazovL3VzL1dFQkhPT0svYmVuY2gtd2ViaG9vaw",
        "name": "chatops",
        "targetUrl": "https://chatops.example.com/webhooks/webex",
        "resource": "messages",
        "event": "created",
        "filter": "mentionedPeople=me",
        "orgId": "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9iZW5jaC1vcmc",
        "createdBy": author.person_id,
        "appId": "Y2lzY29zcGFyazovL3VzL0FQUExJQ0FUSU9OL2JlbmNoLWFwcA",
        "ownedBy": "creator",
        "status": "active",
        "created": "2026-11-20T16:35:11.103Z",
        "actorId": author.person_id,
        "data": {
            "id": message_id,
            "roomId": author.room_id,
            "roomType": "group",
            "personId": author.person_id,
            "personEmail": author.email,
            "mentionedPeople": [webex_id("PEOPLE", 0xb07)],
            "created": jiff::Timestamp::now().to_string(),
        }
    });
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let signature = chatops_gateway::intake::sign(SECRET.as_bytes(), &body);
    Delivery {
        body: body.into(),
        signature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_base64_and_webex_sized() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE");
        let (a, b) = (webex_id("MESSAGE", 1), webex_id("MESSAGE", 2));
        assert_ne!(a, b);
        assert!((70..=90).contains(&a.len()), "{a}");
        let d = delivery(&a, &Author::synthetic());
        assert!(chatops_gateway::intake::verify_signature(
            SECRET.as_bytes(),
            &d.body,
            &d.signature
        ));
        assert!((700..=1100).contains(&d.body.len()), "{}", d.body.len());
    }
}
