//! A value that must never reach a log line or an error message: API keys, signing secrets,
//! the JWT secret, the database password.
//!
//! `Debug` and `Display` print `[redacted]`; the value is read only through
//! [`Secret::expose`], so every use of the clear text is visible in the code. There is no
//! `Serialize`: a secret is never written out by accident.

use std::fmt;

/// A string whose formatting hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The clear text, for the one place that needs it (a key, a header, a URL).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Also what clap uses to read a secret from a flag or an environment variable.
impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

/// Read from a string (plugins files).
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let s = Secret::from("hunter2-and-more");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some([redacted])");
        assert_eq!(s.expose(), "hunter2-and-more");
    }

    #[test]
    fn reads_from_a_string() {
        let s: Secret = serde_json::from_str(r#""whsec_abc""#).unwrap();
        assert_eq!(s.expose(), "whsec_abc");
        assert!(serde_json::from_str::<Secret>("3").is_err());
    }
}
