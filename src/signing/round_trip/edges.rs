//! What the vectors leave out: each preset's malformed shapes and incomplete handshakes,
//! on requests `send` would make, changed the way a sender (or an attacker) might.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::{check, ed25519, json_body, key_for, route, sign, Sent, NOW};
use crate::providers::{verify, Request, VerifyError};
use crate::route::Provider;
use crate::signing::Key;

/// What the vectors leave out: each preset's own edge, checked on a request `send`
/// would make, changed the way a sender (or an attacker) might.
#[test]
fn each_preset_refuses_its_own_malformed_shapes() {
    let body = json_body("edge");
    let remove = |sent: &Sent, name: &str| {
        let mut headers = sent.headers.clone();
        headers.remove(name);
        Sent {
            headers,
            body: sent.body.clone(),
            query: sent.query.clone(),
        }
    };
    let set = |sent: &Sent, name: &'static str, value: &str| {
        let mut headers = sent.headers.clone();
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).expect("value"),
        );
        Sent {
            headers,
            body: sent.body.clone(),
            query: sent.query.clone(),
        }
    };

    // Stripe: no `t`, or no `v1` entry.
    let stripe = Provider::from_name("stripe").expect("stripe");
    let stripe = route(stripe, &key_for(stripe));
    let sent = sign(&stripe, None, &body);
    let header = sent.headers["stripe-signature"]
        .to_str()
        .expect("ascii")
        .to_string();
    let (t, v1) = header.split_once(',').expect("t,v1");
    assert_eq!(
        check(&stripe, &set(&sent, "stripe-signature", v1)),
        Err(VerifyError::InvalidTimestamp)
    );
    assert_eq!(
        check(&stripe, &set(&sent, "stripe-signature", t)),
        Err(VerifyError::InvalidSignature)
    );
    assert_eq!(
        check(
            &stripe,
            &set(&sent, "stripe-signature", &format!("{t},{t},{v1}"))
        ),
        Err(VerifyError::InvalidTimestamp),
        "two timestamps"
    );

    // Shopify: the prefixed header wins; the bare one serves only when it is absent.
    let shopify = route(Provider::Shopify, &key_for(Provider::Shopify));
    let sent = sign(&shopify, None, &body);
    let tag = sent.headers["x-shopify-hmac-sha256"]
        .to_str()
        .expect("ascii")
        .to_string();
    let bare = set(
        &remove(&sent, "x-shopify-hmac-sha256"),
        "shopify-hmac-sha256",
        &tag,
    );
    assert_eq!(check(&shopify, &bare), Ok(()));
    let both = set(&sent, "shopify-hmac-sha256", "AAAA");
    assert_eq!(check(&shopify, &both), Ok(()));
    let wrong_prefixed = set(&bare, "x-shopify-hmac-sha256", "AAAA");
    assert_eq!(
        check(&shopify, &wrong_prefixed),
        Err(VerifyError::InvalidSignature)
    );

    // GitHub: only the SHA-1 header is not enough.
    let github = route(Provider::Github, &key_for(Provider::Github));
    let sent = sign(&github, None, &body);
    let sha1_only = set(
        &remove(&sent, "x-hub-signature-256"),
        "x-hub-signature",
        "sha1=00",
    );
    assert_eq!(
        check(&github, &sha1_only),
        Err(VerifyError::MissingSignature)
    );

    // Linear: `webhookTimestamp` missing, a string, or in seconds.
    let linear = route(Provider::Linear, &key_for(Provider::Linear));
    for (body, expected) in [
        (
            br#"{"type":"Issue"}"#.to_vec(),
            VerifyError::InvalidTimestamp,
        ),
        (
            format!(r#"{{"webhookTimestamp":"{}"}}"#, NOW * 1000).into_bytes(),
            VerifyError::InvalidTimestamp,
        ),
        (
            format!(r#"{{"webhookTimestamp":{NOW}}}"#).into_bytes(),
            VerifyError::TimestampTooOld,
        ),
    ] {
        assert_eq!(check(&linear, &sign(&linear, None, &body)), Err(expected));
    }

    // Twilio: a body that is neither a form nor hashed into the URL is not signed at all.
    let twilio = route(Provider::Twilio, &key_for(Provider::Twilio));
    let mut sent = sign(&twilio, None, br#"{"a":1}"#);
    sent.query = None;
    assert_eq!(check(&twilio, &sent), Err(VerifyError::InvalidSignature));

    // Mailgun: no signature object, or one that is not an object.
    let mailgun = route(Provider::Mailgun, &key_for(Provider::Mailgun));
    for body in [
        &br#"{"event-data":{}}"#[..],
        br#"{"signature":"x"}"#,
        b"not json",
    ] {
        let sent = Sent {
            headers: HeaderMap::new(),
            body: body.to_vec(),
            query: None,
        };
        assert_eq!(check(&mailgun, &sent), Err(VerifyError::MissingSignature));
    }

    // Standard Webhooks: a v1a entry never verifies against a whsec_ key, nor v1 against
    // a whpk_ key.
    let key = ed25519();
    let sw = route(Provider::StandardWebhooks, &key);
    let sent = sign(&sw, Some(&key), &body);
    let v1a = sent.headers["webhook-signature"]
        .to_str()
        .expect("ascii")
        .to_string();
    let relabelled = set(&sent, "webhook-signature", &v1a.replacen("v1a,", "v1,", 1));
    assert_eq!(check(&sw, &relabelled), Err(VerifyError::InvalidSignature));
    // Svix's names serve only when no webhook-* header is there.
    let mut svix = HeaderMap::new();
    for (name, value) in &sent.headers {
        let renamed = name.as_str().replacen("webhook-", "svix-", 1);
        svix.insert(
            HeaderName::from_bytes(renamed.as_bytes()).expect("name"),
            value.clone(),
        );
    }
    let as_svix = Sent {
        headers: svix.clone(),
        body: sent.body.clone(),
        query: None,
    };
    assert_eq!(check(&sw, &as_svix), Ok(()));
    svix.insert("webhook-id", HeaderValue::from_static("msg_other"));
    let mixed = Sent {
        headers: svix,
        body: sent.body.clone(),
        query: None,
    };
    assert_eq!(check(&sw, &mixed), Err(VerifyError::MissingSignature));
}

#[test]
fn only_a_complete_handshake_is_answered_by_the_gateway() {
    use crate::providers::Normalized;
    let answer = |provider: Provider, private: Option<Key>, body: &[u8]| {
        let route = route(provider, private.as_ref().unwrap_or(&key_for(provider)));
        let sent = sign(&route, private.as_ref(), body);
        let body = Bytes::copy_from_slice(&sent.body);
        let request = Request {
            method: &http::Method::POST,
            headers: &sent.headers,
            query: None,
            body: &body,
            now: NOW,
            now_ms: NOW * 1000,
        };
        match verify(&route, &request)
            .expect("verified")
            .normalize(&route)
        {
            Ok(Normalized::Handshake(h)) => Some((h.status.as_u16(), h.body.as_value())),
            Ok(Normalized::Events(_)) => None,
            Err(e) => panic!("{e}"),
        }
    };
    let slack = br#"{"type":"url_verification","challenge":"c"}"#;
    assert_eq!(
        answer(Provider::Slack, None, slack),
        Some((200, Some(serde_json::json!({"challenge": "c"}))))
    );
    assert_eq!(
        answer(Provider::Slack, None, br#"{"type":"url_verification"}"#),
        None
    );
    assert_eq!(
        answer(
            Provider::Zoom,
            None,
            br#"{"event":"endpoint.url_validation"}"#
        ),
        None
    );
    let discord = |body: &[u8]| answer(Provider::Discord, Some(ed25519()), body);
    assert_eq!(
        discord(br#"{"type":1}"#),
        Some((200, Some(serde_json::json!({"type": 1}))))
    );
    assert_eq!(discord(br#"{"type":0}"#), Some((204, None)));
    assert_eq!(
        discord(br#"{"type":"1"}"#),
        None,
        "a string is not the PING"
    );
    assert_eq!(
        discord(br#"{"type":1,"event":{"type":"X"}}"#),
        None,
        "a webhook event"
    );
}
