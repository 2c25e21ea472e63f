//! Request extractors whose failures are 4xx envelopes with upstream-style messages.
//!
//! - [`ValidJson`]: a JSON body. DTOs use `#[serde(deny_unknown_fields)]`, and an unknown
//!   property is reported as upstream's `forbidNonWhitelisted` does: `property foo should not
//!   exist`. A missing required field reads `title should not be empty`; a wrong type names
//!   the field path (`options[0].marks: invalid type: string "x", expected ...`).
//! - [`ValidQuery`]: the query string, with the same messages.
//! - [`path_uuid`]: a UUID path parameter (`Validation failed (uuid is expected)`).
//!
//! Both refuse text holding a NUL character (`\u0000` in JSON, `%00` in a query string), in
//! any value or property name: PostgreSQL cannot store it in text and SQLite would, so it is
//! refused here, before either database sees it (`title must not contain the NUL character`).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::domain::ids::parse_uuid;
use crate::error::AppError;

/// A JSON request body of type `T`.
#[derive(Debug, Clone)]
pub struct ValidJson<T>(pub T);

fn is_json_content_type(value: &str) -> bool {
    let mime = value.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/json")
        || (mime.len() > 5 && mime[mime.len() - 5..].eq_ignore_ascii_case("+json"))
}

impl<S, T> FromRequest<S> for ValidJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json_content_type(content_type) {
            return Err(AppError::UnsupportedMediaType(
                "Content-Type must be application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge("Request body is too large".into())
            } else {
                AppError::validation(format!("Could not read the request body: {rejection}"))
            }
        })?;
        parse_json(&bytes).map(ValidJson)
    }
}

/// Deserialises a JSON document into `T` with path-aware, upstream-style messages.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    // JSON text can only carry NUL escaped; look closer only when the escape is there.
    if contains(bytes, br"\u0000")
        && let Ok(value) = serde_json::from_slice::<Value>(bytes)
    {
        refuse_nul(&value)?;
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            AppError::validation(format!("Request body is not valid JSON: {inner}"))
        } else {
            AppError::validation(describe(&path, &strip_position(&inner.to_string())))
        }
    })?;
    de.end()
        .map_err(|e| AppError::validation(format!("Request body is not valid JSON: {e}")))?;
    Ok(value)
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn backticked(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

/// Turns a serde message at `path` into the wording clients of upstream know.
fn describe(path: &str, msg: &str) -> String {
    let prefix = if path == "." || path.is_empty() {
        String::new()
    } else {
        format!("{path}.")
    };
    if msg.starts_with("unknown field") {
        // The path already ends with the unknown field's name.
        if prefix.is_empty()
            && let Some(field) = backticked(msg)
        {
            return format!("property {field} should not exist");
        }
        return format!("property {path} should not exist");
    }
    if msg.starts_with("missing field")
        && let Some(field) = backticked(msg)
    {
        return format!("{prefix}{field} should not be empty");
    }
    if prefix.is_empty() {
        msg.to_string()
    } else {
        format!("{path}: {msg}")
    }
}

/// The query string deserialised into `T`.
#[derive(Debug, Clone)]
pub struct ValidQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        parse_query(parts.uri.query().unwrap_or("")).map(ValidQuery)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Refuses a NUL character in any string or property name of `value`, naming where it is.
fn refuse_nul(value: &Value) -> Result<(), AppError> {
    match find_nul(value, String::new()) {
        None => Ok(()),
        Some(path) => {
            let what = if path.is_empty() {
                "The request".to_string()
            } else {
                path
            };
            Err(AppError::validation(format!(
                "{what} must not contain the NUL character (\\u0000)"
            )))
        }
    }
}

/// The path (`options[0].text`) of the first string holding NUL; for a property name, the
/// path of the object holding it (`params: a property name`).
fn find_nul(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_nul(v, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                let at = if path.is_empty() {
                    String::new()
                } else {
                    format!("{path}: ")
                };
                return Some(format!("{at}a property name"));
            }
            let child = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            find_nul(v, child)
        }),
        _ => None,
    }
}

/// Deserialises a query string into `T` with the messages of [`parse_json`].
///
/// The pairs become a JSON object first: a repeated key (`tags=a&tags=b`) or `key[]` makes an
/// array, `key[sub]=v` a nested object (`startDate[gte]=...`), so list and range filters work
/// in the forms upstream's clients send. Values stay text; DTOs read numbers and booleans
/// through [`crate::service::de`].
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, AppError> {
    let value = query_to_json(query);
    refuse_nul(&value)?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        AppError::validation(describe(&path, &e.into_inner().to_string()))
    })
}

fn insert_query_value(
    map: &mut serde_json::Map<String, Value>,
    key: &str,
    value: Value,
    force_array: bool,
) {
    match map.get_mut(key) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            let v = if force_array {
                Value::Array(vec![value])
            } else {
                value
            };
            map.insert(key.to_string(), v);
        }
    }
}

