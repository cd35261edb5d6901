//! Public-key signatures (docs/providers.md): Ed25519 for Discord and Standard Webhooks `v1a`,
//! ECDSA P-256 with SHA-256 for SendGrid, by RustCrypto's `ed25519-dalek` and `p256`.
//! The keys were parsed at load (`config::keys`), so only the signature can be bad here.

use ed25519_dalek::Signature as Ed25519Signature;
use p256::ecdsa::signature::DigestVerifier;
use p256::ecdsa::Signature as P256Signature;
use sha2::{Digest, Sha256};

use crate::route::PublicKey;

/// Whether any Ed25519 key signed `message` with this 64-byte signature. Strict: small-
/// order keys and non-canonical signatures are refused, as libsodium (PyNaCl, Discord's
/// samples) refuses them.
pub(super) fn ed25519_signs(keys: &[PublicKey], message: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = Ed25519Signature::from_slice(signature) else {
        return false;
    };
    keys.iter().any(|key| match key {
        PublicKey::Ed25519(key) => key.verify_strict(message, &signature).is_ok(),
        PublicKey::P256(_) => false,
    })
}

/// Whether any P-256 key signed `message` with this DER signature. Both `s` and `n - s`
/// verify, as they do in the SDKs SendGrid documents (Python `ecdsa`, Java, Go).
/// The message is hashed from its parts, so a large body is not copied to be signed.
pub(super) fn p256_signs(keys: &[PublicKey], message: &[&[u8]], der: &[u8]) -> bool {
    let Ok(signature) = P256Signature::from_der(der) else {
        return false;
    };
    let signature = signature.normalize_s().unwrap_or(signature);
    let mut digest = Sha256::new();
    for part in message {
        digest.update(part);
    }
    keys.iter().any(|key| match key {
        PublicKey::P256(key) => key.verify_digest(digest.clone(), &signature).is_ok(),
        PublicKey::Ed25519(_) => false,
    })
}
