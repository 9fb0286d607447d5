//! Device cookies (OWASP's "device cookies" against account lockout): a successful
//! login hands the device a signed token naming the account; a later login that
//! presents a valid one for the same account is exempt from the account-wide
//! failed-login cap and spends that device's own budget instead, so failures from
//! elsewhere never lock the owner out. Browsers keep it as the `as_device` cookie
//! (`HttpOnly`, `SameSite=Strict`, path `/auth/login`); other clients get it in the
//! login body as `device_token` and send it back in the `X-Device-Token` header.
//!
//! `v1.<user id>.<device id>.<issued, Unix seconds>.<HMAC-SHA256>`, the MAC under a
//! key derived from the signing key (`KeySet::mac`). It grants nothing by itself.

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use authstream_runtime::UnixTime;
use authstream_security::keys::KeySet;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom as _;

pub const COOKIE: &str = "as_device";
pub const HEADER: &str = "x-device-token";
/// How long a device stays known after its last successful login.
pub const MAX_AGE: Duration = Duration::from_secs(180 * 24 * 3600);

/// A device that signed in to `user_id` at `issued`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceToken {
    pub user_id: String,
    pub device_id: String,
    pub issued: i64,
}

impl DeviceToken {
    /// A device seen for the first time.
    pub fn new(user_id: &str, now: UnixTime) -> Option<Self> {
        let mut id = [0u8; 16];
        ring::rand::SystemRandom::new().fill(&mut id).ok()?;
        Some(Self {
            user_id: user_id.to_owned(),
            device_id: URL_SAFE_NO_PAD.encode(id),
            issued: now.secs(),
        })
    }

    /// The same device after another successful login: its budget stays its own.
    pub fn renewed(&self, now: UnixTime) -> Self {
        Self {
            issued: now.secs(),
            ..self.clone()
        }
    }

    fn payload(&self) -> String {
        format!("v1.{}.{}.{}", self.user_id, self.device_id, self.issued)
    }

    /// The signed token; `None` for a service without a signing key.
    pub fn sign(&self, keys: &KeySet) -> Option<String> {
        let payload = self.payload();
        let mac = keys.mac(payload.as_bytes())?;
        Some(format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac)))
    }

    /// A token this service signed, not older than `MAX_AGE`; anything else is `None`.
    pub fn parse(raw: &str, keys: &KeySet, now: UnixTime) -> Option<Self> {
        let (payload, mac) = raw.rsplit_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        if raw.len() > 256 || !keys.mac_verifies(payload.as_bytes(), &mac) {
            return None;
        }
        let mut parts = payload.split('.');
        let (Some("v1"), Some(user_id), Some(device_id), Some(issued), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let issued: i64 = issued.parse().ok()?;
        let age = now.secs().checked_sub(issued)?;
        let max = i64::try_from(MAX_AGE.as_secs()).ok()?;
        (0..=max).contains(&age).then(|| Self {
            user_id: user_id.to_owned(),
            device_id: device_id.to_owned(),
            issued,
        })
    }

    /// The device token a request presents: the header, else the cookie.
    pub fn presented(req: &HttpRequest, keys: &KeySet, now: UnixTime) -> Option<Self> {
        let raw = req
            .headers()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| req.cookie(COOKIE).map(|c| c.value().to_owned()))?;
        Self::parse(&raw, keys, now)
    }
}

/// The cookie that keeps `token` in a browser.
pub fn cookie(token: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(COOKIE, token.to_owned())
        .path("/auth/login")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(
            i64::try_from(MAX_AGE.as_secs()).unwrap_or(i64::MAX),
        ))
        .finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_this_services_fresh_tokens_parse() {
        let keys = KeySet::ephemeral().unwrap();
        let now = UnixTime::from_secs(1_800_000_000);
        let device = DeviceToken::new("user-1", now).unwrap();
        let signed = device.sign(&keys).unwrap();
        assert_eq!(
            DeviceToken::parse(&signed, &keys, now),
            Some(device.clone())
        );
        // Another service's key, a changed account, an old or future token: none.
        let other = KeySet::ephemeral().unwrap();
        assert_eq!(DeviceToken::parse(&signed, &other, now), None);
        let forged = signed.replacen("user-1", "user-2", 1);
        assert_eq!(DeviceToken::parse(&forged, &keys, now), None);
        let late = UnixTime::from_secs(now.secs() + 181 * 24 * 3600);
        assert_eq!(DeviceToken::parse(&signed, &keys, late), None);
        let early = UnixTime::from_secs(now.secs() - 10);
        assert_eq!(DeviceToken::parse(&signed, &keys, early), None);
        for junk in ["", "v1", "v1.a.b.c.d", "....", "v1.a.b.1.!!"] {
            assert_eq!(DeviceToken::parse(junk, &keys, now), None, "{junk}");
        }
        // A renewal keeps the device.
        let renewed = device.renewed(UnixTime::from_secs(now.secs() + 5));
        assert_eq!(renewed.device_id, device.device_id);
    }
}
