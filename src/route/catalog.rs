//! The presets that are data (docs/providers.md "Presets as data"): one table entry per
//! provider, naming how it signs, where its event's fields are, what key it takes, and
//! the evidence its vectors rest on. `providers::described` verifies and normalizes
//! every entry through the same code, and `signing` signs through it, so a new provider
//! is an entry here and its vectors in `tests/fixtures/catalog.json`.
//!
//! The presets that fit no description (HrFlow's three forms, Twilio's sorted form,
//! Mailgun's signature inside the body, Slack's and Zoom's handshakes…) keep their own
//! file under `providers/`.

use std::borrow::Cow;

use super::{
    HmacAlgorithm, HmacScheme, KeyEncoding, MessagePart, Name, SigEncoding, SigList, TimeUnit,
    Timestamp,
};

/// One provider of the table.
pub struct Described {
    pub(crate) name: &'static str,
    /// The provider's own name, for listings ("Meta (Facebook, Instagram, WhatsApp)").
    pub(crate) title: &'static str,
    pub(crate) check: Check,
    pub(crate) fields: EventFields,
    /// An unsigned header that may name the event type, never its id.
    pub(crate) type_header: Option<&'static str>,
    pub(crate) handshake: Option<Handshake>,
    pub(crate) evidence: Evidence,
}

