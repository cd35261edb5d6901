//! The route model: what one `[[routes]]` entry means, with every default resolved.
//!
//! A leaf: `config` builds these types from the file, and everything else only reads
//! them (the providers verify against a `Route`, the pipeline serves one, the admin API
//! shows one). Nothing here knows how the file is written or how a scheme verifies.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Uri};
use ipnet::IpNet;

pub(crate) mod catalog;

pub(crate) use catalog::Described;

/// The schemes a route's `provider` names (docs/providers.md). Data only: how each verifies is
/// `providers`' business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    SmartCv,
    Semantikmatch,
    Hrflow,
    JobAffinity,
    StandardWebhooks,
    Hmac,
    Github,
    Slack,
    Shopify,
    Zoom,
    Linear,
    Mailgun,
    Twilio,
    Square,
    Discord,
    Sendgrid,
    /// A preset of the table ([`catalog`]).
    Described(&'static Described),
}

impl Provider {
    /// The providers with their own file, in the order of docs/providers.md.
    const OWN: [Provider; 16] = [
        Provider::SmartCv,
        Provider::Semantikmatch,
        Provider::Hrflow,
        Provider::JobAffinity,
        Provider::StandardWebhooks,
        Provider::Hmac,
        Provider::Github,
        Provider::Slack,
        Provider::Shopify,
        Provider::Zoom,
        Provider::Linear,
        Provider::Mailgun,
        Provider::Twilio,
        Provider::Square,
        Provider::Discord,
        Provider::Sendgrid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Provider::SmartCv => "smartcv",
            Provider::Semantikmatch => "semantikmatch",
            Provider::Hrflow => "hrflow",
            Provider::JobAffinity => "jobaffinity",
            Provider::StandardWebhooks => "standard-webhooks",
            Provider::Hmac => "hmac",
            Provider::Github => "github",
            Provider::Slack => "slack",
            Provider::Shopify => "shopify",
            Provider::Zoom => "zoom",
            Provider::Linear => "linear",
            Provider::Mailgun => "mailgun",
            Provider::Twilio => "twilio",
            Provider::Square => "square",
            Provider::Discord => "discord",
            Provider::Sendgrid => "sendgrid",
            Provider::Described(d) => d.name,
        }
    }

    /// Every provider: those with their own file, then the table's.
    pub fn all() -> impl Iterator<Item = Provider> {
        Provider::OWN
            .into_iter()
            .chain(catalog::CATALOG.iter().map(Provider::Described))
    }

    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::all().find(|p| p.name() == name)
    }

    /// Whether its routes need `secrets` (JobAffinity's only with `[routes.hmac]`).
    pub fn uses_secrets(self) -> bool {
        !matches!(self, Provider::JobAffinity) && !self.uses_public_key()
    }

    /// Whether its routes learn their secret at the provider's handshake (Asana), so
    /// that `secrets` is optional.
    pub(crate) fn learns_secret(self) -> bool {
        self.described().and_then(|d| d.handshake) == Some(catalog::Handshake::AsanaSecret)
    }

    /// The table's entry, for a preset that is data.
    pub(crate) fn described(self) -> Option<&'static Described> {
        match self {
            Provider::Described(d) => Some(d),
            _ => None,
        }
    }

    /// Whether its routes verify with `public_key` instead of `secrets` (docs/providers.md).
    pub fn uses_public_key(self) -> bool {
        match self {
            Provider::Discord | Provider::Sendgrid => true,
            Provider::Described(d) => matches!(d.check, catalog::Check::Ed25519 { .. }),
            _ => false,
        }
    }

    /// Whether its routes need `public_url`: the provider signs the URL it posted to,
    /// which the gateway cannot know behind a load balancer.
    pub fn signs_url(self) -> bool {
        match self {
            Provider::Twilio | Provider::Square => true,
            Provider::Described(d) => matches!(&d.check,
                catalog::Check::Hmac(s) if s.message.contains(&MessagePart::Url)),
            _ => false,
        }
    }

    /// Whether its scheme signs a timestamp (for the dedup-ttl warning).
    pub fn has_timestamp(self) -> bool {
        if let Provider::Described(d) = self {
            return match &d.check {
                catalog::Check::Hmac(s) => s.timestamp.is_some(),
                catalog::Check::StandardWebhooks | catalog::Check::Ed25519 { .. } => true,
                catalog::Check::Token { .. } | catalog::Check::TokenOrStandardWebhooks { .. } => {
                    false
                }
            };
        }
        matches!(
            self,
            Provider::SmartCv
                | Provider::StandardWebhooks
                | Provider::Slack
                | Provider::Zoom
                | Provider::Linear
                | Provider::Mailgun
                | Provider::Discord
                | Provider::Sendgrid
        )
    }
}

/// How a route's events reach the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeliveryMode {
    /// The provider waits while the event is forwarded.
    Sync,
    /// Stored durably, answered at once, delivered by the gateway (docs/queue.md) with at most
    /// `concurrency` attempts in flight.
    Queue { concurrency: usize },
}

/// What the upstream receives for a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForwardMode {
    /// The envelope of docs/upstream.md.
    Normalized,
    /// The verified bytes with their original Content-Type.
    Raw,
}

