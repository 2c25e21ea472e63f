//! Uploaded files: where an object lives (its key, scoped by tenant, organisation and
//! learner), which kinds are accepted, and whether a file's bytes are what its name says.

use std::fmt;

use uuid::Uuid;

/// The kinds upstream accepts, by extension, with the content types a browser may send.
const KINDS: &[(&str, &[&str])] = &[
    ("pdf", &["application/pdf"]),
    ("doc", &["application/msword"]),
    (
        "docx",
        &["application/vnd.openxmlformats-officedocument.wordprocessingml.document"],
    ),
    ("jpg", &["image/jpeg", "image/jpg"]),
    ("jpeg", &["image/jpeg", "image/jpg"]),
    ("png", &["image/png"]),
    ("gif", &["image/gif"]),
    ("webp", &["image/webp"]),
    ("mp4", &["video/mp4", "application/octet-stream"]),
];

/// Upstream's default list of accepted extensions.
pub const DEFAULT_EXTENSIONS: &str = "pdf,doc,docx,jpg,jpeg,png,gif,webp,mp4";

/// Whether `ext` is a kind this service can check (lower case).
pub fn known_extension(ext: &str) -> bool {
    KINDS.iter().any(|(e, _)| *e == ext)
}

/// The content type served for `ext`.
pub fn content_type(ext: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, types)| types[0])
        .unwrap_or("application/octet-stream")
}

/// The lower-case extension of a file name, when it has one of 1 to 15 letters or digits.
pub fn extension(name: &str) -> Option<String> {
    let (_, ext) = name.rsplit_once('.')?;
    let ok = (1..=15).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphanumeric());
    ok.then(|| ext.to_ascii_lowercase())
}

/// Whether a part sent as `declared` may hold an `ext` file (an absent type is allowed: the
/// content check decides).
pub fn type_matches(ext: &str, declared: Option<&str>) -> bool {
    let Some(declared) = declared else {
        return true;
    };
    let declared = declared.split(';').next().unwrap_or("").trim();
    KINDS
        .iter()
        .find(|(e, _)| *e == ext)
        .is_some_and(|(_, types)| types.iter().any(|t| t.eq_ignore_ascii_case(declared)))
}

/// Whether `bytes` begin as an `ext` file does (its signature): a renamed file is refused.
pub fn content_matches(ext: &str, bytes: &[u8]) -> bool {
    let starts = |sig: &[u8]| bytes.starts_with(sig);
    match ext {
        "pdf" => starts(b"%PDF-"),
        // Word 97-2003: an OLE compound file.
        "doc" => starts(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]),
        // Office Open XML: a ZIP archive.
        "docx" => starts(b"PK\x03\x04"),
        "jpg" | "jpeg" => starts(&[0xFF, 0xD8, 0xFF]),
        "png" => starts(b"\x89PNG\r\n\x1a\n"),
        "gif" => starts(b"GIF87a") || starts(b"GIF89a"),
        "webp" => bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP",
        "mp4" => bytes.len() >= 12 && &bytes[4..8] == b"ftyp",
        _ => false,
    }
}

/// Where an uploaded object lives: `{prefix}/{tenant}/{organisation}/{user}/{id}_{ms}.{ext}`.
/// Its owner is in the key itself, so a key names its scope and can be checked without a
/// database row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileKey {
    pub prefix: String,
    pub tenant: Uuid,
    pub organisation: Uuid,
    pub user: Uuid,
    pub id: Uuid,
    pub millis: i64,
    pub ext: String,
}

impl fmt::Display for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}/{}_{}.{}",
            self.prefix, self.tenant, self.organisation, self.user, self.id, self.millis, self.ext
        )
    }
}

impl FileKey {
    /// Reads a key made by [`FileKey`]'s `Display` under `prefix`; anything else (another
    /// prefix, `..`, a name of another form) is `None`.
    pub fn parse(prefix: &str, key: &str) -> Option<FileKey> {
        let rest = key.strip_prefix(prefix)?.strip_prefix('/')?;
        let mut parts = rest.split('/');
        let (tenant, organisation, user, name) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let (stem, ext) = name.rsplit_once('.')?;
        let (id, millis) = stem.split_once('_')?;
        let parsed = FileKey {
            prefix: prefix.to_string(),
            tenant: Uuid::parse_str(tenant).ok()?,
            organisation: Uuid::parse_str(organisation).ok()?,
            user: Uuid::parse_str(user).ok()?,
            id: Uuid::parse_str(id).ok()?,
            millis: millis.parse().ok()?,
            ext: ext.to_string(),
        };
        // Only the canonical spelling names the object (no upper-case or braced UUIDs).
        (parsed.to_string() == key && known_extension(&parsed.ext)).then_some(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FileKey {
        FileKey {
            prefix: "assessment/feedback-files".into(),
            tenant: Uuid::from_u128(1),
            organisation: Uuid::from_u128(2),
            user: Uuid::from_u128(3),
            id: Uuid::from_u128(4),
            millis: 1_700_000_000_000,
            ext: "pdf".into(),
        }
    }

    #[test]
    fn keys_round_trip_and_nothing_else_parses() {
        let k = key();
        let text = k.to_string();
        assert_eq!(FileKey::parse(&k.prefix, &text), Some(k.clone()));
        for bad in [
            text.replace("assessment/", "other/"),
            format!("{text}/x"),
            text.replace(".pdf", ".exe"),
            text.replacen("/0000", "/../0000", 1),
            text.to_uppercase(),
            format!("{}/../{}", k.prefix, &text[k.prefix.len() + 1..]),
        ] {
            assert_eq!(FileKey::parse(&k.prefix, &bad), None, "{bad}");
        }
    }

    #[test]
    fn contents_must_match_their_extension() {
        assert!(content_matches("pdf", b"%PDF-1.7\n..."));
        assert!(!content_matches("pdf", b"\x89PNG\r\n\x1a\n...."));
        assert!(content_matches("png", b"\x89PNG\r\n\x1a\n...."));
        assert!(content_matches("webp", b"RIFF\0\0\0\0WEBPVP8 "));
        assert!(content_matches("mp4", b"\0\0\0\x18ftypmp42...."));
        assert!(!content_matches("jpg", b"GIF89a"));
        assert!(type_matches("jpg", Some("image/jpeg")));
        assert!(type_matches("pdf", Some("application/pdf; charset=binary")));
        assert!(!type_matches("pdf", Some("image/png")));
        assert!(type_matches("mp4", None));
        assert_eq!(extension("Report.PDF").as_deref(), Some("pdf"));
        assert_eq!(extension("noext"), None);
    }
}
