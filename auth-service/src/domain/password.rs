use secrecy::{ExposeSecret as _, SecretString};

/// A password of 8 to 1024 characters. Never printed: `Debug` is redacted by `SecretString`.
#[derive(Debug)]
pub struct Password(SecretString);

impl Password {
    pub fn parse(raw: SecretString) -> Result<Self, &'static str> {
        let chars = raw.expose_secret().chars().count();
        if chars < 8 {
            return Err("must be at least 8 characters");
        }
        if chars > 1024 {
            return Err("must be at most 1024 characters");
        }
        Ok(Self(raw))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_rules_count_characters() {
        assert!(Password::parse("seven77".into()).is_err());
        assert!(Password::parse("eight888".into()).is_ok());
        assert!(Password::parse("é".repeat(1024).into()).is_ok());
        assert!(Password::parse("x".repeat(1025).into()).is_err());
    }
}
