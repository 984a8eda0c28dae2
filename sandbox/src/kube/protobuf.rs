//! Request bodies in the Kubernetes protobuf encoding
//! (`application/vnd.kubernetes.protobuf`), which kubectl's typed clients
//! send for `kubectl create deployment|namespace|configmap|role|...` and
//! `kubectl auth`: the wire format, the `k8s\0` + `runtime.Unknown`
//! envelope, and the conversion of a message into the JSON the same object
//! would have been sent as, driven by the schemas in `messages.rs`.
//!
//! The conversion follows Go's JSON encoding of the typed object, because
//! that is what a JSON client would have sent: Go's protobuf marshaller
//! writes every non-pointer scalar, even empty ones, so a zero value of an
//! `omitempty` field is dropped again here, while pointer fields (and
//! fields without `omitempty`) keep what was sent. A field number the
//! schema does not know is refused with 415 rather than dropped, so a
//! client never has a field silently lost.
//!
//! The wire format is read by hand: varints and length-delimited fields
//! are all the API uses. prost would decode into generated structs (k8s-pb
//! has them for every kind), which would then need converting to JSON with
//! Go's `omitempty` and embedding rules anyway, the very knowledge the
//! schema table holds; that table alone is smaller than either crate.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::messages::{self, Card, Field, Message, Type};

/// The four bytes every Kubernetes protobuf body starts with.
const MAGIC: &[u8] = b"k8s\0";

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// Not the wire format, or cut short.
    #[error("{0}")]
    Malformed(String),
    /// Valid protobuf the sandbox has no schema for.
    #[error("{0}")]
    Unsupported(String),
}

impl DecodeError {
    /// 400 for a broken body, 415 (send JSON instead) for one the sandbox
    /// cannot read.
    pub(crate) fn into_api_error(self, kind: &str, version: &str) -> ApiError {
        match self {
            Self::Malformed(why) => ApiError::bad_request(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: protobuf: {why}"
            )),
            Self::Unsupported(why) => ApiError::undecodable_protobuf(&why),
        }
    }
}

fn malformed(why: impl Into<String>) -> DecodeError {
    DecodeError::Malformed(why.into())
}

// ---------------------------------------------------------------- wire

/// A field's payload as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl Wire<'_> {
    fn name(self) -> &'static str {
        match self {
            Self::Varint(_) => "varint",
            Self::Fixed64(_) => "fixed64",
            Self::Bytes(_) => "length-delimited",
            Self::Fixed32(_) => "fixed32",
        }
    }
}

/// Reads `(field number, payload)` pairs off a message's bytes.
#[derive(Debug)]
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for (i, byte) in self.rest.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        Err(malformed("truncated or overlong varint"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(malformed(format!(
                "a field claims {n} bytes but {} remain",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn next_field(&mut self) -> Option<Result<(u32, Wire<'a>), DecodeError>> {
        if self.rest.is_empty() {
            return None;
        }
        Some(self.field())
    }

    fn field(&mut self) -> Result<(u32, Wire<'a>), DecodeError> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| malformed(format!("invalid field number {}", key >> 3)))?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().unwrap_or_default(),
            )),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| malformed("a length does not fit in memory"))?;
                Wire::Bytes(self.take(len)?)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().unwrap_or_default(),
            )),
            other => return Err(malformed(format!("unsupported wire type {other}"))),
        };
        Ok((number, wire))
    }
}

/// All fields of a message, in order.
fn fields(bytes: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, DecodeError> {
    let mut reader = Reader::new(bytes);
    let mut out = Vec::new();
    while let Some(field) = reader.next_field() {
        out.push(field?);
    }
    Ok(out)
}

fn utf8(bytes: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed("a string is not UTF-8"))
}

// ---------------------------------------------------------------- envelope

/// The type and payload of a `runtime.Unknown` envelope.
#[derive(Debug, Default, PartialEq, Eq)]
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

