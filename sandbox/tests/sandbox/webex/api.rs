//! The API over plain HTTP: authentication and error shapes, message rules,
//! mentions, injected faults, and the request records.

use std::time::{Duration, Instant};

use chatops_sandbox::webex::{Fault, WebexSandbox};
use serde_json::{Value, json};

use super::*;

const UNAUTHORIZED: &str =
    "The request requires a valid access token set in the Authorization request header.";

fn tracking_header(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("trackingid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no trackingid header on {}", response.url()))
        .to_owned()
}

/// Checks Webex's error body and that it names the header's tracking id.
async fn assert_webex_error(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "{}", response.url());
    let tracking = tracking_header(&response);
    let body: Value = response.json().await.expect("a JSON error body");
    let message = body["message"].as_str().expect("a message");
    assert!(!message.is_empty());
    assert_eq!(body["errors"], json!([{"description": message}]));
    assert_eq!(body["trackingId"], json!(tracking));
    body
}

/// The URL of the `Link: <…>; rel="next"` header, if there is one.
fn next_link(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    let (url, rel) = link.strip_prefix('<')?.split_once('>')?;
    rel.contains("rel=\"next\"").then(|| url.to_owned())
}

async fn post_message(wx: &WebexSandbox, token: &str, body: Value) -> reqwest::Response {
    http()
        .post(format!("{}/messages", wx.url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("POST /v1/messages")
}

#[tokio::test]
async fn missing_or_unknown_tokens_get_401_in_webex_shape_and_every_answer_has_a_tracking_id() {
    let wx = sandbox().await;
    let me = format!("{}/people/me", wx.url());
    let missing = http().get(&me).send().await.expect("GET");
    let body = assert_webex_error(missing, 401).await;
    assert_eq!(body["message"], UNAUTHORIZED);
    let unknown = http()
        .get(&me)
        .bearer_auth("nope")
        .send()
        .await
        .expect("GET");
    assert_eq!(
        assert_webex_error(unknown, 401).await["message"],
        UNAUTHORIZED
    );
    let basic = http()
        .get(&me)
        .header("authorization", format!("Basic {BOT_TOKEN}"))
        .send()
        .await
        .expect("GET");
    assert_webex_error(basic, 401).await;

    let fine = http()
        .get(&me)
        .bearer_auth(BOT_TOKEN)
        .send()
        .await
        .expect("GET");
    assert_eq!(fine.status(), 200);
    let first = tracking_header(&fine);
    let me: Value = fine.json().await.expect("a person");
    assert_eq!(me["type"], "bot");
    assert_eq!(me["emails"], json!(["kube@webex.bot"]));
    let again = http()
        .get(format!("{}/people/me", wx.url()))
        .bearer_auth(BOT_TOKEN)
        .send()
        .await
        .expect("GET");
    assert_ne!(
        tracking_header(&again),
        first,
        "one tracking id per request"
    );

    let nowhere = http()
        .get(format!("{}/teleporters", wx.url()))
        .bearer_auth(BOT_TOKEN)
        .send()
        .await
        .expect("GET");
    assert_webex_error(nowhere, 404).await;
    let bad_json = http()
        .post(format!("{}/messages", wx.url()))
        .bearer_auth(ALICE_TOKEN)
        .body("{not json")
        .send()
        .await
        .expect("POST");
    assert_webex_error(bad_json, 400).await;
    let control = http()
        .get(format!("{}/faults", wx.control_url()))
        .send()
        .await
        .expect("GET");
    assert_eq!(control.status(), 200);
    tracking_header(&control);
}

#[tokio::test]
async fn text_and_markdown_are_limited_to_7439_bytes() {
    let wx = sandbox().await;
    let room = wx.default_room_id();
    let at_limit = post_message(
        &wx,
        ALICE_TOKEN,
        json!({"roomId": room, "text": "x".repeat(7439)}),
    )
    .await;
    assert_eq!(at_limit.status(), 200);
    let over = post_message(
        &wx,
        ALICE_TOKEN,
        json!({"roomId": room, "text": "x".repeat(7440)}),
    )
    .await;
    assert_webex_error(over, 400).await;
    let markdown_over = post_message(
        &wx,
        ALICE_TOKEN,
        json!({"roomId": room, "markdown": "x".repeat(7440)}),
    )
    .await;
    assert_webex_error(markdown_over, 400).await;
    // Bytes, not characters: 3720 × "é" is 7440 bytes.
    let multibyte = post_message(
        &wx,
        ALICE_TOKEN,
        json!({"roomId": room, "text": "é".repeat(3720)}),
    )
    .await;
    let body = assert_webex_error(multibyte, 400).await;
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("7439")),
        "{body}"
    );
    assert_eq!(
        wx.messages_in(room).len(),
        1,
        "only the message at the limit was posted"
    );
}

