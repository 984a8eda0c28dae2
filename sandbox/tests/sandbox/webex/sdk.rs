//! The official Python SDK (`webexpythonsdk`) against the sandbox, through
//! `tests/python/sdk_check.py`. The interpreter is `CHATOPS_PYTHON` (the
//! virtualenv scripts/test prepares), else `python3`; without the SDK the
//! test fails, it never skips.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::process::Command;

use super::*;

/// The SDK waits out a 1 s Retry-After; the whole script takes a few seconds.
const SCRIPT_LIMIT: Duration = Duration::from_secs(90);
const CHECKS: &[&str] = &[
    "people.me",
    "rooms.list",
    "webhooks.create",
    "webhooks.create filter",
    "messages.create mention",
    "messages.create parentId",
    "messages.get",
    "messages.list",
    "messages.list beforeMessage",
    "rooms teamId",
    "messages.update",
    "attachment_actions",
    "messages.delete",
    "messages.create limit",
    "webhooks.list",
    "webhooks.update",
    "webhooks.delete",
    "401",
    "429",
];

fn python() -> String {
    std::env::var("CHATOPS_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn python_command(python: &str) -> Command {
    let mut cmd = Command::new(python);
    cmd.env_remove("WEBEX_ACCESS_TOKEN")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Fails the test, saying how to fix it, if the SDK cannot be imported.
async fn assert_sdk_importable(python: &str) {
    let probe = python_command(python)
        .args([
            "-c",
            "import webexpythonsdk; print(webexpythonsdk.__version__)",
        ])
        .output()
        .await;
    let fix = "run scripts/test, or: python3 -m venv /tmp/wxvenv && /tmp/wxvenv/bin/pip install webexpythonsdk==2.0.6 \
               and set CHATOPS_PYTHON=/tmp/wxvenv/bin/python";
    match probe {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if version != "2.0.6" {
                eprintln!(
                    "note: webexpythonsdk {version} found; the sandbox is verified against 2.0.6"
                );
            }
        }
        Ok(out) => panic!(
            "webexpythonsdk is not importable with {python}: {}\n{fix}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("cannot run {python}: {e}\n{fix}"),
    }
}

#[tokio::test]
async fn the_official_python_sdk_works_against_the_sandbox() {
    let python = python();
    assert_sdk_importable(&python).await;
    let wx = sandbox().await;
    let mut receiver = Receiver::start().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_check.py");

    let run = python_command(&python)
        .arg(&script)
        .env("SANDBOX_API", format!("{}/", wx.url()))
        .env("SANDBOX_CONTROL", wx.control_url())
        .env("BOT_TOKEN", BOT_TOKEN)
        .env("BOT_NAME", "kube")
        .env("USER_EMAIL", ALICE)
        .env("USER_TOKEN", ALICE_TOKEN)
        .env("ROOM_ID", wx.default_room_id())
        .env("TARGET_URL", &receiver.url)
        .env("WEBHOOK_SECRET", SECRET)
        .output();
    let output = tokio::time::timeout(SCRIPT_LIMIT, run)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} did not finish within {SCRIPT_LIMIT:?}",
                script.display()
            )
        })
        .expect("run the SDK check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the SDK check failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for check in CHECKS {
        assert!(
            stdout.lines().any(|l| l == format!("ok {check}")),
            "no \"ok {check}\" in:\n{stdout}"
        );
    }
    assert!(stdout.lines().any(|l| l == "ALL OK"), "{stdout}");

    // The webhook the SDK registered was told of the SDK-posted mention,
    // signed with the SDK-given secret.
    let message_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("MESSAGE_ID="))
        .expect("the script names its message");
    let delivery = receiver.next().await;
    assert_eq!(delivery.json()["data"]["id"], json!(message_id));
    assert_eq!(delivery.signature(), hmac_sha1_hex(SECRET, &delivery.body));
    assert!(
        receiver.drain().is_empty(),
        "only the mention reaches the bot"
    );

    // What the sandbox saw: the 429 the SDK waited out, then the retry, and
    // a message list walked page by page through Link headers.
    let me_calls: Vec<(u16, Option<String>)> = wx
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/people/me" && r.actor.as_deref() == Some("kube@webex.bot"))
        .map(|r| (r.status, r.fault))
        .collect();
    assert_eq!(
        me_calls[me_calls.len().saturating_sub(2)..],
        [
            (429, Some("rateLimit retryAfter=1".to_owned())),
            (200, None)
        ]
    );
    let pages = wx
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "GET"
                && r.path == "/v1/messages"
                && r.query.as_deref().is_some_and(|q| q.contains("max=2"))
        })
        .count();
    assert_eq!(pages, 3, "five messages in pages of two");
}

