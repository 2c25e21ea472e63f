//! Exact marks and scores: hundredths of a mark held as an integer.
//!
//! Upstream sums JavaScript floats and rounds them in a `decimal(5,2)` column (capped at
//! 999.99). Here a mark is an integer count of hundredths, stored as BIGINT, summed exactly,
//! and shown on the wire as a JSON number with at most two decimals (`8.5`, `10`, `0.25`).

use std::fmt;
use std::iter::Sum;
use std::ops::Add;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative number of marks with two decimal places.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Marks(i64);

/// Why a value is not a valid number of marks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarksError {
    #[error("must be a number")]
    NotANumber,
    #[error("must not be negative")]
    Negative,
    #[error("must have at most two decimal places")]
    TooPrecise,
    #[error("must not exceed {}", Marks::MAX)]
    TooLarge,
}

impl Marks {
    pub const ZERO: Marks = Marks(0);
    /// Ten million marks: far beyond any test, far below overflow when summed.
    pub const MAX: Marks = Marks(1_000_000_000);

    /// Builds from hundredths (as stored). Refuses negative or oversized values.
    pub fn from_hundredths(h: i64) -> Result<Marks, MarksError> {
        if h < 0 {
            Err(MarksError::Negative)
        } else if h > Self::MAX.0 {
            Err(MarksError::TooLarge)
        } else {
            Ok(Marks(h))
        }
    }

    /// Whole marks.
    pub fn whole(n: u32) -> Marks {
        Marks(i64::from(n) * 100)
    }

    /// The stored form: hundredths of a mark.
    pub fn hundredths(self) -> i64 {
        self.0
    }

    /// Parses decimal text such as `8`, `8.5`, `8.50` (no exponent, at most two decimals).
    pub fn parse(s: &str) -> Result<Marks, MarksError> {
        let s = s.trim();
        if s.starts_with('-') {
            return Err(MarksError::Negative);
        }
        let s = s.strip_prefix('+').unwrap_or(s);
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() && frac.is_empty() {
            return Err(MarksError::NotANumber);
        }
        if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MarksError::NotANumber);
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > 2 {
            return Err(MarksError::TooPrecise);
        }
        let int_value: i64 = if int.is_empty() {
            0
        } else if int.trim_start_matches('0').len() > 12 {
            return Err(MarksError::TooLarge);
        } else {
            int.parse().map_err(|_| MarksError::NotANumber)?
        };
        let frac_value: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().map_err(|_| MarksError::NotANumber)? * 10,
            _ => frac.parse().map_err(|_| MarksError::NotANumber)?,
        };
        Marks::from_hundredths(int_value * 100 + frac_value)
    }

    /// Converts a JSON number. Accepts only values that are exactly a number of hundredths
    /// once printed in shortest form (so `0.1 + 0.2` style noise is refused, `8.25` is kept).
    pub fn from_f64(v: f64) -> Result<Marks, MarksError> {
        if !v.is_finite() {
            return Err(MarksError::NotANumber);
        }
        if v < 0.0 {
            return Err(MarksError::Negative);
        }
        if v > (Self::MAX.0 / 100) as f64 {
            return Err(MarksError::TooLarge);
        }
        // The shortest decimal text that round-trips is what the client wrote.
        Marks::parse(&format!("{v}"))
    }

    pub fn checked_add(self, other: Marks) -> Option<Marks> {
        Marks::from_hundredths(self.0.checked_add(other.0)?).ok()
    }

    /// `self - other`, never below zero.
    pub fn saturating_sub(self, other: Marks) -> Marks {
        Marks((self.0 - other.0).max(0))
    }

    /// The value as a float, for display and JSON only: never for arithmetic.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl TryFrom<i64> for Marks {
    type Error = MarksError;
    /// From the stored form (hundredths).
    fn try_from(h: i64) -> Result<Marks, MarksError> {
        Marks::from_hundredths(h)
    }
}