impl PartialEq for Described {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Described {}

impl std::hash::Hash for Described {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl std::fmt::Debug for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// How a request proves it comes from the provider.
pub(crate) enum Check {
    Hmac(HmacScheme),
    /// Standard Webhooks (`webhook-*`, or Svix's `svix-*` names) with `whsec_` secrets.
    StandardWebhooks,
    /// A header holding the secret itself, compared in constant time (Okta's
    /// `Authorization`; with `basic`, `Authorization: Basic` of `user:password`, as
    /// Postmark sends it).
    Token {
        header: &'static str,
        basic: bool,
    },
    /// GitLab: its `X-Gitlab-Token` secret token, or Standard Webhooks signing when the
    /// request carries `webhook-signature`.
    TokenOrStandardWebhooks {
        header: &'static str,
    },
    /// Ed25519 over `<timestamp><joiner><body>`, base64 signatures, base64 public keys
    /// (Telnyx).
    Ed25519 {
        signature: &'static str,
        timestamp: &'static str,
        joiner: &'static str,
    },
}

/// Where the envelope's fields are (JSON pointers); a route's `fields` override each.
pub(crate) struct EventFields {
    pub id: Option<&'static str>,
    pub kind: TypeFrom,
    pub occurred_at: Option<&'static str>,
    pub data: Option<&'static str>,
    /// A top-level array is a batch, one event per element (HubSpot).
    pub batch: bool,
    /// The payload is the JSON in this field of a form body (Mandrill's
    /// `mandrill_events`).
    pub form_field: Option<&'static str>,
}

/// Where the event type comes from.
#[derive(Clone, Copy)]
pub(crate) enum TypeFrom {
    None,
    At(&'static str),
    /// The first pointer that finds a string.
    FirstOf(&'static str, &'static str),
    /// `<first>.<second>`, or the first alone.
    Dotted(&'static str, &'static str),
    /// The unsigned [`Described::type_header`], `.` + the pointer's string when it
    /// finds one.
    Header(Option<&'static str>),
}

/// Requests a provider makes to check the endpoint, answered by the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// Meta: `GET ?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C` → `C`, when
    /// `T` is the route's `verify_token`.
    MetaGet,
    /// Dropbox: `GET ?challenge=C` → `C`.
    DropboxGet,
    /// Okta: `GET` with `X-Okta-Verification-Challenge: C` → `{"verification": C}`.
    OktaGet,
    /// X: `GET ?crc_token=T` → `{"response_token": "sha256=" + base64(HMAC(secret, T))}`.
    XCrc,
    /// Twitch: a verified `webhook_callback_verification` → `/challenge` as text.
    TwitchChallenge,
    /// Xero: a verified delivery with no events ("intent to receive") → 200.
    XeroIntent,
    /// Mandrill: a `HEAD` when the webhook is added → 200; a verified delivery with no
    /// events (its test) → 200.
    Mandrill,
    /// Asana: a `POST` with `X-Hook-Secret` and no signature hands the route its secret
    /// (`learned_secrets`), echoed back in the answer.
    AsanaSecret,
}

impl Handshake {
    /// Whether it comes as a `GET` or `HEAD` (answered before any signature, which
    /// these lack).
    pub(crate) fn is_get(self) -> bool {
        matches!(
            self,
            Handshake::MetaGet
                | Handshake::DropboxGet
                | Handshake::OktaGet
                | Handshake::XCrc
                | Handshake::Mandrill
        )
    }
}

/// What a preset's vectors rest on (`hookwarden providers` shows it).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Evidence {
    /// Signed or checked by the provider's own SDK (named) in `fuzz/sdk_differential.py`.
    Sdk(&'static str),
    /// Built from the documented algorithm (the page named), no SDK to check with.
    Documented(&'static str),
}

/// A header name as the table writes it (lowercase): `HeaderName`s cannot sit in a
/// static, as their bytes may be shared.
const fn h(name: &'static str) -> Name {
    Cow::Borrowed(name)
}

const fn lit(text: &'static str) -> MessagePart {
    MessagePart::Literal(Cow::Borrowed(text))
}

/// The common shape: HMAC-SHA256 of the body, one signature in one of `headers`.
const fn body_hmac(
    headers: &'static [Name],
    prefix: Option<&'static str>,
    encoding: SigEncoding,
) -> HmacScheme {
    hmac(
        headers,
        prefix,
        SigList::One,
        encoding,
        HmacAlgorithm::Sha256,
        BODY,
        None,
        None,
    )
}

/// Any description; `key` is raw unless the entry says otherwise.
#[allow(clippy::too_many_arguments)]
const fn hmac(
    headers: &'static [Name],
    prefix: Option<&'static str>,
    list: SigList,
    encoding: SigEncoding,
    algorithm: HmacAlgorithm,
    message: &'static [MessagePart],
    timestamp: Option<Timestamp>,
    id_header: Option<&'static str>,
) -> HmacScheme {
    HmacScheme {
        headers: Cow::Borrowed(headers),
        prefix: match prefix {
            Some(p) => Some(Cow::Borrowed(p)),
            None => None,
        },
        list,
        encoding,
        algorithm,
        key: KeyEncoding::Raw,
        message: Cow::Borrowed(message),
        timestamp,
        id_header: match id_header {
            Some(name) => Some(Cow::Borrowed(name)),
            None => None,
        },
    }
}

/// `t=<ts>,v1=<hex>`-style lists that carry their own timestamp (Stripe, Calendly,
/// Paddle): HMAC-SHA256 hex over `message`, the timestamp in seconds.
const fn keyed(
    headers: &'static [Name],
    separator: u8,
    timestamp: &'static str,
    signature: &'static str,
    message: &'static [MessagePart],
) -> HmacScheme {
    let list = SigList::Keyed {
        separator,
        timestamp: Cow::Borrowed(timestamp),
        signature: Cow::Borrowed(signature),
    };
    let stamp = Some(Timestamp {
        header: None,
        unit: TimeUnit::Seconds,
    });
    hmac(
        headers,
        None,
        list,
        SigEncoding::Hex,
        HmacAlgorithm::Sha256,
        message,
        stamp,
        None,
    )
}

/// A timestamp header in `unit`.
const fn stamp(header: &'static str, unit: TimeUnit) -> Option<Timestamp> {
    Some(Timestamp {
        header: Some(Cow::Borrowed(header)),
        unit,
    })
}

const BODY: &[MessagePart] = &[MessagePart::Body];

/// Header names as a `'static` slice: a temporary borrowed in a static's initializer
/// would need dropping there, a constant does not.
macro_rules! names {
    ($($name:literal),+ $(,)?) => {{
        const NAMES: &[Name] = &[$(h($name)),+];
        NAMES
    }};
}

/// A message template as a `'static` slice, for the same reason.
macro_rules! parts {
    ($($part:expr),+ $(,)?) => {{
        const PARTS: &[MessagePart] = &[$($part),+];
        PARTS
    }};
}

const NO_FIELDS: EventFields = EventFields {
    id: None,
    kind: TypeFrom::None,
    occurred_at: None,
    data: None,
    batch: false,
    form_field: None,
};

const HUB_256: &[Name] = &[h("x-hub-signature-256")];
const HUB: &[Name] = &[h("x-hub-signature")];
const DOCUSIGN: &[Name] = &[
    h("x-docusign-signature-1"),
    h("x-docusign-signature-2"),
    h("x-docusign-signature-3"),
    h("x-docusign-signature-4"),
    h("x-docusign-signature-5"),
];
const BOX: &[Name] = &[h("box-signature-primary"), h("box-signature-secondary")];

/// Every preset of the table, in the order `hookwarden providers` lists them.
pub(crate) static CATALOG: &[Described] = &[
    Described {
        name: "stripe",
        title: "Stripe",
        check: Check::Hmac(keyed(
            names!("stripe-signature"),
            b',',
            "t",
            "v1",
            parts!(MessagePart::Timestamp, lit("."), MessagePart::Body),
        )),
        fields: EventFields {
            id: Some("/id"),
            kind: TypeFrom::At("/type"),
            occurred_at: Some("/created"),
            data: Some("/data"),
            batch: false,
            form_field: None,
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Sdk("stripe (tests/fixtures/presets.json)"),
    },
    Described {
        name: "paddle",
        title: "Paddle Billing",
        check: Check::Hmac(keyed(
            names!("paddle-signature"),
            b';',
            "ts",
            "h1",
            parts!(MessagePart::Timestamp, lit(":"), MessagePart::Body),
        )),
        fields: EventFields {
            id: Some("/event_id"),
            kind: TypeFrom::At("/event_type"),
            occurred_at: Some("/occurred_at"),
            data: Some("/data"),
            batch: false,
            form_field: None,
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Sdk("paddle-python-sdk (tests/fixtures/presets.json)"),
    },
    Described {
        name: "typeform",
        title: "Typeform",
        check: Check::Hmac(body_hmac(
            names!("typeform-signature"),
            Some("sha256="),
            SigEncoding::Base64,
        )),
        fields: EventFields {
            id: Some("/event_id"),
            kind: TypeFrom::At("/event_type"),
            occurred_at: None,
            data: Some("/form_response"),
            batch: false,
            form_field: None,
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Documented("www.typeform.com/developers/webhooks/secure-your-webhooks/"),
    },
    Described {
        name: "intercom",
        title: "Intercom",
        check: Check::Hmac(hmac(
            HUB,
            Some("sha1="),
            SigList::One,
            SigEncoding::Hex,
            HmacAlgorithm::Sha1,
            BODY,
            None,
            None,
        )),
        fields: EventFields {
            id: Some("/id"),
            kind: TypeFrom::At("/topic"),
            occurred_at: Some("/created_at"),
            data: Some("/data"),
            batch: false,
            form_field: None,
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Documented(
            "developers.intercom.com/docs/references/webhooks/webhook-models#signed-notifications",
        ),
    },
    Described {
        name: "meta",
        title: "Meta (Facebook, Instagram, WhatsApp)",
        check: Check::Hmac(body_hmac(HUB_256, Some("sha256="), SigEncoding::Hex)),
        fields: EventFields {
            kind: TypeFrom::At("/object"),
            ..NO_FIELDS
        },
        type_header: None,
        handshake: Some(Handshake::MetaGet),
        evidence: Evidence::Documented(
            "developers.facebook.com/docs/graph-api/webhooks/getting-started",
        ),
    },
    Described {
        name: "hubspot",
        title: "HubSpot (v3 signatures)",
        check: Check::Hmac(hmac(
            names!("x-hubspot-signature-v3"),
            None,
            SigList::One,
            SigEncoding::Base64,
            HmacAlgorithm::Sha256,
            parts!(MessagePart::Method, MessagePart::Url, MessagePart::Body, MessagePart::Timestamp),
            stamp("x-hubspot-request-timestamp", TimeUnit::Millis),
            None,
        )),
        fields: EventFields {
            id: Some("/eventId"),
            kind: TypeFrom::At("/subscriptionType"),
            occurred_at: Some("/occurredAt"),
            data: None,
            batch: true,
            form_field: None,
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Sdk("hubspot-api-client (Signature.is_valid, v3)"),
    },
    Described {
        name: "docusign",
        title: "DocuSign Connect",
        check: Check::Hmac(body_hmac(DOCUSIGN, None, SigEncoding::Base64)),
        fields: EventFields {
            kind: TypeFrom::At("/event"),
            occurred_at: Some("/generatedDateTime"),
            data: Some("/data"),
            ..NO_FIELDS
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Documented("developers.docusign.com/platform/webhooks/connect/hmac"),
    },
    Described {
        name: "calendly",
        title: "Calendly",
        check: Check::Hmac(keyed(
            names!("calendly-webhook-signature"),
            b',',
            "t",
            "v1",
            parts!(MessagePart::Timestamp, lit("."), MessagePart::Body),
        )),
        fields: EventFields {
            kind: TypeFrom::At("/event"),
            occurred_at: Some("/created_at"),
            data: Some("/payload"),
            ..NO_FIELDS
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Documented(
            "developer.calendly.com/api-docs/ZG9jOjM2MzE2MDM4-webhook-signatures",
        ),
    },
    Described {
        name: "bitbucket",
        title: "Bitbucket Cloud",
        check: Check::Hmac(body_hmac(HUB, Some("sha256="), SigEncoding::Hex)),
        fields: EventFields {
            kind: TypeFrom::Header(None),
            ..NO_FIELDS
        },
        type_header: Some("x-event-key"),
        handshake: None,
        evidence: Evidence::Documented(
            "support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/",
        ),
    },
    Described {
        name: "jira",
        title: "Jira Cloud",
        check: Check::Hmac(body_hmac(HUB, Some("sha256="), SigEncoding::Hex)),
        fields: EventFields {
            kind: TypeFrom::At("/webhookEvent"),
            occurred_at: Some("/timestamp"),
            ..NO_FIELDS
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Documented(
            "developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks",
        ),
    },
    Described {
        name: "vercel",
        title: "Vercel",
        check: Check::Hmac(hmac(
            names!("x-vercel-signature"),
            None,
            SigList::One,
            SigEncoding::Hex,
            HmacAlgorithm::Sha1,
            BODY,
            None,
            None,
        )),
        fields: EventFields {
            id: Some("/id"),
            kind: TypeFrom::At("/type"),
            occurred_at: Some("/createdAt"),
            data: Some("/payload"),
            batch: false,
            form_field: None,
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Documented("vercel.com/docs/webhooks/webhooks-api#securing-webhooks"),
    },
    Described {
        name: "sentry",
        title: "Sentry (integration platform)",
        check: Check::Hmac(body_hmac(names!("sentry-hook-signature"), None, SigEncoding::Hex)),
        fields: EventFields {
            kind: TypeFrom::Header(Some("/action")),
            data: Some("/data"),
            ..NO_FIELDS
        },
        type_header: Some("sentry-hook-resource"),
        handshake: None,
        evidence: Evidence::Documented(
            "docs.sentry.io/organization/integrations/integration-platform/webhooks/",
        ),
    },
    Described {
        name: "pagerduty",
        title: "PagerDuty (v3 webhooks)",
        check: Check::Hmac(hmac(
            names!("x-pagerduty-signature"),
            Some("v1="),
            SigList::Each(b','),
            SigEncoding::Hex,
            HmacAlgorithm::Sha256,
            BODY,
            None,
            None,
        )),
        fields: EventFields {
            id: Some("/event/id"),
            kind: TypeFrom::At("/event/event_type"),
            occurred_at: Some("/event/occurred_at"),
            data: Some("/event/data"),
            batch: false,
            form_field: None,
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Documented(
            "developer.pagerduty.com/docs/webhooks/webhook-signatures/",
        ),
    },
    Described {
        name: "dropbox",
        title: "Dropbox",
        check: Check::Hmac(body_hmac(names!("x-dropbox-signature"), None, SigEncoding::Hex)),
        fields: NO_FIELDS,
        type_header: None,
        handshake: Some(Handshake::DropboxGet),
        evidence: Evidence::Documented("www.dropbox.com/developers/reference/webhooks"),
    },
    Described {
        name: "notion",
        title: "Notion",
        check: Check::Hmac(body_hmac(names!("x-notion-signature"), Some("sha256="), SigEncoding::Hex)),
        fields: EventFields {
            id: Some("/id"),
            kind: TypeFrom::At("/type"),
            occurred_at: Some("/timestamp"),
            data: Some("/data"),
            batch: false,
            form_field: None,
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Documented("developers.notion.com/reference/webhooks"),
    },
    Described {
        name: "zendesk",
        title: "Zendesk",
        check: Check::Hmac(hmac(
            names!("x-zendesk-webhook-signature"),
            None,
            SigList::One,
            SigEncoding::Base64,
            HmacAlgorithm::Sha256,
            parts!(MessagePart::Timestamp, MessagePart::Body),
            stamp("x-zendesk-webhook-signature-timestamp", TimeUnit::Rfc3339),
            None,
        )),
        fields: EventFields {
            id: Some("/id"),
            kind: TypeFrom::At("/type"),
            occurred_at: Some("/time"),
            data: Some("/detail"),
            batch: false,
            form_field: None,
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Documented(
            "developer.zendesk.com/documentation/webhooks/verifying/",
        ),
    },
    Described {
        name: "xero",
        title: "Xero",
        check: Check::Hmac(body_hmac(names!("x-xero-signature"), None, SigEncoding::Base64)),
        fields: EventFields {
            kind: TypeFrom::Dotted("/events/0/eventCategory", "/events/0/eventType"),
            occurred_at: Some("/events/0/eventDateUtc"),
            ..NO_FIELDS
        },
        type_header: None,
        handshake: Some(Handshake::XeroIntent),
        evidence: Evidence::Documented("developer.xero.com/documentation/guides/webhooks/overview"),
    },
    Described {
        name: "twitch",
        title: "Twitch EventSub",
        check: Check::Hmac(hmac(
            names!("twitch-eventsub-message-signature"),
            Some("sha256="),
            SigList::One,
            SigEncoding::Hex,
            HmacAlgorithm::Sha256,
            parts!(MessagePart::Id, MessagePart::Timestamp, MessagePart::Body),
            stamp("twitch-eventsub-message-timestamp", TimeUnit::Rfc3339),
            Some("twitch-eventsub-message-id"),
        )),
        fields: EventFields {
            kind: TypeFrom::At("/subscription/type"),
            data: Some("/event"),
            ..NO_FIELDS
        },
        type_header: None,
        handshake: Some(Handshake::TwitchChallenge),
        evidence: Evidence::Documented(
            "dev.twitch.tv/docs/eventsub/handling-webhook-events/#verifying-the-event-message",
        ),
    },
    Described {
        name: "webflow",
        title: "Webflow",
        check: Check::Hmac(hmac(
            names!("x-webflow-signature"),
            None,
            SigList::One,
            SigEncoding::Hex,
            HmacAlgorithm::Sha256,
            parts!(MessagePart::Timestamp, lit(":"), MessagePart::Body),
            stamp("x-webflow-timestamp", TimeUnit::Millis),
            None,
        )),
        fields: EventFields {
            kind: TypeFrom::At("/triggerType"),
            data: Some("/payload"),
            ..NO_FIELDS
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Documented("developers.webflow.com/data/docs/working-with-webhooks"),
    },
    Described {
        name: "woocommerce",
        title: "WooCommerce",
        check: Check::Hmac(body_hmac(names!("x-wc-webhook-signature"), None, SigEncoding::Base64)),
        fields: EventFields {
            kind: TypeFrom::Header(None),
            ..NO_FIELDS
        },
        type_header: Some("x-wc-webhook-topic"),
        handshake: None,
        evidence: Evidence::Documented("woocommerce.github.io/woocommerce-rest-api-docs/#webhooks"),
    },
    Described {
        name: "coinbase",
        title: "Coinbase Commerce",
        check: Check::Hmac(body_hmac(names!("x-cc-webhook-signature"), None, SigEncoding::Hex)),
        fields: EventFields {
            id: Some("/event/id"),
            kind: TypeFrom::At("/event/type"),
            occurred_at: Some("/event/created_at"),
            data: Some("/event/data"),
            batch: false,
            form_field: None,
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Sdk("coinbase-commerce (WebhookSignature)"),
    },
    Described {
        name: "airtable",
        title: "Airtable",
        check: Check::Hmac(HmacScheme {
            headers: Cow::Borrowed(names!("x-airtable-content-mac")),
            prefix: Some(Cow::Borrowed("hmac-sha256=")),
            list: SigList::One,
            encoding: SigEncoding::Hex,
            algorithm: HmacAlgorithm::Sha256,
            key: KeyEncoding::Base64,
            message: Cow::Borrowed(BODY),
            timestamp: None,
            id_header: None,
        }),
        fields: EventFields {
            occurred_at: Some("/timestamp"),
            ..NO_FIELDS
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Documented(
            "airtable.com/developers/web/api/webhooks-overview#webhook-notification-delivery",
        ),
    },
    Described {
        name: "box",
        title: "Box (webhooks v2)",
        check: Check::Hmac(hmac(
            BOX,
            None,
            SigList::One,
            SigEncoding::Base64,
            HmacAlgorithm::Sha256,
            parts!(MessagePart::Body, MessagePart::Timestamp),
            stamp("box-delivery-timestamp", TimeUnit::Rfc3339),
            None,
        )),
        fields: EventFields {
            id: Some("/id"),
            kind: TypeFrom::At("/trigger"),
            occurred_at: Some("/created_at"),
            data: Some("/source"),
            batch: false,
            form_field: None,
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Sdk("box-sdk-gen (compute_webhook_signature, validate_message)"),
    },
    Described {
        name: "clerk",
        title: "Clerk (Svix)",
        check: Check::StandardWebhooks,
        fields: EventFields {
            kind: TypeFrom::At("/type"),
            occurred_at: Some("/timestamp"),
            data: Some("/data"),
            ..NO_FIELDS
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Sdk("svix (Webhook.sign, Webhook.verify)"),
    },
    Described {
        name: "resend",
        title: "Resend (Svix)",
        check: Check::StandardWebhooks,
        fields: EventFields {
            kind: TypeFrom::At("/type"),
            occurred_at: Some("/created_at"),
            data: Some("/data"),
            ..NO_FIELDS
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Sdk("svix (Webhook.sign, Webhook.verify)"),
    },
    Described {
        name: "openai",
        title: "OpenAI",
        check: Check::StandardWebhooks,
        fields: EventFields {
            kind: TypeFrom::At("/type"),
            occurred_at: Some("/created_at"),
            data: Some("/data"),
            ..NO_FIELDS
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Sdk("standardwebhooks (sign), openai (webhooks.verify_signature)"),
    },
    Described {
        name: "replicate",
        title: "Replicate",
        check: Check::StandardWebhooks,
        fields: EventFields {
            kind: TypeFrom::At("/status"),
            occurred_at: Some("/created_at"),
            ..NO_FIELDS
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Sdk("standardwebhooks (sign), replicate (Webhooks.validate)"),
    },
    Described {
        name: "gitlab",
        title: "GitLab",
        check: Check::TokenOrStandardWebhooks {
            header: "x-gitlab-token",
        },
        fields: EventFields {
            kind: TypeFrom::At("/object_kind"),
            ..NO_FIELDS
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Documented(
            "docs.gitlab.com/user/project/integrations/webhooks/#validate-payloads-by-using-a-secret-token",
        ),
    },
    Described {
        name: "okta",
        title: "Okta event hooks",
        check: Check::Token {
            header: "authorization",
            basic: false,
        },
        fields: EventFields {
            id: Some("/eventId"),
            kind: TypeFrom::FirstOf("/data/events/0/eventType", "/eventType"),
            occurred_at: Some("/eventTime"),
            data: Some("/data"),
            batch: false,
            form_field: None,
        },
        type_header: None,
        handshake: Some(Handshake::OktaGet),
        evidence: Evidence::Documented("developer.okta.com/docs/concepts/event-hooks/"),
    },
    Described {
        name: "postmark",
        title: "Postmark",
        check: Check::Token {
            header: "authorization",
            basic: true,
        },
        fields: EventFields {
            kind: TypeFrom::At("/RecordType"),
            ..NO_FIELDS
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Documented("postmarkapp.com/developer/webhooks/webhooks-overview"),
    },
    Described {
        name: "telnyx",
        title: "Telnyx (API v2)",
        check: Check::Ed25519 {
            signature: "telnyx-signature-ed25519",
            timestamp: "telnyx-timestamp",
            joiner: "|",
        },
        fields: EventFields {
            id: Some("/data/id"),
            kind: TypeFrom::At("/data/event_type"),
            occurred_at: Some("/data/occurred_at"),
            data: Some("/data/payload"),
            batch: false,
            form_field: None,
        },
        type_header: None,
        handshake: None,
        evidence: Evidence::Sdk("telnyx (Webhook.construct_event)"),
    },
    Described {
        name: "asana",
        title: "Asana",
        check: Check::Hmac(body_hmac(
            names!("x-hook-signature"),
            None,
            SigEncoding::Hex,
        )),
        fields: EventFields {
            kind: TypeFrom::Dotted("/events/0/resource/resource_type", "/events/0/action"),
            occurred_at: Some("/events/0/created_at"),
            ..NO_FIELDS
        },
        type_header: None,
        handshake: Some(Handshake::AsanaSecret),
        evidence: Evidence::Documented("developers.asana.com/docs/webhooks-guide"),
    },
    Described {
        name: "mandrill",
        title: "Mailchimp Transactional (Mandrill)",
        check: Check::Hmac(hmac(
            names!("x-mandrill-signature"),
            None,
            SigList::One,
            SigEncoding::Base64,
            HmacAlgorithm::Sha1,
            parts!(MessagePart::Url, MessagePart::SortedForm),
            None,
            None,
        )),
        fields: EventFields {
            id: Some("/_id"),
            kind: TypeFrom::At("/event"),
            occurred_at: Some("/ts"),
            data: None,
            batch: true,
            form_field: Some("mandrill_events"),
        },
        type_header: None,
        handshake: Some(Handshake::Mandrill),
        evidence: Evidence::Documented(
            "mailchimp.com/developer/transactional/guides/track-respond-activity-webhooks/#authenticating-webhook-requests",
        ),
    },
    Described {
        name: "x",
        title: "X (Twitter) Account Activity",
        check: Check::Hmac(body_hmac(names!("x-twitter-webhooks-signature"), Some("sha256="), SigEncoding::Base64)),
        fields: NO_FIELDS,
        type_header: None,
        handshake: Some(Handshake::XCrc),
        evidence: Evidence::Documented(
            "docs.x.com/x-api/webhooks/introduction#challenge-response-checks",
        ),
    },
];