fn envelope(body: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    let inner = body.strip_prefix(MAGIC).ok_or_else(|| {
        malformed("the body does not start with the Kubernetes protobuf prefix \"k8s\\x00\"")
    })?;
    let mut env = Envelope::default();
    for (number, wire) in fields(inner)? {
        match (number, wire) {
            (1, Wire::Bytes(type_meta)) => {
                for (n, w) in fields(type_meta)? {
                    match (n, w) {
                        (1, Wire::Bytes(b)) => env.api_version = utf8(b)?,
                        (2, Wire::Bytes(b)) => env.kind = utf8(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(raw)) => env.raw = raw,
            (3, Wire::Bytes(b)) => env.content_encoding = utf8(b)?,
            // 4 is contentType, which says protobuf again.
            _ => {}
        }
    }
    Ok(env)
}

/// A protobuf request body as the JSON object a JSON client would have
/// sent, `apiVersion` and `kind` included.
pub(crate) fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    let env = envelope(body)?;
    if !env.content_encoding.is_empty() {
        return Err(DecodeError::Unsupported(format!(
            "the sandbox cannot decode protobuf with contentEncoding {:?}; send the object as JSON",
            env.content_encoding
        )));
    }
    let message = messages::by_kind(&env.api_version, &env.kind).ok_or_else(|| {
        DecodeError::Unsupported(format!(
            "the sandbox cannot decode {} {} from protobuf; send the object as JSON",
            env.api_version, env.kind
        ))
    })?;
    let mut object = Map::new();
    object.insert("apiVersion".to_owned(), json!(env.api_version));
    object.insert("kind".to_owned(), json!(env.kind));
    message_into(message, env.raw, "", &mut object)?;
    Ok(Value::Object(object))
}

// ---------------------------------------------------------------- messages

fn message_value(message: &Message, bytes: &[u8], path: &str) -> Result<Value, DecodeError> {
    let mut object = Map::new();
    message_into(message, bytes, path, &mut object)?;
    Ok(Value::Object(object))
}

/// Decodes `bytes` as `message` into `object`; `path` (JSON names, for
/// error messages) is where the message sits in the whole object.
fn message_into(
    message: &Message,
    bytes: &[u8],
    path: &str,
    object: &mut Map<String, Value>,
) -> Result<(), DecodeError> {
    for (number, wire) in fields(bytes)? {
        let Some(field) = message.fields.iter().find(|f| f.number == number) else {
            let at = if path.is_empty() { "the object" } else { path };
            return Err(DecodeError::Unsupported(format!(
                "the sandbox cannot decode field {number} of {} (in {at}) from protobuf; send the object as JSON",
                message.name
            )));
        };
        let here = if path.is_empty() {
            field.json.to_owned()
        } else {
            format!("{path}.{}", field.json)
        };
        if let Type::Inline(inner) = field.ty {
            // Go's embedded structs (`ProbeHandler` in `Probe`,
            // `VolumeSource` in `Volume`): their own message on the wire,
            // their fields at the parent's level in JSON.
            let Wire::Bytes(b) = wire else {
                return Err(wrong_wire(field, wire, &here));
            };
            message_into(inner, b, path, object)?;
            continue;
        }
        match field.card {
            Card::Repeated => {
                let values = repeated(field, wire, &here)?;
                let slot = object
                    .entry(field.json)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = slot {
                    items.extend(values);
                }
            }
            Card::Omit | Card::Keep => {
                let value = single(field.ty, field, wire, &here)?;
                if let Type::Map(_) = field.ty {
                    // A map is a repeated entry message: entries add up.
                    let slot = object
                        .entry(field.json)
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let (Value::Object(into), Value::Object(entry)) = (slot, value) {
                        into.extend(entry);
                    }
                } else if field.card == Card::Keep || !is_zero(&value) {
                    object.insert(field.json.to_owned(), value);
                } else {
                    object.remove(field.json);
                }
            }
        }
    }
    Ok(())
}

/// Go's zero values, which `omitempty` leaves out.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        _ => false,
    }
}

fn wrong_wire(field: &Field, wire: Wire<'_>, path: &str) -> DecodeError {
    malformed(format!(
        "field {} ({path}) arrived as {}, which does not fit its type",
        field.number,
        wire.name()
    ))
}

/// The items of one occurrence of a repeated field: one value, or several
/// when numbers arrive packed.
fn repeated(field: &Field, wire: Wire<'_>, path: &str) -> Result<Vec<Value>, DecodeError> {
    match (field.ty, wire) {
        (Type::Int32 | Type::Int64 | Type::Bool, Wire::Bytes(packed)) => {
            let mut reader = Reader::new(packed);
            let mut out = Vec::new();
            while !reader.rest.is_empty() {
                out.push(scalar(field.ty, reader.varint()?));
            }
            Ok(out)
        }
        (ty, wire) => Ok(vec![single(ty, field, wire, path)?]),
    }
}

