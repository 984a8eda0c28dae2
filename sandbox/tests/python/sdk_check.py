"""Drives the official Webex Python SDK (webexpythonsdk) against a running
webex-sandbox and checks every answer. Run by the Rust test
sandbox/tests/sandbox/webex/sdk.rs, which starts the sandbox and a webhook
receiver and passes their coordinates in the environment:

  SANDBOX_API       API base URL with a trailing slash (http://127.0.0.1:PORT/v1/)
  SANDBOX_CONTROL   control base URL (http://127.0.0.1:PORT/_sandbox)
  BOT_TOKEN, BOT_NAME, USER_EMAIL, USER_TOKEN, ROOM_ID
  TARGET_URL        where the webhook created here should deliver
  WEBHOOK_SECRET    its secret

Prints "ok <check>" per check, "MESSAGE_ID=<id>" for the message the
webhook must have been told about, and "ALL OK" at the end; on the first
mismatch prints "FAIL <check>: <why>" and exits 1.
"""

import base64
import datetime
import os
import re
import sys
import time
import traceback
import warnings

import requests
import webexpythonsdk
from webexpythonsdk import ApiError, RateLimitWarning, WebexAPI

ENV = os.environ
API = ENV["SANDBOX_API"]
CONTROL = ENV["SANDBOX_CONTROL"]
BOT_NAME = ENV["BOT_NAME"]
USER_EMAIL = ENV["USER_EMAIL"]
ROOM_ID = ENV["ROOM_ID"]
TARGET_URL = ENV["TARGET_URL"]
SECRET = ENV["WEBHOOK_SECRET"]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
UNAUTHORIZED = "The request requires a valid access token set in the Authorization request header."


class Mismatch(Exception):
    pass


def expect(check, condition, detail):
    if not condition:
        raise Mismatch(f"{check}: {detail}")


def ok(check):
    print(f"ok {check}", flush=True)


def expect_api_error(check, status, call):
    try:
        call()
    except ApiError as e:
        expect(check, e.status_code == status, f"status {e.status_code}, wanted {status}: {e}")
        return e
    raise Mismatch(f"{check}: no ApiError, wanted {status}")


