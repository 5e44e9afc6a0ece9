//! Relayed delivery: the edge worker cannot speak SMTP or the AWS APIs, so with
//! `email.backend = "relay"` it POSTs each rendered message, HMAC-signed and time-stamped, to
//! a `regstack serve` that has `relay_secret` set and sends it with its own backend. Here that
//! server delivers to the real SMTP server `scripts/test` runs, and the test follows the link
//! on the edge. The endpoint's refusals (unsigned, forged, stale, replayed) are checked against
//! `regstack serve` directly.

use regstack_conformance::mail::{sink, unquote, wait_for_mail};
use regstack_conformance::{find_links, json, msg, token_of, unique_email, Server, PASSWORD};
use regstack_core::relay::{self, Relayed};

const SECRET: &str = "relay-secret-for-the-conformance-suite-0123456789";

/// `regstack serve` with the relay endpoint on, sending with `backend_env`.
async fn relay_server(backend_env: &[(&str, &str)]) -> Server {
    let mut env = vec![("REGSTACK_RELAY_SECRET", SECRET)];
    env.extend_from_slice(backend_env);
    Server::start_native(&env).await
}

#[tokio::test]
async fn edge_relay_delivers_the_verification_email_through_regstack_serve_over_smtp() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::Edge) {
        return;
    }
    let (smtp_port, maildir) = sink();
    let smtp_port = smtp_port.to_string();
    let server = relay_server(&[
        ("REGSTACK_EMAIL__BACKEND", "smtp"),
        ("REGSTACK_EMAIL__SMTP_HOST", "127.0.0.1"),
        ("REGSTACK_EMAIL__SMTP_PORT", &smtp_port),
        ("REGSTACK_EMAIL__SMTP_STARTTLS", "false"),
    ])
    .await;
    let relay_url = server.url("/relay");
    let edge = Server::start(&[
        ("REGSTACK_EMAIL__BACKEND", "relay"),
        ("REGSTACK_RELAY_URL", &relay_url),
        ("REGSTACK_RELAY_SECRET", SECRET),
        ("REGSTACK_APP_NAME", "Relay Test"),
    ])
    .await;
    let email = unique_email("relayed");
    edge.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_status(201);
    let mail = unquote(&wait_for_mail(&maildir, &email).await);
    assert!(mail.contains("Relay Test"), "the edge rendered it: {mail}");
    let link = mail
        .lines()
        .flat_map(find_links)
        .find(|l| l.contains("/verify"))
        .unwrap_or_else(|| panic!("no verify link in {mail}"));
    let verified = edge.post_json("/verify", &json!({"token": token_of(&link)})).await;
    verified.assert_status(200);
    assert_eq!(verified.json["email"], email.as_str());
    assert!(
        !server.output_tail(200).contains("token="),
        "the relaying server does not log the link"
    );
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn post_relay(
    server: &Server,
    body: &[u8],
    timestamp: Option<i64>,
    nonce: Option<&str>,
    signature: Option<String>,
) -> regstack_conformance::Resp {
    let mut rb = server
        .client
        .post(server.url("/relay"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(t) = timestamp {
        rb = rb.header(relay::TIMESTAMP, t.to_string());
    }
    if let Some(n) = nonce {
        rb = rb.header(relay::NONCE, n);
    }
    if let Some(s) = signature {
        rb = rb.header(relay::SIGNATURE, s);
    }
    server.send(rb).await
}

#[tokio::test]
async fn relay_refuses_unsigned_forged_stale_and_replayed_requests() {
    let server = relay_server(&[]).await;
    let to = "+15555550177";
    let body = serde_json::to_vec(&Relayed::Sms {
        to: to.into(),
        body: "Relayed verification code: 424242.".into(),
    })
    .unwrap();
    let refused = |r: &regstack_conformance::Resp| {
        r.assert_detail(401, "Relay request refused.");
    };
    let nonce = format!("{:032x}", regstack_conformance::random_u64());
    let t = now();
    refused(&post_relay(&server, &body, None, None, None).await);
    refused(&post_relay(&server, &body, Some(t), Some(&nonce), Some("00".repeat(32))).await);
    let stale = t - relay::MAX_AGE_SECONDS - 5;
    refused(
        &post_relay(
            &server,
            &body,
            Some(stale),
            Some(&nonce),
            Some(relay::seal(SECRET, stale, &nonce, &body)),
        )
        .await,
    );
    let good = relay::seal(SECRET, t, &nonce, &body);
    post_relay(&server, &body, Some(t), Some(&nonce), Some(good.clone()))
        .await
        .assert_message(202, "Accepted for delivery.");
    server
        .wait_for_line("the relayed SMS", |l| {
            l.contains("[regstack/null-sms]") && l.contains(to)
        })
        .await;
    refused(&post_relay(&server, &body, Some(t), Some(&nonce), Some(good)).await);
    // Not mounted without a relay secret.
    let plain = Server::start_native(&[]).await;
    post_relay(
        &plain,
        &body,
        Some(t),
        Some(&nonce),
        Some(relay::seal(SECRET, t, &nonce, &body)),
    )
    .await
    .assert_detail(404, msg::NOT_FOUND);
}

/// The relay sends as this instance's own sender whatever the body says (a leaked secret must
/// not make it an open mail server), and refuses bodies over `max_request_body_bytes`.
#[tokio::test]
async fn relay_pins_the_sender_and_limits_the_body() {
    let server = relay_server(&[("REGSTACK_EMAIL__FROM_ADDRESS", "accounts@example.com")]).await;
    let to = unique_email("relay-from");
    let body = serde_json::to_vec(&Relayed::Email {
        to: to.clone(),
        from: "Someone Else <ceo@evil.example>".into(),
        subject: "Relayed".into(),
        text: "hello".into(),
        html: "<p>hello</p>".into(),
    })
    .unwrap();
    let nonce = format!("{:032x}", regstack_conformance::random_u64());
    let t = now();
    post_relay(
        &server,
        &body,
        Some(t),
        Some(&nonce),
        Some(relay::seal(SECRET, t, &nonce, &body)),
    )
    .await
    .assert_message(202, "Accepted for delivery.");
    let line = server
        .wait_for_line("the relayed email", |l| l.contains(&format!("To: {to}")))
        .await;
    assert!(line.contains("From: RegStack <accounts@example.com>"), "{line}");
    assert!(!line.contains("evil.example"), "{line}");

    let big = vec![b' '; 70 * 1024];
    let nonce = format!("{:032x}", regstack_conformance::random_u64());
    let r = post_relay(
        &server,
        &big,
        Some(t),
        Some(&nonce),
        Some(relay::seal(SECRET, t, &nonce, &big)),
    )
    .await;
    r.assert_status(413);
}