/// What every [`run_sdk`] script starts with: SDK clients for the bot,
/// Alice and Bob, and checks that raise on the first mismatch.
const PRELUDE: &str = r#"
import os, sys, tempfile
from webexpythonsdk import ApiError, WebexAPI

API = os.environ["SANDBOX_API"]
ROOM_ID = os.environ["ROOM_ID"]
ALICE_EMAIL = os.environ["ALICE_EMAIL"]
BOB_EMAIL = os.environ["BOB_EMAIL"]
bot = WebexAPI(access_token=os.environ["BOT_TOKEN"], base_url=API)
alice = WebexAPI(access_token=os.environ["ALICE_TOKEN"], base_url=API)
bob = WebexAPI(access_token=os.environ["BOB_TOKEN"], base_url=API)

def expect(check, condition, detail=""):
    if not condition:
        raise AssertionError(f"{check}: {detail}")

def api_error(check, status, call):
    try:
        call()
    except ApiError as e:
        expect(check, e.status_code == status, f"status {e.status_code}, wanted {status}: {e.message}")
        expect(check, e.details["errors"] == [{"description": e.message}], f"Webex's error body: {e.details!r}")
        return e
    raise AssertionError(f"{check}: no ApiError, wanted {status}")
"#;

/// Runs `script` (after [`PRELUDE`]) with the SDK against `wx` and fails
/// the test, showing its output, unless it gets to the end.
async fn run_sdk(wx: &WebexSandbox, script: &str) -> String {
    let python = python();
    assert_sdk_importable(&python).await;
    let program = format!("{PRELUDE}\n{script}\nprint(\"ALL OK\", flush=True)\n");
    let run = python_command(&python)
        .args(["-c", &program])
        .env("SANDBOX_API", format!("{}/", wx.url()))
        .env("ROOM_ID", wx.default_room_id())
        .env("BOT_TOKEN", BOT_TOKEN)
        .env("ALICE_EMAIL", ALICE)
        .env("ALICE_TOKEN", ALICE_TOKEN)
        .env("BOB_EMAIL", BOB)
        .env("BOB_TOKEN", BOB_TOKEN)
        .output();
    let output = tokio::time::timeout(SCRIPT_LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("the SDK script did not finish within {SCRIPT_LIMIT:?}"))
        .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.lines().any(|l| l == "ALL OK"),
        "the SDK script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

#[tokio::test]
async fn the_sdk_renames_and_deletes_a_room_which_is_then_gone_for_everyone() {
    let wx = sandbox().await;
    run_sdk(
        &wx,
        r#"
room = alice.rooms.create(title="incident 42")
alice.memberships.create(roomId=room.id, personEmail=BOB_EMAIL)
first = bob.messages.create(roomId=room.id, text="looking")

renamed = alice.rooms.update(room.id, title="incident 42 (resolved)")
expect("rooms.update", renamed.title == "incident 42 (resolved)", repr(renamed.title))
expect("rooms.update", bob.rooms.get(room.id).title == "incident 42 (resolved)", "Bob sees the new title")
api_error("rooms.update blank", 400, lambda: alice.rooms.update(room.id, title="   "))
api_error("rooms.update non-member", 404, lambda: bot.rooms.update(room.id, title="mine"))
api_error("rooms.delete non-member", 404, lambda: bot.rooms.delete(room.id))

direct = alice.messages.create(toPersonEmail=BOB_EMAIL, text="psst")
api_error("rooms.update 1:1", 400, lambda: alice.rooms.update(direct.roomId, title="secret"))
api_error("rooms.delete 1:1", 400, lambda: alice.rooms.delete(direct.roomId))

bob.rooms.delete(room.id)
for who, api in (("alice", alice), ("bob", bob)):
    api_error(f"rooms.get ({who})", 404, lambda: api.rooms.get(room.id))
    api_error(f"memberships.list ({who})", 404, lambda: list(api.memberships.list(roomId=room.id)))
    api_error(f"messages.get ({who})", 404, lambda: api.messages.get(first.id))
    api_error(f"messages.list ({who})", 404, lambda: list(api.messages.list(roomId=room.id)))
    expect(f"rooms.list ({who})", room.id not in [r.id for r in api.rooms.list()], "the room is listed")
    expect(f"rooms.list ({who})", ROOM_ID in [r.id for r in api.rooms.list()], "other rooms stay")
api_error("rooms.delete again", 404, lambda: alice.rooms.delete(room.id))
"#,
    )
    .await;
}

#[tokio::test]
async fn the_sdk_lists_direct_messages_and_each_side_sees_the_other_as_the_title() {
    let wx = sandbox().await;
    run_sdk(
        &wx,
        r#"
alice.messages.create(roomId=ROOM_ID, text="group chatter")
first = alice.messages.create(toPersonEmail=BOB_EMAIL, text="one")
second = bob.messages.create(toPersonEmail=ALICE_EMAIL, text="two")
reply = alice.messages.create(roomId=first.roomId, parentId=first.id, text="one, more")
expect("one 1:1 room", second.roomId == first.roomId, f"{second.roomId} != {first.roomId}")

newest_first = [reply.id, second.id, first.id]
listed = [m.id for m in alice.messages.list_direct(personEmail=BOB_EMAIL)]
expect("list_direct", listed == newest_first, f"listed {listed!r}")
alice_id = alice.people.me().id
listed = [m.id for m in bob.messages.list_direct(personId=alice_id)]
expect("list_direct personId", listed == newest_first, f"listed {listed!r}")
paged = [m.id for m in alice.messages.list_direct(personEmail=BOB_EMAIL, max=2)]
expect("list_direct pages", paged == newest_first, f"paged {paged!r}")
thread = [m.id for m in alice.messages.list_direct(personEmail=BOB_EMAIL, parentId=first.id)]
expect("list_direct parentId", thread == [reply.id], f"thread {thread!r}")
bot_email = bot.people.me().emails[0]
expect("list_direct no room yet", list(alice.messages.list_direct(personEmail=bot_email)) == [], "")
api_error("list_direct unknown", 404, lambda: list(alice.messages.list_direct(personEmail="eve@example.com")))
api_error("list_direct without a person", 400, lambda: list(alice.messages.list_direct()))
expect("messages.get", alice.messages.get(first.id).text == "one", "GET /messages/{id} still answers")

expect("rooms.get alice", alice.rooms.get(first.roomId).title == "Bob", alice.rooms.get(first.roomId).title)
expect("rooms.get bob", bob.rooms.get(first.roomId).title == "Alice", bob.rooms.get(first.roomId).title)
titles = [r.title for r in alice.rooms.list(type="direct")]
expect("rooms.list alice", titles == ["Bob"], repr(titles))
titles = [r.title for r in bob.rooms.list(type="direct")]
expect("rooms.list bob", titles == ["Alice"], repr(titles))
"#,
    )
    .await;
}

#[tokio::test]
async fn the_sdk_updates_memberships_and_moderators_guard_their_room() {
    let wx = sandbox().await;
    run_sdk(
        &wx,
        r#"
room = alice.rooms.create(title="moderated")
bobs = alice.memberships.create(roomId=room.id, personEmail=BOB_EMAIL)
alices = [m for m in alice.memberships.list(roomId=room.id) if m.personEmail == ALICE_EMAIL][0]
expect("unmoderated", alice.rooms.get(room.id).isLocked is False, "a new room is not locked")

made = alice.memberships.update(alices.id, isModerator=True)
expect("memberships.update", made.isModerator is True and made.id == alices.id, repr(made))
expect("memberships.update", bob.memberships.get(alices.id).isModerator is True, "Bob sees it")
expect("isLocked", bob.rooms.get(room.id).isLocked is True, "a room with a moderator is moderated")
api_error("non-moderator", 403, lambda: bob.memberships.update(bobs.id, isModerator=True))
api_error("rename by non-moderator", 403, lambda: bob.rooms.update(room.id, title="mine"))
api_error("unknown membership", 404, lambda: alice.memberships.update("Y2lzY29zcGFyazovL3VzL01FTUJFUlNISVAvbm9uZQ", isModerator=True))
api_error("membership not visible", 404, lambda: bot.memberships.update(bobs.id, isModerator=True))
api_error("nothing to change", 400, lambda: alice.memberships.update(bobs.id))

# A non-moderator deleting a moderated room only leaves it.
bob.rooms.delete(room.id)
api_error("left", 404, lambda: bob.rooms.get(room.id))
expect("room kept", alice.rooms.get(room.id).title == "moderated", "the room is still there")
members = [m.personEmail for m in alice.memberships.list(roomId=room.id)]
expect("room kept", members == [ALICE_EMAIL], repr(members))

direct = alice.messages.create(toPersonEmail=BOB_EMAIL, text="hi")
mine = [m for m in alice.memberships.list(roomId=direct.roomId) if m.personEmail == ALICE_EMAIL][0]
expect("isRoomHidden", mine.isRoomHidden is False, repr(mine))
hidden = alice.memberships.update(mine.id, isRoomHidden=True)
expect("isRoomHidden", hidden.isRoomHidden is True, repr(hidden))
theirs = [m for m in alice.memberships.list(roomId=direct.roomId) if m.personEmail == BOB_EMAIL][0]
api_error("hide for someone else", 403, lambda: alice.memberships.update(theirs.id, isRoomHidden=True))
api_error("1:1 moderator", 400, lambda: alice.memberships.update(mine.id, isModerator=True))
bob.messages.create(toPersonEmail=ALICE_EMAIL, text="still there?")
expect("shown again", alice.memberships.get(mine.id).isRoomHidden is False, "a new message shows the room")
"#,
    )
    .await;
}

#[tokio::test]
async fn the_sdk_gets_a_clear_400_for_blank_messages_roomless_edits_and_files() {
    let wx = sandbox().await;
    run_sdk(
        &wx,
        r#"
for text, markdown in (("   ", None), (None, ""), ("", "\n\t ")):
    e = api_error(f"blank {text!r} {markdown!r}", 400, lambda: alice.messages.create(roomId=ROOM_ID, text=text, markdown=markdown))
    expect("blank", "whitespace" in e.message, e.message)
api_error("blank 1:1", 400, lambda: alice.messages.create(toPersonEmail=BOB_EMAIL, text=" "))

posted = alice.messages.create(roomId=ROOM_ID, text="to edit")
api_error("blank edit", 400, lambda: alice.messages.update(posted.id, roomId=ROOM_ID, text="  "))
e = api_error("edit without roomId", 400, lambda: alice.messages.update(posted.id, text="edited"))
expect("edit without roomId", "roomId" in e.message, e.message)
expect("not edited", alice.messages.get(posted.id).text == "to edit", "the refused edits changed nothing")

# The SDK uploads a local file as multipart/form-data.
with tempfile.NamedTemporaryFile(suffix=".txt") as f:
    f.write(b"pod logs")
    f.flush()
    e = api_error("files", 400, lambda: alice.messages.create(roomId=ROOM_ID, text="see file", files=[f.name]))
expect("files", "stores no files" in e.message and "Invalid JSON" not in e.message, e.message)
"#,
    )
    .await;
}

#[tokio::test]
async fn the_sdk_gets_a_clear_400_for_people_without_a_filter_and_an_unknown_webhook_status() {
    let wx = sandbox().await;
    run_sdk(
        &wx,
        r#"
e = api_error("people.list", 400, lambda: list(alice.people.list()))
expect("people.list", "email or displayName" in e.message, e.message)
expect("people.list", [p.emails for p in alice.people.list(displayName="Bo")] == [[BOB_EMAIL]], "a filter works")

hook = bot.webhooks.create(name="hook", targetUrl="http://127.0.0.1:9/hook", resource="messages", event="created")
e = api_error("webhook status", 400, lambda: bot.webhooks.update(hook.id, name="hook", targetUrl="http://127.0.0.1:9/hook", status="paused"))
expect("webhook status", "active" in e.message and "inactive" in e.message, e.message)
for word in ("variant", "line 1", "column", "expected"):
    expect("webhook status", word not in e.message, e.message)
expect("webhook status", bot.webhooks.get(hook.id).status == "active", "unchanged")
"#,
    )
    .await;
}

#[tokio::test]
async fn the_sdk_meets_webex_limits_on_edits_webhook_updates_and_membership_filters() {
    let wx = sandbox().await;
    run_sdk(
        &wx,
        r#"
posted = alice.messages.create(roomId=ROOM_ID, text="v0")
for n in range(1, 11):
    alice.messages.update(posted.id, roomId=ROOM_ID, text=f"v{n}")
e = api_error("an eleventh edit", 400, lambda: alice.messages.update(posted.id, roomId=ROOM_ID, text="v11"))
expect("an eleventh edit", "10 times" in e.message, e.message)
expect("ten edits kept", alice.messages.get(posted.id).text == "v10", alice.messages.get(posted.id).text)
card = {"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "TextBlock", "text": "Restart web?"}]}
asked = bot.messages.create(
    roomId=ROOM_ID, text="Restart web?",
    attachments=[{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
)
api_error("a card's edit", 400, lambda: bot.messages.update(asked.id, roomId=ROOM_ID, text="Restarted"))

target = "http://127.0.0.1:9/hook"
hook = bot.webhooks.create(name="hook", targetUrl=target, resource="messages", event="created")
for partial in ({"status": "inactive"}, {"name": "renamed"}, {"targetUrl": target}):
    e = api_error(f"webhooks.update {partial}", 400, lambda: bot.webhooks.update(hook.id, **partial))
    expect(f"webhooks.update {partial}", "is required" in e.message, e.message)
kept = bot.webhooks.get(hook.id)
expect("webhook unchanged", (kept.name, kept.status) == ("hook", "active"), repr(kept))
api_error("attachmentActions deleted", 400, lambda: bot.webhooks.create(
    name="cards", targetUrl=target, resource="attachmentActions", event="deleted"))

api_error("memberships by email, no room", 400, lambda: list(alice.memberships.list(personEmail=BOB_EMAIL)))
api_error("memberships by id, no room", 400, lambda: list(alice.memberships.list(personId=alice.people.me().id)))
found = [m.personEmail for m in alice.memberships.list(roomId=ROOM_ID, personEmail=BOB_EMAIL)]
expect("memberships by email in a room", found == [BOB_EMAIL], repr(found))

war_room = alice.rooms.create(title="war room", isLocked=True)
expect("rooms.create isLocked", war_room.isLocked is True, repr(war_room))
moderators = [(m.personEmail, m.isModerator) for m in alice.memberships.list(roomId=war_room.id)]
expect("the creator moderates", moderators == [(ALICE_EMAIL, True)], repr(moderators))
expect("unlocked by default", alice.rooms.create(title="open").isLocked is False, "")

for what, call in (("teams", lambda: list(alice.teams.list())), ("meeting info", lambda: alice.rooms.get_meeting_info(ROOM_ID))):
    e = api_error(what, 404, call)
    expect(what, "does not serve" in e.message, e.message)
e = api_error("a wrong path", 404, lambda: alice._session.get("nosuch"))
expect("a wrong path", e.message == "The requested resource could not be found.", e.message)
"#,
    )
    .await;
}

#[tokio::test]
async fn an_explicit_null_is_an_absent_optional_field_as_json_clients_send_it() {
    let wx = sandbox().await;
    run_sdk(
        &wx,
        r#"
# Clients that build bodies from optional values send None as null.
posted = alice._session.post("messages", json={
    "roomId": ROOM_ID, "text": "hi", "markdown": None, "parentId": None,
    "attachments": None, "files": None,
})
expect("messages null", posted["text"] == "hi" and "attachments" not in posted, repr(posted))
room = alice._session.post("rooms", json={"title": "nulls", "isLocked": None, "teamId": None})
expect("rooms null", room["isLocked"] is False, repr(room))
member = alice._session.post("memberships", json={"roomId": room["id"], "personEmail": BOB_EMAIL, "isModerator": None})
expect("memberships null", member["isModerator"] is False, repr(member))
"#,
    )
    .await;
}

#[tokio::test]
async fn a_refused_1_1_reply_creates_no_1_1_room() {
    let wx = sandbox().await;
    run_sdk(
        &wx,
        r#"
bot_email = bot.people.me().emails[0]
elsewhere = alice.messages.create(roomId=ROOM_ID, text="in the group room")
api_error("1:1 reply to a group message", 400, lambda: alice.messages.create(
    toPersonEmail=bot_email, parentId=elsewhere.id, text="psst"))
direct = [r.title for r in alice.rooms.list(type="direct")] + [r.title for r in bot.rooms.list(type="direct")]
expect("no 1:1 room", direct == [], repr(direct))

first = alice.messages.create(toPersonEmail=bot_email, text="hi")
reply = alice.messages.create(toPersonEmail=bot_email, parentId=first.id, text="more")
expect("1:1 thread", reply.roomId == first.roomId and reply.parentId == first.id, repr(reply))
"#,
    )
    .await;
}