fn scalar(ty: Type, raw: u64) -> Value {
    // Negative numbers are sign-extended to 64 bits on the wire, so the
    // bits reinterpret as i64 and, for int32, truncate.
    #[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)]
    match ty {
        Type::Bool => json!(raw != 0),
        Type::Int32 => json!(raw as i64 as i32),
        _ => json!(raw as i64),
    }
}

fn single(ty: Type, field: &Field, wire: Wire<'_>, path: &str) -> Result<Value, DecodeError> {
    match (ty, wire) {
        (Type::Bool | Type::Int32 | Type::Int64, Wire::Varint(raw)) => Ok(scalar(ty, raw)),
        (Type::String, Wire::Bytes(b)) => Ok(json!(utf8(b)?)),
        (Type::Bytes, Wire::Bytes(b)) => {
            Ok(json!(base64::engine::general_purpose::STANDARD.encode(b)))
        }
        (Type::Message(m) | Type::Inline(m), Wire::Bytes(b)) => message_value(m, b, path),
        (Type::Time, Wire::Bytes(b)) => time(b),
        (Type::Quantity, Wire::Bytes(b)) => {
            let mut out = String::new();
            for (n, w) in fields(b)? {
                if let (1, Wire::Bytes(s)) = (n, w) {
                    out = utf8(s)?;
                }
            }
            Ok(json!(out))
        }
        (Type::IntOrString, Wire::Bytes(b)) => int_or_string(b),
        (Type::Map(value_type), Wire::Bytes(b)) => {
            let mut key = String::new();
            let mut value = None;
            for (n, w) in fields(b)? {
                match (n, w) {
                    (1, Wire::Bytes(k)) => key = utf8(k)?,
                    (2, w) => value = Some(single(*value_type, field, w, path)?),
                    _ => return Err(wrong_wire(field, w, path)),
                }
            }
            // An entry without a value holds the value type's zero.
            let value = value.unwrap_or_else(|| match value_type {
                Type::Bool => json!(false),
                Type::Int32 | Type::Int64 => json!(0),
                _ => json!(""),
            });
            let mut entry = Map::new();
            entry.insert(key, value);
            Ok(Value::Object(entry))
        }
        (_, wire) => Err(wrong_wire(field, wire, path)),
    }
}

