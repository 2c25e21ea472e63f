//! Identifiers. Parse, don't validate: a `TenantId` exists only if its text was a UUID.

use std::fmt;

use uuid::Uuid;

/// True when `s` is a hyphenated RFC 9562 UUID of versions 1-8 with the RFC variant.
///
/// Upstream accepts versions 1-5 only; we also accept 6-8 (v7 ids are common in newer
/// systems). The nil and max UUIDs are refused: they are never real tenants or users.
pub fn is_uuid(s: &str) -> bool {
    if s.len() != 36 {
        return false;
    }
    let Ok(u) = Uuid::try_parse(s) else {
        return false;
    };
    let b = s.as_bytes();
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return false;
    }
    matches!(u.get_version_num(), 1..=8) && u.get_variant() == uuid::Variant::RFC4122
}

/// Parses a UUID in the form [`is_uuid`] accepts.
pub fn parse_uuid(s: &str) -> Option<Uuid> {
    if is_uuid(s) {
        Uuid::try_parse(s).ok()
    } else {
        None
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Parses the text form; `None` when it is not an accepted UUID.
            pub fn parse(s: &str) -> Option<Self> {
                parse_uuid(s).map($name)
            }
            /// Wraps a UUID the service generated or loaded.
            pub fn from_uuid(u: Uuid) -> Self {
                $name(u)
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// The tenant a request acts for.
    TenantId
);
uuid_id!(
    /// The organisation (within a tenant) a request acts for.
    OrganisationId
);
uuid_id!(
    /// The user a request acts as.
    UserId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_rfc_uuids_of_versions_1_to_8() {
        for s in [
            "6ba7b810-9dad-11d1-80b4-00c04fd430c8", // v1
            "0f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6e", // v4
            "017f22e2-79b0-7cc3-98c4-dc0c0c07398f", // v7
            "0F3D1C9E-6A1B-4B2C-9D3E-1F2A3B4C5D6E", // upper case
        ] {
            assert!(is_uuid(s), "{s}");
        }
    }

    #[test]
    fn refuses_non_uuids_nil_and_wrong_variant() {
        for s in [
            "",
            "system",
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "0f3d1c9e-6a1b-0b2c-9d3e-1f2a3b4c5d6e", // version 0
            "0f3d1c9e-6a1b-4b2c-1d3e-1f2a3b4c5d6e", // NCS variant
            "0f3d1c9e6a1b4b2c9d3e1f2a3b4c5d6e",     // simple form
            "{0f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6e}",
            "0f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6",
        ] {
            assert!(!is_uuid(s), "{s}");
        }
    }

    #[test]
    fn ids_display_lowercase_hyphenated() {
        let t = TenantId::parse("0F3D1C9E-6A1B-4B2C-9D3E-1F2A3B4C5D6E").unwrap();
        assert_eq!(t.to_string(), "0f3d1c9e-6a1b-4b2c-9d3e-1f2a3b4c5d6e");
    }
}

/// The tenant and organisation every read and write is confined to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope {
    pub tenant: TenantId,
    pub organisation: OrganisationId,
}
