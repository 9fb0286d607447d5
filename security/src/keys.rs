//! Signing and verification keys: a directory of Ed25519 PEM files, an ephemeral
//! Ed25519 key, an HS256 secret, or (for a verifier) the JWKS of the auth service.

use std::collections::BTreeMap;
use std::path::Path;

use authstream_proto::auth::{Jwk, Jwks};
pub use authstream_verify::token::install_crypto_provider;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    EdDSA,
    HS256,
}

impl Algorithm {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "EdDSA" => Ok(Self::EdDSA),
            "HS256" => Ok(Self::HS256),
            other => Err(format!("expected EdDSA or HS256, got {other:?}")),
        }
    }

    pub fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Self::HS256 => jsonwebtoken::Algorithm::HS256,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a PKCS#8 PEM Ed25519 private key")]
    BadPem { path: String },
    #[error("no .pem files in {0}")]
    EmptyDir(String),
    #[error("the HS256 secret must be at least 32 bytes")]
    ShortSecret,
    #[error("cannot generate a key")]
    Generate,
    #[error("bad JWKS document: {0}")]
    BadJwks(String),
}

/// The keys of one service: the one that signs (if any) and all that verify.
#[derive(Clone)]
pub struct KeySet {
    algorithm: Algorithm,
    signing: Option<(String, EncodingKey)>,
    verifying: BTreeMap<String, DecodingKey>,
    public_jwks: Vec<Jwk>,
    ephemeral: bool,
    /// The HMAC key of what the service signs that is not a JWT (device cookies),
    /// derived from the signing key: every replica with the same keys agrees.
    mac: Option<ring::hmac::Key>,
}

/// A MAC key of its own for the signing secret, so that no MAC is ever a signature.
fn derive_mac(secret: &[u8]) -> ring::hmac::Key {
    let derive = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let derived = ring::hmac::sign(&derive, b"authstream mac key v1");
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref())
}

impl KeySet {
    fn empty(algorithm: Algorithm) -> Self {
        install_crypto_provider();
        Self {
            algorithm,
            signing: None,
            verifying: BTreeMap::new(),
            public_jwks: Vec::new(),
            ephemeral: false,
            mac: None,
        }
    }