#[tokio::test]
async fn markdown_mentions_become_mentioned_people_and_show_the_first_name_in_text() {
    let wx = WebexSandbox::builder()
        .bot("Kube Ops", BOT_TOKEN)
        .user(ALICE, ALICE_TOKEN)
        .user(BOB, BOB_TOKEN)
        .start()
        .await
        .expect("the sandbox starts");
    let bot = wx.bot().clone();
    assert_eq!(bot.first_name, "Kube");
    assert_eq!(bot.email(), "kube-ops@webex.bot");
    let bob = wx.person(BOB).expect("Bob");
    let room = wx.default_room_id();

    let response = post_message(
        &wx,
        ALICE_TOKEN,
        json!({"roomId": room, "markdown": format!("<@personEmail:{}> scale web to 3", bot.email())}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let message: Value = response.json().await.expect("a message");
    assert_eq!(message["text"], "Kube scale web to 3");
    assert_eq!(message["mentionedPeople"], json!([bot.id]));
    assert!(
        message["html"]
            .as_str()
            .is_some_and(|h| h.contains("<spark-mention")),
        "{message}"
    );

    let both: Value = post_message(
        &wx,
        ALICE_TOKEN,
        json!({"roomId": room, "markdown": format!(
            "<@personEmail:bob@example.com|Bob> ask <@personId:{}|Kube> about **web**", bot.id)}),
    )
    .await
    .json()
    .await
    .expect("a message");
    assert_eq!(both["text"], "Bob ask Kube about web");
    assert_eq!(both["mentionedPeople"], json!([bob.id, bot.id]));

    // The bot lists exactly the messages that mention it.
    let plain = post_message(
        &wx,
        ALICE_TOKEN,
        json!({"roomId": room, "text": "<@personId:x|y> is not markdown"}),
    )
    .await;
    let plain: Value = plain.json().await.expect("a message");
    assert!(plain.get("mentionedPeople").is_none(), "{plain}");
    let listed: Value = http()
        .get(format!("{}/messages", wx.url()))
        .query(&[("roomId", room), ("mentionedPeople", "me")])
        .bearer_auth(BOT_TOKEN)
        .send()
        .await
        .expect("GET /v1/messages")
        .json()
        .await
        .expect("a list");
    let ids: Vec<&Value> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| &m["id"])
        .collect();
    assert_eq!(
        ids,
        [&both["id"], &message["id"]],
        "newest first, mentions only"
    );
    let unfiltered = http()
        .get(format!("{}/messages", wx.url()))
        .query(&[("roomId", room)])
        .bearer_auth(BOT_TOKEN)
        .send()
        .await
        .expect("GET /v1/messages");
    assert_webex_error(unfiltered, 403).await;
}

#[tokio::test]
async fn threads_are_one_level_deep_and_stay_in_their_room() {
    let wx = sandbox().await;
    let room = wx.default_room_id();
    let parent = wx
        .post_as(ALICE, room, "deploy nginx:1.27 to web")
        .expect("posted");
    let reply = wx.reply_as(BOB, &parent.id, "done").expect("replied");
    assert_eq!(reply.parent_id.as_deref(), Some(parent.id.as_str()));
    let nested = post_message(
        &wx,
        ALICE_TOKEN,
        json!({"roomId": room, "parentId": reply.id, "text": "x"}),
    )
    .await;
    assert_webex_error(nested, 400).await;
    let other: Value = http()
        .post(format!("{}/rooms", wx.url()))
        .bearer_auth(ALICE_TOKEN)
        .json(&json!({"title": "elsewhere"}))
        .send()
        .await
        .expect("POST /v1/rooms")
        .json()
        .await
        .expect("a room");
    let astray = post_message(
        &wx,
        ALICE_TOKEN,
        json!({"roomId": other["id"], "parentId": parent.id, "text": "x"}),
    )
    .await;
    assert_webex_error(astray, 400).await;
    // Bob is not in Alice's new room: to him it does not exist.
    let hidden = post_message(&wx, BOB_TOKEN, json!({"roomId": other["id"], "text": "hi"})).await;
    assert_webex_error(hidden, 404).await;
    assert_eq!(wx.thread(&parent.id), [reply]);
}

#[tokio::test]
async fn injected_faults_hit_only_the_next_n_matching_requests() {
    let wx = sandbox().await;
    let me = format!("{}/people/me", wx.url());
    let get_me = || http().get(&me).bearer_auth(BOT_TOKEN).send();

    let fault = json!({"method": "GET", "path": "/v1/people/me", "times": 2, "fault": "status", "status": 503});
    let added = http()
        .post(format!("{}/faults", wx.control_url()))
        .json(&fault)
        .send()
        .await
        .expect("POST /_sandbox/faults");
    assert_eq!(added.status(), 200);
    let other = http()
        .get(format!("{}/rooms", wx.url()))
        .bearer_auth(BOT_TOKEN)
        .send()
        .await
        .expect("GET");
    assert_eq!(other.status(), 200, "other paths are untouched");
    assert_webex_error(get_me().await.expect("GET"), 503).await;
    assert_webex_error(get_me().await.expect("GET"), 503).await;
    assert_eq!(get_me().await.expect("GET").status(), 200);

    wx.inject(Fault::rate_limit(
        "GET",
        "/v1/people/*",
        Duration::from_secs(7),
    ));
    let limited = get_me().await.expect("GET");
    assert_eq!(
        limited
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );
    assert_webex_error(limited, 429).await;
    // Faults come before authentication, as at a real rate limiter.
    wx.inject(Fault::rate_limit(
        "*",
        "/v1/people/me",
        Duration::from_secs(1),
    ));
    assert_eq!(http().get(&me).send().await.expect("GET").status(), 429);

    wx.inject(Fault::latency(
        "GET",
        "/v1/people/me",
        Duration::from_millis(300),
    ));
    let started = Instant::now();
    assert_eq!(get_me().await.expect("GET").status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );

    let faults: Value = http()
        .get(format!("{}/faults", wx.control_url()))
        .send()
        .await
        .expect("GET /_sandbox/faults")
        .json()
        .await
        .expect("a list");
    assert_eq!(faults, json!([]), "all used up");

    let log = wx.requests();
    let statuses: Vec<(u16, Option<&str>)> = log
        .iter()
        .filter(|r| r.path == "/v1/people/me")
        .map(|r| (r.status, r.fault.as_deref()))
        .collect();
    assert_eq!(
        statuses,
        [
            (503, Some("status 503")),
            (503, Some("status 503")),
            (200, None),
            (429, Some("rateLimit retryAfter=7")),
            (429, Some("rateLimit retryAfter=1")),
            (200, Some("latency 300ms")),
        ]
    );
}

/// The sandbox's records of API requests that match `query`.
async fn recorded(wx: &WebexSandbox, query: &[(&str, &str)]) -> Vec<Value> {
    http()
        .get(format!("{}/requests", wx.control_url()))
        .query(query)
        .send()
        .await
        .expect("GET /_sandbox/requests")
        .json()
        .await
        .expect("a list")
}

#[tokio::test]
async fn every_request_is_recorded_with_its_caller_but_never_a_token() {
    let wx = sandbox().await;
    let room = wx.default_room_id();
    post_message(
        &wx,
        BOT_TOKEN,
        json!({"roomId": room, "markdown": "first reply"}),
    )
    .await;
    post_message(
        &wx,
        BOT_TOKEN,
        json!({"roomId": room, "markdown": "second reply"}),
    )
    .await;
    post_message(&wx, ALICE_TOKEN, json!({"roomId": room, "text": "thanks"})).await;
    http()
        .get(format!("{}/people/me", wx.url()))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("GET");

    let replies = recorded(
        &wx,
        &[
            ("method", "POST"),
            ("path", "/v1/messages"),
            ("actor", "kube@webex.bot"),
        ],
    )
    .await;
    let texts: Vec<&Value> = replies.iter().map(|r| &r["body"]["markdown"]).collect();
    assert_eq!(texts, [&json!("first reply"), &json!("second reply")]);
    assert!(
        replies
            .iter()
            .all(|r| r["status"] == 200 && r["trackingId"].as_str().is_some_and(|t| !t.is_empty()))
    );

    // A poller reads only what came after the last seq it saw.
    let first_seq = replies[0]["seq"].as_u64().expect("a seq");
    let newer = recorded(
        &wx,
        &[
            ("actor", "kube@webex.bot"),
            ("after", &first_seq.to_string()),
        ],
    )
    .await;
    let texts: Vec<&Value> = newer.iter().map(|r| &r["body"]["markdown"]).collect();
    assert_eq!(texts, [&json!("second reply")]);
    let bad_after = http()
        .get(format!("{}/requests", wx.control_url()))
        .query(&[("after", "yesterday")])
        .send()
        .await
        .expect("GET ?after=yesterday");
    assert_eq!(bad_after.status(), 400);

    let all = http()
        .get(format!("{}/requests", wx.control_url()))
        .send()
        .await
        .expect("GET");
    let text = all.text().await.expect("a body");
    assert!(
        !text.contains("TOPSECRET"),
        "a token reached the records: {text}"
    );
    let log = wx.requests();
    assert_eq!(log.len(), 4);
    assert_eq!((log[3].status, log[3].actor.as_deref()), (401, None));

    let cleared = http()
        .delete(format!("{}/requests", wx.control_url()))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(cleared.status(), 204);
    assert!(wx.requests().is_empty());
}

#[tokio::test]
async fn rooms_and_their_messages_are_visible_to_members_only() {
    let wx = sandbox().await;
    let as_user =
        |token: &'static str| move |request: reqwest::RequestBuilder| request.bearer_auth(token);
    let (alice, bob) = (as_user(ALICE_TOKEN), as_user(BOB_TOKEN));

    let created = alice(http().post(format!("{}/rooms", wx.url())))
        .json(&json!({"title": "ops"}))
        .send()
        .await
        .expect("POST /v1/rooms");
    assert_eq!(created.status(), 200);
    let room: Value = created.json().await.expect("a room");
    let room_url = format!("{}/rooms/{}", wx.url(), room["id"].as_str().expect("an id"));
    assert_eq!(room["type"], "group");
    assert_webex_error(bob(http().get(&room_url)).send().await.expect("GET"), 404).await;

    let add = |body: Value| {
        alice(http().post(format!("{}/memberships", wx.url())))
            .json(&body)
            .send()
    };
    let added = add(json!({"roomId": room["id"], "personEmail": BOB}))
        .await
        .expect("POST");
    assert_eq!(added.status(), 200);
    let membership: Value = added.json().await.expect("a membership");
    assert_eq!(membership["personEmail"], BOB);
    assert_eq!(membership["personDisplayName"], "Bob");
    assert_webex_error(
        add(json!({"roomId": room["id"], "personEmail": BOB}))
            .await
            .expect("POST"),
        409,
    )
    .await;
    assert_webex_error(
        add(json!({"roomId": room["id"], "personEmail": "eve@example.com"}))
            .await
            .expect("POST"),
        404,
    )
    .await;
    assert_eq!(
        bob(http().get(&room_url))
            .send()
            .await
            .expect("GET")
            .status(),
        200
    );

    let listed: Value = bob(http().get(format!("{}/memberships", wx.url())))
        .query(&[("roomId", room["id"].as_str().expect("an id"))])
        .send()
        .await
        .expect("GET /v1/memberships")
        .json()
        .await
        .expect("a list");
    let emails: Vec<&Value> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| &m["personEmail"])
        .collect();
    assert_eq!(emails, [&json!(ALICE), &json!(BOB)]);

    let message = wx
        .post_as(ALICE, room["id"].as_str().expect("an id"), "hello Bob")
        .expect("posted");
    let read = |token: &'static str| {
        http()
            .get(format!("{}/messages/{}", wx.url(), message.id))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(read(BOB_TOKEN).await.expect("GET").status(), 200);
    assert_webex_error(read(BOT_TOKEN).await.expect("GET"), 404).await;

    let removed = alice(http().delete(format!(
        "{}/memberships/{}",
        wx.url(),
        membership["id"].as_str().expect("an id")
    )))
    .send()
    .await
    .expect("DELETE");
    assert_eq!(removed.status(), 204);
    assert_webex_error(bob(http().get(&room_url)).send().await.expect("GET"), 404).await;
    assert_webex_error(read(BOB_TOKEN).await.expect("GET"), 404).await;
}