fn query_to_json(query: &str) -> Value {
    let mut map = serde_json::Map::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let value = Value::String(v.into_owned());
        if let Some(base) = k.strip_suffix("[]") {
            insert_query_value(&mut map, base, value, true);
        } else if let (Some(open), true) = (k.find('['), k.ends_with(']')) {
            let (base, sub) = (&k[..open], &k[open + 1..k.len() - 1]);
            let entry = map
                .entry(base.to_string())
                .or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(inner) = entry {
                insert_query_value(inner, sub, value, false);
            }
        } else {
            insert_query_value(&mut map, &k, value, false);
        }
    }
    Value::Object(map)
}

/// A UUID path parameter, or upstream's `ParseUUIDPipe` message.
pub fn path_uuid(value: &str) -> Result<Uuid, AppError> {
    parse_uuid(value).ok_or_else(|| AppError::validation("Validation failed (uuid is expected)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Option_ {
        text: String,
        marks: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body {
        title: String,
        #[serde(default)]
        options: Vec<Option_>,
    }

    fn err(json: &str) -> String {
        parse_json::<Body>(json.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn unknown_property_reads_like_upstream() {
        assert_eq!(
            err(r#"{"title":"t","foo":1}"#),
            "property foo should not exist"
        );
        assert_eq!(
            err(r#"{"title":"t","options":[{"text":"a","marks":1,"bar":2}]}"#),
            "property options[0].bar should not exist"
        );
    }

    #[test]
    fn missing_and_mistyped_fields_name_the_path() {
        assert_eq!(err(r#"{}"#), "title should not be empty");
        assert_eq!(
            err(r#"{"title":"t","options":[{"text":"a","marks":"x"}]}"#),
            "options[0].marks: invalid type: string \"x\", expected u32"
        );
    }

    #[test]
    fn syntax_errors_are_reported_as_such() {
        assert!(err("{").starts_with("Request body is not valid JSON"));
        assert!(err(r#"{"title":"t"} trailing"#).starts_with("Request body is not valid JSON"));
    }

    #[test]
    fn nul_characters_are_refused_wherever_they_are() {
        let nul = |path: &str| format!("{path} must not contain the NUL character (\\u0000)");
        assert_eq!(err(r#"{"title":"a\u0000b"}"#), nul("title"));
        assert_eq!(
            err(r#"{"title":"t","options":[{"text":"x","marks":1},{"text":"\u0000","marks":1}]}"#),
            nul("options[1].text")
        );
        let any = |json: &str| {
            parse_json::<Value>(json.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            any(r#"{"params":{"a\u0000":1}}"#),
            "params: a property name must not contain the NUL character (\\u0000)"
        );
        assert_eq!(any(r#""\u0000""#), nul("The request"));
        // An escaped backslash followed by `u0000` is text, not NUL.
        assert!(parse_json::<Body>(br#"{"title":"a\\u0000"}"#).is_ok());
        // Other control characters stay allowed.
        assert!(parse_json::<Body>(br#"{"title":"a\u0001\tb"}"#).is_ok());

        let query = |q: &str| parse_query::<Value>(q).unwrap_err().to_string();
        assert_eq!(query("search=a%00b"), nul("search"));
        assert_eq!(query("startDate[gte]=%00"), nul("startDate.gte"));
        assert_eq!(
            query("x%00=1"),
            "a property name must not contain the NUL character (\\u0000)"
        );
    }

    #[test]
    fn query_strings_use_the_same_messages() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Q {
            #[serde(default, deserialize_with = "crate::service::de::opt_num")]
            limit: Option<u32>,
            #[serde(default, deserialize_with = "crate::service::de::list")]
            tags: Vec<String>,
            #[serde(default)]
            start: Option<std::collections::BTreeMap<String, String>>,
        }
        let q: Q = parse_query("tags=a&tags=b&start[gte]=2026-01-01").unwrap();
        assert_eq!(q.tags, vec!["a", "b"]);
        assert_eq!(q.start.unwrap()["gte"], "2026-01-01");
        let q: Q = parse_query("tags=b,c").unwrap();
        assert_eq!(q.tags, vec!["b", "c"]);
        let q: Q = parse_query("tags[]=x").unwrap();
        assert_eq!(q.tags, vec!["x"]);
        assert!(parse_query::<Q>("limit=5").is_ok());
        assert_eq!(
            parse_query::<Q>("limit=5&x=1").unwrap_err().to_string(),
            "property x should not exist"
        );
        assert!(parse_query::<Q>("limit=abc").is_err());
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("application/json; charset=utf-8"));
        assert!(is_json_content_type("application/merge-patch+json"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type(""));
    }

    #[test]
    fn path_uuids() {
        assert!(path_uuid("0f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6e").is_ok());
        assert_eq!(
            path_uuid("abc").unwrap_err().to_string(),
            "Validation failed (uuid is expected)"
        );
    }
}
