//! `hookwarden providers`: every provider name a route takes, with how it verifies, what
//! key it needs and what its vectors rest on. The table's presets are described from
//! their entries, so the listing cannot drift from what verifies.

use crate::route::catalog::{Check, Evidence, Handshake};
use crate::route::{HmacScheme, MessagePart, Provider, SigEncoding, SigList, TimeUnit};

/// One line of the listing.
pub(crate) struct Listed {
    pub name: &'static str,
    pub scheme: String,
    pub key: &'static str,
    pub evidence: String,
}

/// Every provider, those with their own file first.
pub(crate) fn listing() -> Vec<Listed> {
    Provider::all().map(listed).collect()
}

fn listed(provider: Provider) -> Listed {
    let own = |scheme: &str, key, evidence: &str| Listed {
        name: provider.name(),
        scheme: scheme.to_string(),
        key,
        evidence: evidence.to_string(),
    };
    const SECRET: &str = "secrets";
    const HR: &str = "vectors from the provider's documentation (../shared/providers)";
    match provider {
        Provider::SmartCv => own("HMAC-SHA256 hex of <ts>.<body>", SECRET, HR),
        Provider::Semantikmatch => own("HMAC-SHA256 hex of the body", SECRET, HR),
        Provider::Hrflow => own(
            "HMAC-SHA256 hex of the body, its form, or a signed request",
            SECRET,
            "HrFlow's Python SDK (hrflow 4.x) and its documentation",
        ),
        Provider::JobAffinity => own("[routes.auth] and/or [routes.hmac]", "auth or secrets", HR),
        Provider::StandardWebhooks => own(
            "Standard Webhooks v1 (HMAC-SHA256) and v1a (Ed25519)",
            "secrets (whsec_, whpk_)",
            "SDK: svix, standardwebhooks",
        ),
        Provider::Hmac => own(
            "[routes.hmac]: described in the route",
            SECRET,
            "the route's own description",
        ),
        Provider::Github => own(
            "HMAC-SHA256 hex of the body, X-Hub-Signature-256",
            SECRET,
            "SDK: @octokit/webhooks-methods",
        ),
        Provider::Slack => own(
            "HMAC-SHA256 hex of v0:<ts>:<body>; url_verification",
            SECRET,
            "SDK: slack_sdk",
        ),
        Provider::Shopify => own(
            "HMAC-SHA256 base64 of the body",
            SECRET,
            "SDK: @shopify/shopify-api",
        ),
        Provider::Zoom => own(
            "HMAC-SHA256 hex of v0:<ts>:<body>; url_validation",
            SECRET,
            "SDK: @zoom/rivet",
        ),
        Provider::Linear => own(
            "HMAC-SHA256 hex of the body, webhookTimestamp in ms",
            SECRET,
            "SDK: @linear/sdk",
        ),
        Provider::Mailgun => own(
            "HMAC-SHA256 hex of <timestamp><token>, in the body",
            SECRET,
            "SDK: mailgun",
        ),
        Provider::Twilio => own(
            "HMAC-SHA1 base64 of the URL and sorted form",
            "secrets, public_url",
            "SDK: twilio",
        ),
        Provider::Square => own(
            "HMAC-SHA256 base64 of <public_url><body>",
            "secrets, public_url",
            "SDK: squareup",
        ),
        Provider::Discord => own(
            "Ed25519 of <ts><body>; PING",
            "public_key (hex)",
            "SDK: PyNaCl, discord-interactions",
        ),
        Provider::Sendgrid => own(
            "ECDSA P-256 of <ts><body>",
            "public_key (base64 DER)",
            "SDK: sendgrid",
        ),
        Provider::Described(d) => Listed {
            name: d.name,
            scheme: format!("{}: ", d.title)
                + &match &d.check {
                    Check::Hmac(s) => describe(s),
                    Check::StandardWebhooks => "Standard Webhooks v1 (HMAC-SHA256)".into(),
                    Check::Token {
                        header,
                        basic: false,
                    } => format!("the secret itself in {header}"),
                    Check::Token { basic: true, .. } => {
                        "Basic authentication (user:password)".into()
                    }
                    Check::TokenOrStandardWebhooks { header } => {
                        format!("the secret token in {header}, or Standard Webhooks v1")
                    }
                    Check::Ed25519 { joiner, .. } => {
                        format!("Ed25519 base64 of <ts>{joiner}<body>")
                    }
                }
                + match d.handshake {
                    None => "",
                    Some(Handshake::MetaGet) => "; GET hub.challenge",
                    Some(Handshake::DropboxGet) => "; GET challenge",
                    Some(Handshake::OktaGet) => "; GET verification challenge",
                    Some(Handshake::XCrc) => "; GET crc_token",
                    Some(Handshake::TwitchChallenge) => "; webhook_callback_verification",
                    Some(Handshake::XeroIntent) => "; intent to receive",
                    Some(Handshake::Mandrill) => "; HEAD check and empty test",
                    Some(Handshake::AsanaSecret) => "; X-Hook-Secret handshake",
                },
            key: match &d.check {
                Check::Ed25519 { .. } => "public_key (base64)",
                Check::Hmac(s) if s.message.contains(&MessagePart::Url) => "secrets, public_url",
                Check::Hmac(s) if s.key == crate::route::KeyEncoding::Base64 => "secrets (base64)",
                Check::StandardWebhooks => "secrets (whsec_)",
                Check::Token { basic: true, .. } => "secrets (user:password)",
                _ if d.handshake == Some(Handshake::MetaGet) => "secrets, verify_token",
                _ if d.handshake == Some(Handshake::AsanaSecret) => "learnt at its handshake",
                _ => SECRET,
            },
            evidence: match d.evidence {
                Evidence::Sdk(sdk) => format!("SDK: {sdk}"),
                Evidence::Documented(page) => format!("documented algorithm: {page}"),
            },
        },
    }
}

/// An HMAC description in one line: "HMAC-SHA256 hex of <ts>:<body>, x-webflow-signature".
fn describe(s: &HmacScheme) -> String {
    let algorithm = match s.algorithm {
        crate::route::HmacAlgorithm::Sha1 => "HMAC-SHA1",
        crate::route::HmacAlgorithm::Sha256 => "HMAC-SHA256",
        crate::route::HmacAlgorithm::Sha512 => "HMAC-SHA512",
    };
    let encoding = match s.encoding {
        SigEncoding::Hex => "hex",
        SigEncoding::Base64 => "base64",
    };
    let message: String = s
        .message
        .iter()
        .map(|part| match part {
            MessagePart::Literal(text) => text.to_string(),
            MessagePart::Body => "<body>".into(),
            MessagePart::Timestamp => "<ts>".into(),
            MessagePart::Id => "<id>".into(),
            MessagePart::Method => "<method>".into(),
            MessagePart::Url => "<url>".into(),
            MessagePart::SortedForm => "<sorted form fields>".into(),
        })
        .collect();
    let unit = match s.timestamp.as_ref().map(|t| t.unit) {
        Some(TimeUnit::Millis) => " (ts in ms)",
        Some(TimeUnit::Rfc3339) => " (ts RFC 3339)",
        Some(TimeUnit::Seconds) | None => "",
    };
    let list = match &s.list {
        SigList::One => String::new(),
        SigList::Each(sep) => format!(" (a `{}` list)", char::from(*sep)),
        SigList::Keyed {
            timestamp,
            signature,
            ..
        } => format!(" ({timestamp}=…,{signature}=…)"),
    };
    format!(
        "{algorithm} {encoding} of {message}{unit}, {}{list}",
        s.headers.first().map(|h| h.as_ref()).unwrap_or_default()
    )
}
