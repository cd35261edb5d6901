//! The route model: what one `[[routes]]` entry means, with every default resolved.
//!
//! A leaf: `config` builds these types from the file, and everything else only reads
//! them (the providers verify against a `Route`, the pipeline serves one, the admin API
//! shows one). Nothing here knows how the file is written or how a scheme verifies.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Uri};
use ipnet::IpNet;

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
    Stripe,
    Github,
    Slack,
    Shopify,
    Paddle,
    Zoom,
    Linear,
    Typeform,
    Intercom,
    Mailgun,
    Twilio,
    Square,
    Discord,
    Sendgrid,
}

impl Provider {
    pub const ALL: [Provider; 20] = [
        Provider::SmartCv,
        Provider::Semantikmatch,
        Provider::Hrflow,
        Provider::JobAffinity,
        Provider::StandardWebhooks,
        Provider::Hmac,
        Provider::Stripe,
        Provider::Github,
        Provider::Slack,
        Provider::Shopify,
        Provider::Paddle,
        Provider::Zoom,
        Provider::Linear,
        Provider::Typeform,
        Provider::Intercom,
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
            Provider::Stripe => "stripe",
            Provider::Github => "github",
            Provider::Slack => "slack",
            Provider::Shopify => "shopify",
            Provider::Paddle => "paddle",
            Provider::Zoom => "zoom",
            Provider::Linear => "linear",
            Provider::Typeform => "typeform",
            Provider::Intercom => "intercom",
            Provider::Mailgun => "mailgun",
            Provider::Twilio => "twilio",
            Provider::Square => "square",
            Provider::Discord => "discord",
            Provider::Sendgrid => "sendgrid",
        }
    }

    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether its routes need `secrets` (JobAffinity's only with `[routes.hmac]`).
    pub fn uses_secrets(self) -> bool {
        !matches!(self, Provider::JobAffinity) && !self.uses_public_key()
    }

    /// Whether its routes verify with `public_key` instead of `secrets` (docs/providers.md).
    pub fn uses_public_key(self) -> bool {
        matches!(self, Provider::Discord | Provider::Sendgrid)
    }

    /// Whether its routes need `public_url`: the provider signs the URL it posted to,
    /// which the gateway cannot know behind a load balancer.
    pub fn signs_url(self) -> bool {
        matches!(self, Provider::Twilio | Provider::Square)
    }

    /// Whether its scheme signs a timestamp (for the dedup-ttl warning).
    pub fn has_timestamp(self) -> bool {
        matches!(
            self,
            Provider::SmartCv
                | Provider::StandardWebhooks
                | Provider::Stripe
                | Provider::Slack
                | Provider::Paddle
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

/// `[routes.hmac]`, parsed.
#[derive(Debug, Clone)]
pub(crate) struct HmacScheme {
    pub header: HeaderName,
    pub prefix: Option<String>,
    pub encoding: SigEncoding,
    pub algorithm: HmacAlgorithm,
    pub message: Vec<MessagePart>,
    pub timestamp_header: Option<HeaderName>,
    pub id_header: Option<HeaderName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigEncoding {
    Hex,
    Base64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HmacAlgorithm {
    /// Only for the presets that still sign with it (Intercom, Twilio).
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
    Literal(String),
    Body,
    Timestamp,
    Id,
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
