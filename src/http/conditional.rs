//! Conditional answers for the learner's views: an `ETag` on every 200, and 304 with no body
//! when the request's `If-None-Match` names the current one.
//!
//! The tags are weak (RFC 9110 §8.8.1): the envelope around a view (its `ts`, its message ids)
//! differs per response, the view inside it does not. A view that knows what it was rendered
//! from names its tag itself (the learner hierarchy: the test and its `updatedAt`); the others
//! are tagged by a digest of their `result`, so a client that polls a view saves the transfer
//! and the parsing, and a change of any byte of the view changes the tag.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::envelope::ApiOk;

/// `result` as a 200 with `etag`, or a 304 when `If-None-Match` names `etag`.
pub fn respond<T: Serialize>(headers: &HeaderMap, etag: String, result: T) -> Response {
    // A cache may keep the view for this caller only, and must ask again each time (the
    // tag makes asking cheap).
    let cache = (header::CACHE_CONTROL, REVALIDATE);
    if if_none_match(headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)], [cache]).into_response();
    }
    ([(header::ETAG, etag)], [cache], ApiOk::ok(result)).into_response()
}

/// `Cache-Control` of a tagged view.
pub const REVALIDATE: &str = "private, no-cache";

/// `result` tagged by a digest of its JSON, as [`respond`] answers it. The JSON is made once:
/// the digest and the response body are the same bytes.
pub fn respond_digest<T: Serialize>(headers: &HeaderMap, result: T) -> Response {
    match serde_json::to_string(&result).and_then(serde_json::value::RawValue::from_string) {
        Ok(raw) => respond(headers, digest_tag(raw.get().as_bytes()), raw),
        // Not reached for the views' JSON values; answered untagged rather than failed.
        Err(_) => ApiOk::ok(result).into_response(),
    }
}

/// A weak tag from the first 16 bytes of the SHA-256 of `bytes`.
fn digest_tag(bytes: &[u8]) -> String {
    let sum = Sha256::digest(bytes);
    let hex: String = sum[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for it), or is `*`.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn asking(tag: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, tag.parse().unwrap());
        h
    }

    #[test]
    fn tags_compare_weakly_and_in_lists() {
        let tag = "W/\"abc\"";
        assert!(if_none_match(&asking("W/\"abc\""), tag));
        assert!(if_none_match(&asking("\"abc\""), tag));
        assert!(if_none_match(&asking("\"x\", W/\"abc\""), tag));
        assert!(if_none_match(&asking("*"), tag));
        assert!(!if_none_match(&asking("W/\"abd\""), tag));
        assert!(!if_none_match(&HeaderMap::new(), tag));
    }

    #[test]
    fn a_digest_tag_follows_every_byte_of_the_view() {
        let a = respond_digest(&HeaderMap::new(), json!({"answers": ["A"]}));
        let b = respond_digest(&HeaderMap::new(), json!({"answers": ["B"]}));
        let tag = |r: &Response| r.headers()[header::ETAG].to_str().unwrap().to_string();
        assert_eq!(a.status(), StatusCode::OK);
        assert_ne!(tag(&a), tag(&b));
        assert!(tag(&a).starts_with("W/\""));
        let again = respond_digest(&asking(&tag(&a)), json!({"answers": ["A"]}));
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(tag(&again), tag(&a));
        let changed = respond_digest(&asking(&tag(&a)), json!({"answers": ["B"]}));
        assert_eq!(changed.status(), StatusCode::OK);
    }
}