#[tokio::test]
async fn deleting_a_room_leaves_other_rooms_their_messages_paging_and_deliveries() {
    let wx = sandbox().await;
    let mut receiver = Receiver::start().await;
    bot_webhook(&wx, &receiver.url, None).await;
    let room = wx.default_room_id().to_owned();
    let doomed: Value = http()
        .post(format!("{}/rooms", wx.url()))
        .bearer_auth(ALICE_TOKEN)
        .json(&json!({"title": "doomed"}))
        .send()
        .await
        .expect("POST /v1/rooms")
        .json()
        .await
        .expect("a room");
    let doomed_id = doomed["id"].as_str().expect("an id").to_owned();

    // Interleaved, so removing the doomed room's messages moves the others
    // in the store.
    let mut kept = Vec::new();
    let mut gone = Vec::new();
    for n in 0..5 {
        gone.push(
            wx.post_as(ALICE, &doomed_id, &format!("doomed {n}"))
                .expect("posted"),
        );
        kept.push(
            wx.post_as(ALICE, &room, &format!("kept {n}"))
                .expect("posted"),
        );
    }
    let list = |url: String| http().get(url).bearer_auth(ALICE_TOKEN).send();
    let first = list(format!("{}/messages?roomId={room}&max=2", wx.url()))
        .await
        .expect("GET /v1/messages");
    let mut next = next_link(&first);
    let page: Value = first.json().await.expect("a page");
    let mut listed: Vec<String> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect();

    let deleted = http()
        .delete(format!("{}/rooms/{doomed_id}", wx.url()))
        .bearer_auth(ALICE_TOKEN)
        .send()
        .await
        .expect("DELETE /v1/rooms/{id}");
    assert_eq!(deleted.status(), 204);

    while let Some(url) = next.take() {
        let response = list(url).await.expect("the next page");
        next = next_link(&response);
        let page: Value = response.json().await.expect("a page");
        listed.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter_map(|m| m["id"].as_str().map(str::to_owned)),
        );
    }
    let newest_first: Vec<String> = kept.iter().rev().map(|m| m.id.clone()).collect();
    assert_eq!(listed, newest_first, "paging went on past the deletion");

    for message in &kept {
        let fetched: Value = list(format!("{}/messages/{}", wx.url(), message.id))
            .await
            .expect("GET /v1/messages/{id}")
            .json()
            .await
            .expect("a message");
        assert_eq!(
            fetched["id"],
            json!(message.id),
            "the store's index is intact"
        );
        assert_eq!(fetched["text"], json!(message.text));
    }
    for message in &gone {
        let response = list(format!("{}/messages/{}", wx.url(), message.id))
            .await
            .expect("GET /v1/messages/{id}");
        assert_webex_error(response, 404).await;
    }
    assert!(wx.messages_in(&doomed_id).is_empty());

    let command = wx
        .post_as(ALICE, &room, &format!("{} status web", wx.bot().mention()))
        .expect("posted");
    assert_eq!(
        receiver.next().await.json()["data"]["id"],
        json!(command.id)
    );
}

#[tokio::test]
async fn messages_direct_is_a_route_of_its_own_not_a_message_id() {
    let wx = sandbox().await;
    let direct = |query: &'static [(&'static str, &'static str)]| {
        http()
            .get(format!("{}/messages/direct", wx.url()))
            .query(query)
            .bearer_auth(ALICE_TOKEN)
            .send()
    };
    let body = assert_webex_error(direct(&[]).await.expect("GET"), 400).await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("personId")),
        "{body}"
    );
    let none: Value = direct(&[("personEmail", BOB)])
        .await
        .expect("GET")
        .json()
        .await
        .expect("a list");
    assert_eq!(none, json!({"items": []}), "no 1:1 room yet");
    assert_webex_error(
        direct(&[("personEmail", "eve@example.com")])
            .await
            .expect("GET"),
        404,
    )
    .await;
}