impl Add for Marks {
    type Output = Marks;
    /// Saturates at [`Marks::MAX`].
    fn add(self, rhs: Marks) -> Marks {
        Marks((self.0 + rhs.0).min(Self::MAX.0))
    }
}

impl Sum for Marks {
    fn sum<I: Iterator<Item = Marks>>(iter: I) -> Marks {
        iter.fold(Marks::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Marks {
    /// `8`, `8.5`, `8.25`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (int, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{int}"),
            n if n % 10 == 0 => write!(f, "{int}.{}", n / 10),
            n => write!(f, "{int}.{n:02}"),
        }
    }
}

impl Serialize for Marks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % 100 == 0 {
            s.serialize_i64(self.0 / 100)
        } else {
            // n/100 printed in shortest round-trip form is exactly the decimal n/100.
            s.serialize_f64(self.as_f64())
        }
    }
}

impl<'de> Deserialize<'de> for Marks {
    /// Accepts a JSON number or a decimal string (`"8.50"`, as upstream's database returns).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Marks, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Float(f64),
            Text(String),
        }
        let result = match Raw::deserialize(d)? {
            Raw::Int(n) => i64::try_from(n)
                .ok()
                .and_then(|n| n.checked_mul(100))
                .map_or(Err(MarksError::TooLarge), Marks::from_hundredths),
            Raw::Float(v) => Marks::from_f64(v),
            Raw::Text(t) => Marks::parse(&t),
        };
        result.map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_decimal_text() {
        assert_eq!(Marks::parse("8").unwrap().hundredths(), 800);
        assert_eq!(Marks::parse("8.5").unwrap().hundredths(), 850);
        assert_eq!(Marks::parse("8.50").unwrap().hundredths(), 850);
        assert_eq!(Marks::parse("0.25").unwrap().hundredths(), 25);
        assert_eq!(Marks::parse(".5").unwrap().hundredths(), 50);
        assert_eq!(Marks::parse("8.250").unwrap().hundredths(), 825);
        assert_eq!(Marks::parse("8.125"), Err(MarksError::TooPrecise));
        assert_eq!(Marks::parse("-1"), Err(MarksError::Negative));
        assert_eq!(Marks::parse("1e3"), Err(MarksError::NotANumber));
        assert_eq!(Marks::parse("."), Err(MarksError::NotANumber));
        assert_eq!(Marks::parse("99999999999999"), Err(MarksError::TooLarge));
    }

    #[test]
    fn json_numbers_and_strings() {
        let m: Marks = serde_json::from_str("8.25").unwrap();
        assert_eq!(m.hundredths(), 825);
        let m: Marks = serde_json::from_str("\"8.00\"").unwrap();
        assert_eq!(m.hundredths(), 800);
        assert!(serde_json::from_str::<Marks>("0.001").is_err());
        assert!(serde_json::from_str::<Marks>("-2").is_err());
        assert!(serde_json::from_str::<Marks>("true").is_err());
        assert_eq!(serde_json::to_string(&Marks::whole(10)).unwrap(), "10");
        assert_eq!(
            serde_json::to_string(&Marks::from_hundredths(850).unwrap()).unwrap(),
            "8.5"
        );
    }

    #[test]
    fn sums_are_exact() {
        // 0.1 + 0.2 in floats is 0.30000000000000004; in hundredths it is 30.
        let total: Marks = [10, 20].iter().map(|&h| Marks(h)).sum();
        assert_eq!(total.to_string(), "0.3");
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(h in 0i64..=Marks::MAX.0) {
            let m = Marks(h);
            prop_assert_eq!(Marks::parse(&m.to_string()).unwrap(), m);
        }

        #[test]
        fn json_round_trip(h in 0i64..=Marks::MAX.0) {
            let m = Marks(h);
            let text = serde_json::to_string(&m).unwrap();
            prop_assert_eq!(serde_json::from_str::<Marks>(&text).unwrap(), m);
        }

        #[test]
        fn parse_never_panics(s in ".{0,24}") {
            let _ = Marks::parse(&s);
        }
    }
}