    /// Every `*.pem` in `dir`; the file name without `.pem` is the `kid`, the last
    /// name in sort order signs, all verify.
    pub fn from_dir(dir: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pem"))
            .collect();
        files.sort();
        let mut set = Self::empty(Algorithm::EdDSA);
        for path in &files {
            let kid = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
                path: path.display().to_string(),
                source,
            })?;
            let der = pem_to_der(&pem).ok_or_else(|| KeyError::BadPem {
                path: path.display().to_string(),
            })?;
            set.add_ed25519(kid, &der).map_err(|_| KeyError::BadPem {
                path: path.display().to_string(),
            })?;
        }
        if files.is_empty() {
            return Err(KeyError::EmptyDir(dir.display().to_string()));
        }
        Ok(set)
    }

    /// A fresh Ed25519 key that lives as long as the process.
    pub fn ephemeral() -> Result<Self, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generate)?;
        let mut kid_bytes = [0u8; 6];
        ring::rand::SecureRandom::fill(&rng, &mut kid_bytes).map_err(|_| KeyError::Generate)?;
        let mut set = Self::empty(Algorithm::EdDSA);
        set.add_ed25519(
            format!("ephemeral-{}", hex::encode(kid_bytes)),
            pkcs8.as_ref(),
        )?;
        set.ephemeral = true;
        Ok(set)
    }

    /// A shared HS256 secret; it both signs and verifies and is never published.
    pub fn hs256(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::ShortSecret);
        }
        let mut set = Self::empty(Algorithm::HS256);
        set.signing = Some(("hs256".to_owned(), EncodingKey::from_secret(secret)));
        set.mac = Some(derive_mac(secret));
        set.verifying
            .insert("hs256".to_owned(), DecodingKey::from_secret(secret));
        Ok(set)
    }

    /// Verification keys from a JWKS document: the keys the verification core takes
    /// (`authstream_verify::jwks::parse_jwks`: Ed25519 signing keys with a `kid`).
    pub fn from_jwks(doc: &Value) -> Result<Self, KeyError> {
        let mut set = Self::empty(Algorithm::EdDSA);
        for key in authstream_verify::jwks::parse_jwks(doc).map_err(KeyError::BadJwks)? {
            set.public_jwks.push(Jwk::ed25519(key.kid.clone(), key.x));
            set.verifying.insert(key.kid, key.key);
        }
        Ok(set)
    }

    fn add_ed25519(&mut self, kid: String, pkcs8_der: &[u8]) -> Result<(), KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8_der)
            .map_err(|_| KeyError::Generate)?;
        let public = pair.public_key().as_ref();
        self.verifying
            .insert(kid.clone(), DecodingKey::from_ed_der(public));
        self.public_jwks
            .push(Jwk::ed25519(kid.clone(), URL_SAFE_NO_PAD.encode(public)));
        // Files are added in sort order, so the last one added signs.
        self.signing = Some((kid, EncodingKey::from_ed_der(pkcs8_der)));
        self.mac = Some(derive_mac(pkcs8_der));
        Ok(())
    }

    /// HMAC-SHA256 of `message` under the key derived from the signing key; `None`
    /// for a verifier, which holds no private key.
    pub fn mac(&self, message: &[u8]) -> Option<[u8; 32]> {
        let tag = ring::hmac::sign(self.mac.as_ref()?, message);
        tag.as_ref().try_into().ok()
    }

    /// Whether `tag` is `message`'s `mac`, compared in constant time.
    pub fn mac_verifies(&self, message: &[u8], tag: &[u8]) -> bool {
        self.mac
            .as_ref()
            .is_some_and(|key| ring::hmac::verify(key, message, tag).is_ok())
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    /// Every verifying `kid`, in sort order (the last of a key directory signs).
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.verifying.keys().map(String::as_str)
    }

    pub fn signing_key(&self) -> Option<(&str, &EncodingKey)> {
        self.signing.as_ref().map(|(kid, key)| (kid.as_str(), key))
    }

    pub fn verifying_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.verifying.get(kid)
    }

    /// The JWKS document of the public keys (empty for HS256).
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self.public_jwks.clone(),
        }
    }

    /// The JWKS document as JSON (what `from_jwks` reads).
    pub fn jwks_json(&self) -> Value {
        serde_json::to_value(self.jwks()).unwrap_or_default()
    }
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .map(str::trim)
        .collect();
    if body.is_empty() {
        return None;
    }
    STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_file_signs_and_all_verify() {
        let dir = std::env::temp_dir().join(format!("keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["2026-10", "2026-11"] {
            let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                STANDARD.encode(doc.as_ref())
            );
            std::fs::write(dir.join(format!("{name}.pem")), pem).unwrap();
        }
        std::fs::write(dir.join("README.txt"), "not a key").unwrap();
        let set = KeySet::from_dir(&dir).unwrap();
        assert_eq!(set.signing_key().unwrap().0, "2026-11");
        assert!(set.verifying_key("2026-10").is_some());
        assert_eq!(set.jwks_json()["keys"].as_array().unwrap().len(), 2);
        let again = KeySet::from_jwks(&set.jwks_json()).unwrap();
        assert!(again.verifying_key("2026-10").is_some() && again.signing_key().is_none());
    }

    #[test]
    fn bad_pem_and_short_secret_are_errors() {
        let dir = std::env::temp_dir().join(format!("keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.pem"), "garbage").unwrap();
        assert!(matches!(
            KeySet::from_dir(&dir),
            Err(KeyError::BadPem { .. })
        ));
        assert!(matches!(
            KeySet::hs256(b"short"),
            Err(KeyError::ShortSecret)
        ));
    }
}
