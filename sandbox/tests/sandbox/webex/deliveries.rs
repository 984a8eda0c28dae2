//! Webhook deliveries: signed over the exact bytes sent, only for what the
//! webhook's owner may see, in order, never retried, and disabled after 100
//! failures within five minutes.

use chatops_sandbox::webex::{DeliveryState, DriverError, MessageDraft};
use serde_json::json;

use super::*;

#[tokio::test]
async fn a_mention_of_the_bot_is_delivered_signed_over_the_raw_body() {
    let wx = sandbox().await;
    let mut receiver = Receiver::start().await;
    let hook = bot_webhook(&wx, &receiver.url, Some("mentionedPeople=me")).await;
    let room = wx.default_room_id().to_owned();

    let ignored = wx.post_as(ALICE, &room, "coffee anyone?").expect("posted");
    let command = wx
        .post_as(
            ALICE,
            &room,
            &format!("{} scale web to 3", wx.bot().mention()),
        )
        .expect("posted");

    // Deliveries of one webhook come in order, so the first one being the
    // command proves the message without a mention produced none.
    let delivery = receiver.next().await;
    assert_eq!(delivery.signature(), hmac_sha1_hex(SECRET, &delivery.body));
    assert!(
        delivery.signature().len() == 40
            && delivery
                .signature()
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "lowercase hex: {}",
        delivery.signature()
    );
    assert_eq!(
        delivery
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let envelope = delivery.json();
    let alice = wx.person(ALICE).expect("Alice");
    assert_eq!(envelope["id"], hook["id"]);
    assert_eq!(envelope["name"], "chatops");
    assert_eq!(envelope["resource"], "messages");
    assert_eq!(envelope["event"], "created");
    assert_eq!(envelope["filter"], "mentionedPeople=me");
    assert_eq!(envelope["status"], "active");
    assert_eq!(envelope["actorId"], json!(alice.id));
    let data = &envelope["data"];
    assert_eq!(data["id"], json!(command.id));
    assert_eq!(data["roomId"], json!(room));
    assert_eq!(data["roomType"], "group");
    assert_eq!(data["personEmail"], ALICE);
    assert_eq!(data["mentionedPeople"], json!([wx.bot().id]));
    assert!(
        data.get("text").is_none(),
        "Webex sends no text in deliveries"
    );

    // The bot fetches the text, which starts with its first name.
    let message: serde_json::Value = http()
        .get(format!("{}/messages/{}", wx.url(), command.id))
        .bearer_auth(BOT_TOKEN)
        .send()
        .await
        .expect("GET the message")
        .json()
        .await
        .expect("a message");
    assert_eq!(message["text"], "kube scale web to 3");

    let recorded = wx
        .await_deliveries(1, LIMIT)
        .await
        .expect("the delivery finishes");
    assert_eq!(
        recorded.len(),
        1,
        "only the mention was delivered: {recorded:?}"
    );
    assert_eq!(recorded[0].state, DeliveryState::Delivered);
    assert_eq!(recorded[0].status, Some(200));
    assert_eq!(
        recorded[0].body.as_bytes(),
        &delivery.body[..],
        "the record is the bytes sent"
    );
    assert_eq!(recorded[0].signature.as_deref(), Some(delivery.signature()));
    assert!(
        recorded
            .iter()
            .all(|d| d.data_id().as_deref() != Some(ignored.id.as_str()))
    );
}

#[tokio::test]
async fn in_group_rooms_a_bot_hears_only_mentions_while_users_hear_everything() {
    let wx = sandbox().await;
    let mut bot_receiver = Receiver::start().await;
    let mut alice_receiver = Receiver::start().await;
    bot_webhook(&wx, &bot_receiver.url, None).await;
    register_webhook(
        &wx,
        ALICE_TOKEN,
        json!({"name": "alice", "targetUrl": alice_receiver.url, "resource": "messages", "event": "created"}),
    )
    .await;
    let room = wx.default_room_id().to_owned();

    let chat = wx.post_as(BOB, &room, "lunch?").expect("posted");
    let command = wx
        .post_as(BOB, &room, &format!("{} status web", wx.bot().mention()))
        .expect("posted");

    assert_eq!(
        bot_receiver.next().await.json()["data"]["id"],
        json!(command.id)
    );
    assert_eq!(
        alice_receiver.next().await.json()["data"]["id"],
        json!(chat.id)
    );
    assert_eq!(
        alice_receiver.next().await.json()["data"]["id"],
        json!(command.id)
    );
    wx.await_deliveries(3, LIMIT).await.expect("all finished");
    assert!(
        bot_receiver.drain().is_empty(),
        "the bot heard something else"
    );
    // No signature without a secret.
    assert_eq!(
        wx.deliveries()
            .iter()
            .filter(|d| d.signature.is_none())
            .count(),
        2
    );
}

#[tokio::test]
async fn direct_messages_reach_the_bot_without_a_mention() {
    let wx = sandbox().await;
    let mut receiver = Receiver::start().await;
    bot_webhook(&wx, &receiver.url, None).await;
    let direct = wx
        .send_as(
            ALICE,
            MessageDraft {
                to_person_email: Some(wx.bot().email().to_owned()),
                text: Some("status web".to_owned()),
                ..MessageDraft::default()
            },
        )
        .expect("posted");
    let delivery = receiver.next().await.json();
    assert_eq!(delivery["data"]["id"], json!(direct.id));
    assert_eq!(delivery["data"]["roomType"], "direct");
    assert_eq!(delivery["data"]["roomId"], json!(direct.room_id));
    assert_ne!(direct.room_id, wx.default_room_id());
}

#[tokio::test]
async fn a_hundred_failures_within_five_minutes_disable_the_webhook_until_it_is_set_active() {
    let wx = sandbox().await;
    let mut receiver = Receiver::start().await;
    receiver.answer(500);
    let hook = bot_webhook(&wx, &receiver.url, Some("mentionedPeople=me")).await;
    let hook_url = format!(
        "{}/webhooks/{}",
        wx.url(),
        hook["id"].as_str().expect("an id")
    );
    let status = async || {
        let hook: serde_json::Value = http()
            .get(&hook_url)
            .bearer_auth(BOT_TOKEN)
            .send()
            .await
            .expect("GET the webhook")
            .json()
            .await
            .expect("a webhook");
        hook["status"].as_str().unwrap_or_default().to_owned()
    };
    let room = wx.default_room_id().to_owned();
    let mention = |n: usize| format!("{} status web-{n}", wx.bot().mention());

    for n in 0..99 {
        wx.post_as(ALICE, &room, &mention(n)).expect("posted");
    }
    let done = wx.await_deliveries(99, LIMIT).await.expect("99 attempts");
    assert!(
        done.iter()
            .all(|d| d.state == DeliveryState::Failed && d.status == Some(500))
    );
    assert_eq!(status().await, "active", "99 failures are not enough");

    wx.post_as(ALICE, &room, &mention(99)).expect("posted");
    wx.await_deliveries(100, LIMIT)
        .await
        .expect("the 100th attempt");
    assert_eq!(status().await, "inactive");
    assert_eq!(
        receiver.drain().len(),
        100,
        "each delivery was tried once, none retried"
    );

    // Disabled: the next mention is not even queued.
    wx.post_as(ALICE, &room, &mention(100)).expect("posted");
    assert_eq!(wx.deliveries().len(), 100);

    receiver.answer(200);
    let reactivated = http()
        .put(&hook_url)
        .bearer_auth(BOT_TOKEN)
        .json(&json!({"name": "chatops", "targetUrl": receiver.url, "status": "active"}))
        .send()
        .await
        .expect("PUT the webhook");
    assert_eq!(reactivated.status(), 200);
    let again = wx.post_as(ALICE, &room, &mention(101)).expect("posted");
    assert_eq!(receiver.next().await.json()["data"]["id"], json!(again.id));
    let all = wx.await_deliveries(101, LIMIT).await.expect("delivered");
    assert_eq!(all.last().map(|d| d.state), Some(DeliveryState::Delivered));
    assert_eq!(status().await, "active");
}

#[tokio::test]
async fn pressing_a_card_button_delivers_an_action_whose_inputs_the_bot_reads() {
    let wx = sandbox().await;
    let mut receiver = Receiver::start().await;
    register_webhook(
        &wx,
        BOT_TOKEN,
        json!({"name": "cards", "targetUrl": receiver.url, "resource": "attachmentActions",
               "event": "created", "secret": SECRET}),
    )
    .await;
    let card = json!({
        "type": "AdaptiveCard", "version": "1.3",
        "body": [{"type": "Input.Number", "id": "replicas", "value": 3}],
        "actions": [{"type": "Action.Submit", "title": "Approve", "data": {"action": "approve"}}],
    });
    let posted: serde_json::Value = http()
        .post(format!("{}/messages", wx.url()))
        .bearer_auth(BOT_TOKEN)
        .json(&json!({
            "roomId": wx.default_room_id(),
            "markdown": "Scale web to 3?",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
        }))
        .send()
        .await
        .expect("POST a card")
        .json()
        .await
        .expect("a message");
    let card_id = posted["id"].as_str().expect("a message id");
    assert_eq!(posted["attachments"][0]["content"], card);

    let inputs = json!({"action": "approve", "replicas": "3"});
    let action = wx
        .press_card_button(BOB, card_id, inputs.clone())
        .expect("pressed");

    let delivery = receiver.next().await;
    assert_eq!(delivery.signature(), hmac_sha1_hex(SECRET, &delivery.body));
    let envelope = delivery.json();
    assert_eq!(envelope["resource"], "attachmentActions");
    assert_eq!(envelope["event"], "created");
    assert_eq!(envelope["data"]["id"], json!(action.id));
    assert_eq!(envelope["data"]["type"], "submit");
    assert_eq!(envelope["data"]["messageId"], card_id);
    assert_eq!(
        envelope["data"]["personId"],
        json!(wx.person(BOB).expect("Bob").id)
    );
    assert!(
        envelope["data"].get("inputs").is_none(),
        "inputs are fetched, not delivered"
    );

    let fetched: serde_json::Value = http()
        .get(format!("{}/attachment/actions/{}", wx.url(), action.id))
        .bearer_auth(BOT_TOKEN)
        .send()
        .await
        .expect("GET the action")
        .json()
        .await
        .expect("an action");
    assert_eq!(fetched["inputs"], inputs);
    assert_eq!(fetched["messageId"], card_id);

    let plain = wx
        .post_as(ALICE, wx.default_room_id(), "no card here")
        .expect("posted");
    assert!(matches!(
        wx.press_card_button(BOB, &plain.id, json!({})),
        Err(DriverError::Refused { status: 400, .. })
    ));
}

#[tokio::test]
async fn rooms_webhooks_hear_of_new_and_renamed_rooms_and_each_side_of_a_1_1_room_sees_the_other() {
    let wx = sandbox().await;
    let mut alices = Receiver::start().await;
    let mut bobs = Receiver::start().await;
    for (token, receiver) in [(ALICE_TOKEN, &alices), (BOB_TOKEN, &bobs)] {
        register_webhook(
            &wx,
            token,
            json!({"name": "rooms", "targetUrl": receiver.url, "resource": "rooms", "event": "all"}),
        )
        .await;
    }

    let direct = wx
        .send_as(
            BOB,
            MessageDraft {
                to_person_email: Some(ALICE.to_owned()),
                text: Some("got a minute?".to_owned()),
                ..MessageDraft::default()
            },
        )
        .expect("sent");
    for (receiver, other) in [(&mut alices, "Bob"), (&mut bobs, "Alice")] {
        let envelope = receiver.next().await.json();
        assert_eq!(
            (&envelope["resource"], &envelope["event"]),
            (&json!("rooms"), &json!("created"))
        );
        assert_eq!(envelope["data"]["id"], json!(direct.room_id));
        assert_eq!(envelope["data"]["type"], "direct");
        assert_eq!(envelope["data"]["title"], other, "{envelope}");
    }

    let created: serde_json::Value = http()
        .post(format!("{}/rooms", wx.url()))
        .bearer_auth(ALICE_TOKEN)
        .json(&json!({"title": "ops"}))
        .send()
        .await
        .expect("POST /v1/rooms")
        .json()
        .await
        .expect("a room");
    let room_url = format!(
        "{}/rooms/{}",
        wx.url(),
        created["id"].as_str().expect("an id")
    );
    assert_eq!(alices.next().await.json()["data"]["title"], "ops");
    let renamed = http()
        .put(&room_url)
        .bearer_auth(ALICE_TOKEN)
        .json(&json!({"title": "ops-2"}))
        .send()
        .await
        .expect("PUT /v1/rooms/{id}");
    assert_eq!(renamed.status(), 200);
    let envelope = alices.next().await.json();
    assert_eq!(envelope["event"], "updated");
    assert_eq!(envelope["data"]["title"], "ops-2");

    // Bob is in neither: his webhook heard only of the 1:1 room.
    assert_eq!(wx.deliveries().len(), 4, "queued as the events happened");
    wx.await_deliveries(4, LIMIT).await.expect("all sent");
    assert!(bobs.drain().is_empty());
}
