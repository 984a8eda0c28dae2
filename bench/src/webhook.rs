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
    Envelope::new(author).delivery(message_id)
}

/// An author's envelope, serialized once: a delivery only fills in the
/// message id and the time, so the load generator spends its CPU on
/// sending rather than on building JSON.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The serialized envelope, split where the message id and the
    /// `created` time go (each a JSON string, quotes included).
    parts: [Vec<u8>; 3],
    /// Whether the message id is the first of the two.
    message_first: bool,
}

const MESSAGE_SLOT: &str = "\u{1}message\u{1}";
const CREATED_SLOT: &str = "\u{1}created\u{1}";

impl Envelope {
    pub fn new(author: &Author) -> Self {
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
                "id": MESSAGE_SLOT,
                "roomId": author.room_id,
                "roomType": "group",
                "personId": author.person_id,
                "personEmail": author.email,
                "mentionedPeople": [webex_id("PEOPLE", 0xb07)],
                "created": CREATED_SLOT,
            }
        })
        .to_string();
        let slot = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let find = |s: &str| {
            let slot = slot(s);
            let at = body
                .find(&slot)
                .unwrap_or_else(|| unreachable!("the envelope holds {s:?}"));
            (at, at + slot.len())
        };
        let (message, created) = (find(MESSAGE_SLOT), find(CREATED_SLOT));
        let message_first = message.0 < created.0;
        let (first, second) = if message_first {
            (message, created)
        } else {
            (created, message)
        };
        let bytes = body.as_bytes();
        Self {
            parts: [
                bytes[..first.0].to_vec(),
                bytes[first.1..second.0].to_vec(),
                bytes[second.1..].to_vec(),
            ],
            message_first,
        }
    }

    /// The signed envelope for a new message `message_id`, created now.
    pub fn delivery(&self, message_id: &str) -> Delivery {
        let created = jiff::Timestamp::now().to_string();
        let (first, second) = if self.message_first {
            (message_id, created.as_str())
        } else {
            (created.as_str(), message_id)
        };
        let mut body = Vec::with_capacity(
            self.parts.iter().map(Vec::len).sum::<usize>() + message_id.len() + 64,
        );
        body.extend_from_slice(&self.parts[0]);
        json_string(&mut body, first);
        body.extend_from_slice(&self.parts[1]);
        json_string(&mut body, second);
        body.extend_from_slice(&self.parts[2]);
        let signature = chatops_gateway::intake::sign(SECRET.as_bytes(), &body);
        Delivery {
            body: body.into(),
            signature,
        }
    }
}

/// Appends `s` as a JSON string, quoted and escaped.
fn json_string(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
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
        let json: serde_json::Value = serde_json::from_slice(&d.body).expect("JSON");
        assert_eq!(json["data"]["id"], a.as_str());
        assert_eq!(json["resource"], "messages");
        let created = json["data"]["created"].as_str().expect("created");
        assert!(created.parse::<jiff::Timestamp>().is_ok(), "{created}");
        let odd = delivery("quote\" and \\ slash", &Author::synthetic());
        let json: serde_json::Value = serde_json::from_slice(&odd.body).expect("JSON");
        assert_eq!(json["data"]["id"], "quote\" and \\ slash");
    }
}
