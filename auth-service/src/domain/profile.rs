/// A display name: at most 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim();
        if name.chars().count() > 100 {
            return Err("must be at most 100 characters");
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Self(name.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// User preferences: a JSON object of at most 4 KiB.
#[derive(Debug, Clone, PartialEq)]
pub struct Preferences(serde_json::Map<String, serde_json::Value>);

impl Preferences {
    pub fn parse(raw: serde_json::Value) -> Result<Self, &'static str> {
        let serde_json::Value::Object(map) = raw else {
            return Err("must be a JSON object");
        };
        if serde_json::to_string(&map).map_or(true, |s| s.len() > 4096) {
            return Err("must be at most 4 KiB");
        }
        Ok(Self(map))
    }

    pub fn into_inner(self) -> serde_json::Map<String, serde_json::Value> {
        self.0
    }
}

/// A role name: 1-64 of `a-z 0-9 _ : -`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role(String);

impl Role {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b':' | b'-')
            });
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err("roles are 1-64 of a-z 0-9 _ : -")
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}