/// `metav1.Time` {seconds, nanos} as its JSON form, RFC 3339 to the
/// second; the zero time (an empty message) is `null`, as Go prints it.
fn time(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut seconds: i64 = 0;
    for (n, w) in fields(bytes)? {
        if let (1, Wire::Varint(raw)) = (n, w) {
            #[allow(clippy::cast_possible_wrap)]
            let s = raw as i64;
            seconds = s;
        }
    }
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let at = jiff::Timestamp::from_second(seconds)
        .map_err(|e| malformed(format!("time out of range: {e}")))?;
    Ok(json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

/// `intstr.IntOrString` {type, intVal, strVal} as a JSON number or string.
fn int_or_string(bytes: &[u8]) -> Result<Value, DecodeError> {
    let (mut is_string, mut int, mut string) = (false, 0_i32, String::new());
    for (n, w) in fields(bytes)? {
        match (n, w) {
            (1, Wire::Varint(t)) => is_string = t == 1,
            #[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)]
            (2, Wire::Varint(v)) => int = v as i64 as i32,
            (3, Wire::Bytes(s)) => string = utf8(s)?,
            _ => {}
        }
    }
    Ok(if is_string { json!(string) } else { json!(int) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies kubectl 1.32 sent (recorded by a proxy in front of the
    /// sandbox), each with the object `kubectl create ... --dry-run=client
    /// -o json` printed for the same command: the decoder must produce
    /// exactly what the JSON path would have received.
    #[test]
    fn kubectls_real_bodies_decode_to_what_it_prints_as_json() {
        let cases: &[(&str, &[u8], Value)] = &[
            (
                "create namespace team-a",
                include_bytes!("testdata/namespace.bin"),
                json!({"kind":"Namespace","apiVersion":"v1","metadata":{"name":"team-a","creationTimestamp":null},"spec":{},"status":{}}),
            ),
            (
                "create deployment web --image=nginx:1.25 --replicas=3 --port=80",
                include_bytes!("testdata/deployment.bin"),
                json!({"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","creationTimestamp":null,"labels":{"app":"web"}},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.25","ports":[{"containerPort":80}],"resources":{}}]}},"strategy":{}},"status":{}}),
            ),
            (
                "create configmap c1 --from-literal=a=b --from-literal=c=d",
                include_bytes!("testdata/configmap.bin"),
                json!({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c1","creationTimestamp":null},"data":{"a":"b","c":"d"}}),
            ),
            (
                "create serviceaccount s1",
                include_bytes!("testdata/serviceaccount.bin"),
                json!({"kind":"ServiceAccount","apiVersion":"v1","metadata":{"name":"s1","creationTimestamp":null}}),
            ),
            (
                "create role r1 --verb=get --verb=list --resource=deployments --resource=configmaps --resource-name=x",
                include_bytes!("testdata/role.bin"),
                json!({"kind":"Role","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"r1","creationTimestamp":null},"rules":[
                    {"verbs":["get","list"],"apiGroups":[""],"resources":["configmaps"],"resourceNames":["x"]},
                    {"verbs":["get","list"],"apiGroups":["apps"],"resources":["deployments"],"resourceNames":["x"]}]}),
            ),
            (
                "create rolebinding rb1 --role=r1 --user=bob --serviceaccount=default:s1 --group=devs",
                include_bytes!("testdata/rolebinding.bin"),
                json!({"kind":"RoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"rb1","creationTimestamp":null},"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"bob"},{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"devs"},{"kind":"ServiceAccount","name":"s1","namespace":"default"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r1"}}),
            ),
            (
                "create clusterrole cr1 --verb=get --resource=namespaces --non-resource-url=/logs",
                include_bytes!("testdata/clusterrole.bin"),
                json!({"kind":"ClusterRole","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"cr1","creationTimestamp":null},"rules":[
                    {"verbs":["get"],"apiGroups":[""],"resources":["namespaces"]},
                    {"verbs":["get"],"nonResourceURLs":["/logs"]}]}),
            ),
            (
                "create clusterrolebinding crb1 --clusterrole=cr1 --user=alice",
                include_bytes!("testdata/clusterrolebinding.bin"),
                json!({"kind":"ClusterRoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"crb1","creationTimestamp":null},"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"alice"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cr1"}}),
            ),
            (
                "auth can-i get deployments -n team-a",
                include_bytes!("testdata/selfsubjectaccessreview.bin"),
                json!({"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},
                    "spec":{"resourceAttributes":{"namespace":"team-a","verb":"get","group":"apps","resource":"deployments"}},
                    "status":{"allowed":false}}),
            ),
            (
                "auth can-i --list",
                include_bytes!("testdata/selfsubjectrulesreview.bin"),
                json!({"kind":"SelfSubjectRulesReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},
                    "spec":{"namespace":"default"},"status":{"incomplete":false}}),
            ),
            (
                "auth whoami",
                include_bytes!("testdata/selfsubjectreview.bin"),
                json!({"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},
                    "status":{"userInfo":{}}}),
            ),
        ];
        for (command, body, want) in cases {
            assert_eq!(&decode(body).expect(command), want, "kubectl {command}");
        }
    }

    #[test]
    fn an_update_carries_the_stored_metadata_and_its_timestamp() {
        // `kubectl auth reconcile` adding a verb: a PUT of the object it read.
        let role = decode(include_bytes!("testdata/role-update.bin")).expect("decodes");
        assert_eq!(
            role["metadata"],
            json!({"name":"reader","namespace":"team-a","uid":"99a0a47d-d396-4c97-9036-3ee3ba8aa882",
                   "resourceVersion":"15","creationTimestamp":"2026-11-30T12:19:23Z","labels":{"app":"demo"}})
        );
        assert_eq!(role["rules"][1]["verbs"], json!(["watch"]));
    }

    fn varint(mut n: usize, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push(u8::try_from(n & 0x7f | 0x80).expect("seven bits"));
            n >>= 7;
        }
        out.push(u8::try_from(n).expect("seven bits"));
    }

    /// Encodes a length-delimited field, for hand-made bodies.
    fn field(number: usize, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(number << 3 | 2, &mut out);
        varint(payload.len(), &mut out);
        out.extend_from_slice(payload);
        out
    }

    fn envelope_of(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
        [MAGIC.to_vec(), field(1, &type_meta), field(2, raw)].concat()
    }

    #[test]
    fn a_field_the_schema_does_not_know_is_refused_by_number_and_place() {
        // PodSpec field 18 is affinity, which the schema leaves out.
        let pod_spec = field(18, b"");
        let template = field(2, &pod_spec);
        let spec = field(3, &template);
        let body = envelope_of("apps/v1", "Deployment", &field(2, &spec));
        let Err(DecodeError::Unsupported(why)) = decode(&body) else {
            panic!("must be refused");
        };
        assert_eq!(
            why,
            "the sandbox cannot decode field 18 of PodSpec (in spec.template.spec) from protobuf; send the object as JSON"
        );
        let e = DecodeError::Unsupported(why).into_api_error("Deployment", "v1");
        assert_eq!(e.code(), 415);
    }

    #[test]
    fn a_kind_without_a_schema_is_refused() {
        let body = envelope_of("v1", "Secret", b"");
        assert!(matches!(decode(&body), Err(DecodeError::Unsupported(_))));
    }

    #[test]
    fn int_or_string_and_quantities_take_their_json_forms() {
        // maxSurge as the string "25%", maxUnavailable as the number 1.
        let surge = [vec![0x08, 0x01], field(3, b"25%")].concat();
        let unavailable = vec![0x08, 0x00, 0x10, 0x01];
        let rolling = [field(1, &unavailable), field(2, &surge)].concat();
        let strategy = field(2, &rolling);
        let limits = field(
            1,
            &[field(1, b"cpu"), field(2, &field(1, b"500m"))].concat(),
        );
        let container = [field(1, b"c"), field(8, &limits)].concat();
        let template = field(2, &field(2, &container));
        let spec = [field(4, &strategy), field(3, &template), vec![0x08, 0x00]].concat();
        let d = decode(&envelope_of("apps/v1", "Deployment", &field(2, &spec))).expect("decodes");
        assert_eq!(
            d["spec"]["strategy"]["rollingUpdate"],
            json!({"maxSurge": "25%", "maxUnavailable": 1})
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["resources"],
            json!({"limits": {"cpu": "500m"}})
        );
        // replicas is a pointer: a 0 sent is a 0 kept.
        assert_eq!(d["spec"]["replicas"], 0);
    }

    #[test]
    fn embedded_structs_are_inlined_as_go_prints_them() {
        // A volume's source and a probe's handler sit in the parent in JSON.
        let config_map = field(1, &field(1, b"settings"));
        let volume = [field(1, b"cfg"), field(2, &field(19, &config_map))].concat();
        let exec = field(1, b"true");
        let probe = [field(1, &field(1, &exec)), vec![0x10, 0x05]].concat();
        let container = [field(1, b"c"), field(10, &probe)].concat();
        let pod = [field(1, &volume), field(2, &container)].concat();
        let spec = field(3, &field(2, &pod));
        let d = decode(&envelope_of("apps/v1", "Deployment", &field(2, &spec))).expect("decodes");
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(
            pod["volumes"],
            json!([{"name": "cfg", "configMap": {"name": "settings"}}])
        );
        assert_eq!(
            pod["containers"][0]["livenessProbe"],
            json!({"exec": {"command": ["true"]}, "initialDelaySeconds": 5})
        );
    }

    #[test]
    fn varints_read_as_the_wire_format_writes_them() {
        let mut r = Reader::new(&[0xac, 0x02, 0x01]);
        assert_eq!(r.varint(), Ok(300));
        assert_eq!(r.varint(), Ok(1));
        assert!(Reader::new(&[0x80]).varint().is_err());
    }

    #[test]
    fn a_length_past_the_end_is_malformed_not_a_panic() {
        // Field 1, length-delimited, claims 5 bytes, has 1.
        assert!(matches!(
            fields(&[0x0a, 0x05, b'x']),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn a_body_without_the_prefix_is_malformed() {
        assert!(matches!(
            decode(b"{\"kind\":\"Namespace\"}"),
            Err(DecodeError::Malformed(_))
        ));
    }
}
