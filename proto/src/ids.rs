//! Id newtypes. Each is built by `parse` (or generated), so a value of the type is
//! always well formed; on the wire each is a plain string.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdError(pub &'static str);

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for IdError {}

/// 1 to `max` bytes, each one of `A-Z a-z 0-9` or `extra`.
fn check(raw: &str, max: usize, extra: &[u8], rule: &'static str) -> Result<(), IdError> {
    if raw.is_empty() || raw.len() > max {
        return Err(IdError(match max {
            128 => "must be 1 to 128 characters",
            _ => "must be 1 to 64 characters",
        }));
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    {
        return Err(IdError(rule));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $max:expr, $extra:expr, $rule:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The id, if `raw` is well formed.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                check(raw, $max, $extra, $rule)?;
                Ok(Self(raw.to_owned()))
            }

            /// The id as it is on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id's string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(raw: &str) -> Result<Self, IdError> {
                Self::parse(raw)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

const GENERATION_ID_CHARS: &[u8] = b"._~:-";

id_type!(
    /// A generation: 1–128 of `A-Z a-z 0-9 . _ ~ : -` (what fits a URL path segment
    /// and a store key unescaped).
    GenerationId, 128, GENERATION_ID_CHARS, "may only hold A-Z a-z 0-9 . _ ~ : -"
);

id_type!(
    /// A user (a UUID the auth service generates; parsed as 1–64 of
    /// `A-Z a-z 0-9 - _`).
    UserId, 64, b"-_", "may only hold A-Z a-z 0-9 - _"
);

id_type!(
    /// A session (one per login; parsed as 1–64 of `A-Z a-z 0-9 - _`).
    SessionId, 64, b"-_", "may only hold A-Z a-z 0-9 - _"
);

id_type!(
    /// A service client, as configured (`SERVICE_CLIENTS`): 1–64 of
    /// `A-Z a-z 0-9 . _ -`.
    ClientId, 64, b"._-", "may only hold A-Z a-z 0-9 . _ -"
);

impl GenerationId {
    /// A new random id (a UUID v4).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl UserId {
    /// A new random id (a UUID v4).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl SessionId {
    /// A new random id (a UUID v4).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl From<IdError> for String {
    fn from(e: IdError) -> Self {
        e.0.to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generation_id_rules() {
        assert!(GenerationId::parse("abc-123").is_ok());
        assert!(GenerationId::parse("a.b_c~d:e-F9").is_ok());
        assert!(GenerationId::parse(&"x".repeat(128)).is_ok());
        for bad in ["", "a b", "a/b", "ü", "{x}", &"x".repeat(129)] {
            assert!(GenerationId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_plain_strings_on_the_wire_and_checked_when_read() {
        let id = GenerationId::parse("g-1").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""g-1""#);
        assert_eq!(
            serde_json::from_str::<GenerationId>(r#""g-1""#).unwrap(),
            id
        );
        assert!(serde_json::from_str::<GenerationId>(r#""a/b""#).is_err());
        assert!(UserId::parse(UserId::generate().as_str()).is_ok());
        assert!(ClientId::parse("backend").is_ok());
        assert!(ClientId::parse("a:b").is_err());
    }
}