/// One route, with every default resolved.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub name: String,
    pub path: String,
    pub provider: Provider,
    pub secrets: Vec<Secret>,
    /// Keys of the public-key schemes (Discord, SendGrid, Standard Webhooks `whpk_`).
    pub public_keys: Vec<PublicKey>,
    /// The exact URL the provider posts to, for the schemes that sign it (Twilio, Square).
    pub public_url: Option<String>,
    pub tolerance: Duration,
    /// `upstream` (route or global) joined with `forward_path`, computed once at load.
    pub forward_uri: Uri,
    pub forward: ForwardMode,
    pub delivery: DeliveryMode,
    pub rate_limit: Option<RateLimit>,
    /// Zero turns dedup off for the route.
    pub dedup_ttl: Duration,
    pub allow_ips: Vec<IpNet>,
    pub default_type: Option<String>,
    pub fields: Fields,
    pub auth: Option<Auth>,
    pub hmac: Option<HmacScheme>,
    /// Meta's `verify_token`, checked on its GET handshake.
    pub verify_token: Option<Secret>,
    /// The header an Okta route reads its secret from (default `Authorization`).
    pub token_header: Option<Name>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

/// Route overrides of where the envelope fields are read (JSON pointers). `None` means the
/// provider's own default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fields {
    pub id: Option<String>,
    pub kind: Option<String>,
    pub occurred_at: Option<String>,
    pub data: Option<String>,
}

/// Static credentials of `[routes.auth]`.
#[derive(Debug, Clone)]
pub(crate) enum Auth {
    /// The expected `user:password` bytes.
    Basic(Secret),
    Bearer(Secret),
    Header {
        name: HeaderName,
        value: Secret,
    },
}

/// An HMAC signature scheme described as data: what is signed, with which key, and
/// where the signature and timestamp travel. `[routes.hmac]` builds one from the file;
/// the presets of [`catalog`] are written as constants of the same type.
#[derive(Debug, Clone)]
pub(crate) struct HmacScheme {
    /// Where signatures travel: any one of these headers may carry one that verifies
    /// (Box's primary and secondary, DocuSign's numbered ones); one for `[routes.hmac]`.
    pub headers: Cow<'static, [Name]>,
    /// Stripped before decoding when present (`sha256=`); with [`SigList::Each`], what
    /// marks the entries to read.
    pub prefix: Option<Cow<'static, str>>,
    pub list: SigList,
    pub encoding: SigEncoding,
    pub algorithm: HmacAlgorithm,
    pub key: KeyEncoding,
    pub message: Cow<'static, [MessagePart]>,
    pub timestamp: Option<Timestamp>,
    /// A signed header whose value is the event id.
    pub id_header: Option<Name>,
}

/// A header name, lowercase: borrowed in the table of presets, owned from the file.
pub(crate) type Name = Cow<'static, str>;

/// How a signature header holds its signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SigList {
    /// The whole value is one signature.
    One,
    /// Entries split on this byte, each carrying the prefix (PagerDuty's `v1=…,v1=…`).
    Each(u8),
    /// `k=v` entries split on `separator`: the signatures under `signature`, the
    /// timestamp under `timestamp` (Stripe's and Calendly's `t=…,v1=…`).
    Keyed {
        separator: u8,
        timestamp: Name,
        signature: Name,
    },
}

/// Where a signed timestamp comes from and how it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Timestamp {
    /// `None`: inside the signature header ([`SigList::Keyed`]).
    pub header: Option<Name>,
    pub unit: TimeUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeUnit {
    Seconds,
    Millis,
    /// An RFC 3339 date (Twitch, Zendesk, Box), signed as the text sent.
    Rfc3339,
}

/// How a configured secret becomes the HMAC key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyEncoding {
    /// Its UTF-8 bytes.
    Raw,
    /// The bytes its base64 text decodes to (Airtable's `macSecretBase64`).
    Base64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigEncoding {
    Hex,
    Base64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HmacAlgorithm {
    /// Only for the presets that still sign with it (Intercom, Twilio, Vercel…).
    Sha1,
    Sha256,
    Sha512,
}

/// A public key a route's signatures are checked against, parsed at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

/// One piece of a signed-message template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MessagePart {
    Literal(Cow<'static, str>),
    Body,
    /// The timestamp's text as sent.
    Timestamp,
    Id,
    /// The request's method (HubSpot).
    Method,
    /// The route's `public_url`, then `?` and the query when the request has one.
    Url,
    /// A form body's fields, decoded, sorted and run together as `<name><value>…`
    /// (Mandrill).
    SortedForm,
}

/// Key material. Its bytes never appear in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Self {
        Self(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether `given` is this secret, compared in constant time.
    pub(crate) fn equals(&self, given: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(given).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl RateLimit {
    /// The slowest rate: one token a day.
    pub(crate) const MAX_PERIOD: Duration = Duration::from_secs(86_400);
    /// The largest burst (a day's period times this stays within u64 nanoseconds).
    pub(crate) const MAX_BURST: u32 = 100_000;
}
