//! Lenient field deserialisers shared by query strings (where every value is text) and JSON
//! bodies (where the same field may be a number), so one DTO serves `GET ?limit=10` and
//! `POST {"limit": 10}`.

use std::fmt::Display;
use std::str::FromStr;

use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn from_text<T: FromStr, E: Error>(s: &str) -> Result<T, E>
where
    T::Err: Display,
{
    s.trim().parse::<T>().map_err(E::custom)
}

/// A number given as a JSON number or as text.
pub fn opt_num<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + DeserializeOwned,
    T::Err: Display,
{
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => from_text(&s).map(Some),
        other => T::deserialize(other).map(Some).map_err(D::Error::custom),
    }
}

/// A boolean given as JSON or as the text `true` / `false`.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        Value::String(s) => match s.trim() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            other => Err(D::Error::custom(format!(
                "must be true or false, not {other:?}"
            ))),
        },
        other => Err(D::Error::custom(format!("must be a boolean, not {other}"))),
    }
}

/// A list given as a JSON array, repeated query keys, or comma-separated text.
pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let items: Vec<Value> = match Value::deserialize(d)? {
        Value::Null => Vec::new(),
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| Value::String(p.to_string()))
            .collect(),
        Value::Array(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .map(|v| T::deserialize(v).map_err(D::Error::custom))
        .collect()
}

/// A field where absent (`None`), `null` (`Some(None)`) and a value differ: PATCH bodies.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