def main():
    print(f"webexpythonsdk {webexpythonsdk.__version__}", flush=True)
    bot = WebexAPI(access_token=ENV["BOT_TOKEN"], base_url=API)
    user = WebexAPI(access_token=ENV["USER_TOKEN"], base_url=API)

    # The sandbox's own info gives the base URL as the SDK takes it.
    info = requests.get(f"{CONTROL}/info", timeout=5).json()
    expect("people.me", info["apiUrl"] == API, f"apiUrl {info['apiUrl']!r}, wanted {API!r}")
    me = bot.people.me()
    expect("people.me", me.type == "bot", f"type {me.type!r}")
    expect("people.me", me.displayName == BOT_NAME, f"displayName {me.displayName!r}")
    expect("people.me", me.firstName == BOT_NAME.split()[0], f"firstName {me.firstName!r}")
    expect("people.me", len(me.emails) == 1 and me.emails[0].endswith("@webex.bot"), f"emails {me.emails!r}")
    expect("people.me", isinstance(me.created, datetime.datetime), f"created {me.created!r}")
    alice = user.people.me()
    expect("people.me", alice.emails == [USER_EMAIL] and alice.type == "person", f"user {alice!r}")
    expect("people.get", user.people.get(me.id).displayName == BOT_NAME, "bot by id")
    found = [p.id for p in user.people.list(email=USER_EMAIL)]
    expect("people.list", found == [alice.id], f"people with {USER_EMAIL}: {found!r}")
    ok("people.me")

    for who, api in (("user", user), ("bot", bot)):
        rooms = list(api.rooms.list())
        expect("rooms.list", ROOM_ID in [r.id for r in rooms], f"{who} does not see the default room: {rooms!r}")
    room = user.rooms.get(ROOM_ID)
    expect("rooms.list", room.type == "group", f"room type {room.type!r}")
    members = {m.personEmail for m in user.memberships.list(roomId=ROOM_ID)}
    expect("rooms.list", {USER_EMAIL, me.emails[0]} <= members, f"members {members!r}")
    ok("rooms.list")

    hook = bot.webhooks.create(
        name="chatops",
        targetUrl=TARGET_URL,
        resource="messages",
        event="created",
        filter="mentionedPeople=me",
        secret=SECRET,
    )
    expect("webhooks.create", hook.status == "active", f"status {hook.status!r}")
    expect("webhooks.create", hook.filter == "mentionedPeople=me", f"filter {hook.filter!r}")
    expect("webhooks.create", isinstance(hook.created, datetime.datetime), f"created {hook.created!r}")
    # Webhooks carry their organisation's bare uuid in base64, as in the
    # fixture envelope.
    org = base64.urlsafe_b64decode(hook.orgId + "=" * (-len(hook.orgId) % 4)).decode()
    expect("webhooks.create", UUID.fullmatch(org) is not None, f"orgId {hook.orgId!r} is {org!r}")
    ok("webhooks.create")

    # A filter without a value would never match: refused, as unknown keys are.
    for bad in ("roomId", "roomId=", "colour=red"):
        expect_api_error(
            "webhooks.create filter",
            400,
            lambda bad=bad: bot.webhooks.create(
                name="x", targetUrl=TARGET_URL, resource="messages", event="created", filter=bad
            ),
        )
    ok("webhooks.create filter")

    command = user.messages.create(
        roomId=ROOM_ID, markdown=f"<@personEmail:{me.emails[0]}|{BOT_NAME}> scale web to 3"
    )
    expect("messages.create mention", command.mentionedPeople == [me.id], f"mentionedPeople {command.mentionedPeople!r}")
    expect("messages.create mention", command.text == f"{BOT_NAME} scale web to 3", f"text {command.text!r}")
    expect("messages.create mention", command.roomType == "group", f"roomType {command.roomType!r}")
    expect("messages.create mention", command.personEmail == USER_EMAIL, f"personEmail {command.personEmail!r}")
    expect("messages.create mention", isinstance(command.created, datetime.datetime), f"created {command.created!r}")
    print(f"MESSAGE_ID={command.id}", flush=True)
    ok("messages.create mention")

    reply = user.messages.create(roomId=ROOM_ID, parentId=command.id, text="and then web-2")
    expect("messages.create parentId", reply.parentId == command.id, f"parentId {reply.parentId!r}")
    expect("messages.create parentId", reply.text == "and then web-2", f"text {reply.text!r}")
    ok("messages.create parentId")

    fetched = bot.messages.get(command.id)
    expect("messages.get", fetched.id == command.id and fetched.text == command.text, f"got {fetched!r}")
    expect("messages.get", fetched.mentionedPeople == [me.id], f"mentionedPeople {fetched.mentionedPeople!r}")
    ok("messages.get")

    # A bot lists group-room messages only with mentionedPeople=me, and sees
    # only those mentioning it.
    seen = [m.id for m in bot.messages.list(roomId=ROOM_ID, mentionedPeople="me")]
    expect("messages.list", command.id in seen and reply.id not in seen, f"bot saw {seen!r}")
    expect_api_error("messages.list", 403, lambda: list(bot.messages.list(roomId=ROOM_ID)))
    # Enough messages for several pages of two, walked through Link headers.
    posted = [command.id, reply.id]
    for n in range(3):
        posted.append(user.messages.create(roomId=ROOM_ID, text=f"status web-{n}").id)
    listed = [m.id for m in user.messages.list(roomId=ROOM_ID, max=2)]
    expect("messages.list", listed == list(reversed(posted)), f"listed {listed!r}, posted {posted!r}")
    threaded = [m.id for m in user.messages.list(roomId=ROOM_ID, parentId=command.id)]
    expect("messages.list", threaded == [reply.id], f"thread {threaded!r}")
    ok("messages.list")

    other = user.rooms.create(title="elsewhere")
    elsewhere = user.messages.create(roomId=other.id, text="status web")
    expect_api_error(
        "messages.list beforeMessage", 400, lambda: list(user.messages.list(roomId=ROOM_ID, beforeMessage=elsewhere.id))
    )
    user.rooms.delete(other.id)
    ok("messages.list beforeMessage")

    # Teams are not served: a team's rooms are not answered with every room.
    expect_api_error("rooms.list teamId", 404, lambda: list(user.rooms.list(teamId=ROOM_ID)))
    expect_api_error("rooms.create teamId", 404, lambda: user.rooms.create(title="t", teamId=ROOM_ID))
    ok("rooms teamId")

    edited = user.messages.update(messageId=posted[2], roomId=ROOM_ID, markdown="**status** web-0 please")
    expect("messages.update", edited.text == "status web-0 please", f"text {edited.text!r}")
    expect("messages.update", isinstance(edited.updated, datetime.datetime), f"updated {edited.updated!r}")
    expect_api_error("messages.update", 403, lambda: bot.messages.update(messageId=command.id, roomId=ROOM_ID, text="x"))
    ok("messages.update")

    card = {
        "type": "AdaptiveCard",
        "version": "1.3",
        "body": [{"type": "Input.Text", "id": "deployment", "value": "web"}],
        "actions": [{"type": "Action.Submit", "title": "Restart", "data": {"verb": "restart"}}],
    }
    card_message = bot.messages.create(
        roomId=ROOM_ID,
        text="Restart web?",
        attachments=[{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    )
    expect("attachment_actions", card_message.attachments[0]["content"] == card, "the card is kept")
    pressed = user.attachment_actions.create(
        type="submit", messageId=card_message.id, inputs={"deployment": "web", "verb": "restart"}
    )
    action = bot.attachment_actions.get(pressed.id)
    expect("attachment_actions", action.inputs == {"deployment": "web", "verb": "restart"}, f"inputs {action.inputs!r}")
    expect("attachment_actions", action.messageId == card_message.id and action.personId == alice.id, f"{action!r}")
    expect("attachment_actions", isinstance(action.created, datetime.datetime), f"created {action.created!r}")
    ok("attachment_actions")

    user.messages.delete(reply.id)
    expect_api_error("messages.delete", 404, lambda: user.messages.get(reply.id))
    expect_api_error("messages.delete", 403, lambda: bot.messages.delete(command.id))
    ok("messages.delete")

    expect_api_error("messages.create limit", 400, lambda: user.messages.create(roomId=ROOM_ID, text="x" * 7440))
    longest = user.messages.create(roomId=ROOM_ID, text="x" * 7439)
    expect("messages.create limit", len(longest.text) == 7439, "7439 bytes accepted")
    ok("messages.create limit")

    # Wait (bounded) until the sandbox has sent the delivery for the command,
    # so removing the webhook below cannot race it.
    deadline = time.monotonic() + 10
    while True:
        done = [
            d for d in requests.get(f"{CONTROL}/deliveries", timeout=5).json()
            if d["webhookId"] == hook.id and d["state"] != "pending"
        ]
        if done:
            break
        expect("webhooks.create", time.monotonic() < deadline, "no delivery finished within 10 s")
        time.sleep(0.02)

    expect("webhooks.list", hook.id in [h.id for h in bot.webhooks.list()], "created webhook listed")
    expect("webhooks.list", hook.id not in [h.id for h in user.webhooks.list()], "only the owner lists it")
    ok("webhooks.list")

    updated = bot.webhooks.update(hook.id, name="chatops-renamed", targetUrl=TARGET_URL, status="active")
    expect("webhooks.update", updated.name == "chatops-renamed", f"name {updated.name!r}")
    expect("webhooks.update", bot.webhooks.get(hook.id).name == "chatops-renamed", "name kept")
    ok("webhooks.update")

    bot.webhooks.delete(hook.id)
    expect("webhooks.delete", hook.id not in [h.id for h in bot.webhooks.list()], "deleted webhook listed")
    expect_api_error("webhooks.delete", 404, lambda: bot.webhooks.get(hook.id))
    ok("webhooks.delete")

    stranger = WebexAPI(access_token="not-a-valid-token", base_url=API)
    e = expect_api_error("401", 401, stranger.people.me)
    expect("401", e.message == UNAUTHORIZED, f"message {e.message!r}")
    expect("401", bool(e.tracking_id), "a tracking id in the body")
    expect("401", e.response.headers.get("trackingid") == e.tracking_id, "the same tracking id in the header")
    expect("401", e.details["errors"] == [{"description": UNAUTHORIZED}], f"errors {e.details!r}")
    ok("401")

    fault = {"method": "GET", "path": "/v1/people/me", "times": 1, "fault": "rateLimit", "retryAfter": 1}
    requests.post(f"{CONTROL}/faults", json=fault, timeout=5).raise_for_status()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.monotonic()
        again = bot.people.me()
        waited = time.monotonic() - started
    expect("429", again.id == me.id, "people.me answered after the wait")
    expect("429", waited >= 1.0, f"waited only {waited:.3f}s")
    limited = [w for w in caught if issubclass(w.category, RateLimitWarning)]
    expect("429", len(limited) == 1, f"warnings {[str(w.message) for w in caught]!r}")
    print(f"429 waited {waited:.2f}s", flush=True)
    ok("429")

    print("ALL OK", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Mismatch as e:
        print(f"FAIL {e}", flush=True)
        sys.exit(1)
    except Exception:
        print("FAIL unexpected error:", flush=True)
        traceback.print_exc(file=sys.stdout)
        sys.exit(1)
