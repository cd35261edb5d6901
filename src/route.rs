//! The route model: what one `[[routes]]` entry means, with every default resolved.
//!
//! A leaf: `config` builds these types from the file, and everything else only reads
//! them (the providers verify against a `Route`, the pipeline serves one, the admin API
//! shows one). Nothing here knows how the file is written or how a scheme verifies.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Uri};
use ipnet::IpNet;

/// The schemes a route's `provider` names (SPEC §4). Data only: how each verifies is
/// `providers`' business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    SmartCv,
    Semantikmatch,
    Hrflow,
    JobAffinity,
    StandardWebhooks,
    Hmac,
}

impl Provider {
    pub const ALL: [Provider; 6] = [
        Provider::SmartCv,
        Provider::Semantikmatch,
        Provider::Hrflow,
        Provider::JobAffinity,
        Provider::StandardWebhooks,
        Provider::Hmac,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Provider::SmartCv => "smartcv",
            Provider::Semantikmatch => "semantikmatch",
            Provider::Hrflow => "hrflow",
            Provider::JobAffinity => "jobaffinity",
            Provider::StandardWebhooks => "standard-webhooks",
            Provider::Hmac => "hmac",
        }
    }

    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether its routes need `secrets` (JobAffinity's only with `[routes.hmac]`).
    pub fn uses_secrets(self) -> bool {
        !matches!(self, Provider::JobAffinity)
    }

    /// Whether its scheme signs a timestamp (for the dedup-ttl warning).
    pub fn has_timestamp(self) -> bool {
        matches!(self, Provider::SmartCv | Provider::StandardWebhooks)
    }
}

/// How a route's events reach the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeliveryMode {
    /// The provider waits while the event is forwarded.
    Sync,
    /// Stored durably, answered at once, delivered by the gateway (SPEC §8) with at most
    /// `concurrency` attempts in flight.
    Queue { concurrency: usize },
}

/// What the upstream receives for a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForwardMode {
    /// The envelope of SPEC §5.
    Normalized,
    /// The verified bytes with their original Content-Type.
    Raw,
}

/// One route, with every default resolved.
#[derive(Debug)]
pub(crate) struct Route {
    pub name: String,
    pub path: String,
    pub provider: Provider,
    pub secrets: Vec<Secret>,
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
    Sha256,
    Sha512,
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
