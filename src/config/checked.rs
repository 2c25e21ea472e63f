//! What the settings mean: each raw value parsed and checked, with the variable it came from
//! named in the error.

use super::*;

impl Config {
    /// A configuration with every default and the given database.
    pub fn with_database(url: impl Into<String>) -> Self {
        Config {
            database_url: Some(Secret::new(url)),
            ..Config::default()
        }
    }

    /// The global prefix without surrounding slashes, checked.
    pub fn prefix(&self) -> Result<String, ConfigError> {
        let p = self.assessment_prefix.trim_matches('/');
        let ok = !p.is_empty()
            && !p.contains("//")
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'));
        if ok {
            Ok(p.to_string())
        } else {
            Err(ConfigError::new(
                "ASSESSMENT_PREFIX",
                format!(
                    "{:?} is not a path prefix like `assessment/v1`",
                    self.assessment_prefix
                ),
            ))
        }
    }

    /// The database to use: `DATABASE_URL`, else the upstream `DB_*` variables, else SQLite.
    pub fn database(&self) -> Result<DatabaseUrl, ConfigError> {
        if let Some(url) = self
            .database_url
            .as_ref()
            .map(Secret::expose)
            .filter(|u| !u.trim().is_empty())
        {
            let url = url.trim();
            return if url.starts_with("sqlite:") {
                Ok(DatabaseUrl::Sqlite(url.to_string()))
            } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                url::Url::parse(url)
                    .map_err(|e| ConfigError::new("DATABASE_URL", e.to_string()))?;
                Ok(DatabaseUrl::Postgres(url.into()))
            } else {
                Err(ConfigError::new(
                    "DATABASE_URL",
                    "must start with sqlite: or postgres:// (or postgresql://)",
                ))
            };
        }
        if let Some(host) = self.db_host.as_deref().filter(|h| !h.trim().is_empty()) {
            let mut url = url::Url::parse("postgres://localhost/")
                .map_err(|e| ConfigError::new("DB_HOST", e.to_string()))?;
            url.set_host(Some(host.trim()))
                .map_err(|e| ConfigError::new("DB_HOST", format!("{host:?}: {e}")))?;
            url.set_port(Some(self.db_port.unwrap_or(5432)))
                .map_err(|_| ConfigError::new("DB_PORT", "cannot be used with this host"))?;
            url.set_username(self.db_username.as_deref().unwrap_or("postgres"))
                .map_err(|_| ConfigError::new("DB_USERNAME", "cannot be used in a URL"))?;
            if let Some(pw) = &self.db_password {
                url.set_password(Some(pw.expose()))
                    .map_err(|_| ConfigError::new("DB_PASSWORD", "cannot be used in a URL"))?;
            }
            url.set_path(self.db_database.as_deref().unwrap_or("assessment_db"));
            return Ok(DatabaseUrl::Postgres(url.to_string().into()));
        }
        Ok(DatabaseUrl::Sqlite(DEFAULT_DATABASE_URL.to_string()))
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// Allowed CORS origins; `None` means any.
    /// `TRUSTED_PROXIES` as networks (a bare address is a network of one).
    pub fn trusted_proxy_list(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::new(
                            "TRUSTED_PROXIES",
                            format!("{p:?} is not an address or network"),
                        )
                    })
            })
            .collect()
    }

    /// The largest upload in bytes (`ASSESSMENT_FILE_MAX_SIZE_MB`, kept within 1 to 100 MiB,
    /// as upstream).
    pub fn file_max_bytes(&self) -> u64 {
        self.file_max_size_mb.clamp(1, 100) * 1024 * 1024
    }

    /// The body limit of the upload route: the largest file and 1 MiB for the rest of the
    /// multipart body.
    pub fn upload_body_limit(&self) -> usize {
        (self.file_max_bytes() + 1024 * 1024) as usize
    }

    pub fn cors_origin_list(&self) -> Result<Option<Vec<http::HeaderValue>>, ConfigError> {
        let raw = self.cors_origins.trim();
        if raw == "*" {
            return Ok(None);
        }
        let mut out = Vec::new();
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let parsed = url::Url::parse(origin)
                .map_err(|e| ConfigError::new("CORS_ORIGINS", format!("{origin:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(ConfigError::new(
                    "CORS_ORIGINS",
                    format!("{origin:?} is not an http(s) origin"),
                ));
            }
            let value = http::HeaderValue::from_str(origin.trim_end_matches('/'))
                .map_err(|e| ConfigError::new("CORS_ORIGINS", format!("{origin:?}: {e}")))?;
            out.push(value);
        }
        if out.is_empty() {
            return Err(ConfigError::new(
                "CORS_ORIGINS",
                "give `*` or a comma-separated list of origins",
            ));
        }
        Ok(Some(out))
    }

    /// The user service base URL, checked.
    pub fn user_service(&self) -> Result<Option<url::Url>, ConfigError> {
        let Some(raw) = self
            .user_service_url
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        else {
            return Ok(None);
        };
        let url = url::Url::parse(raw)
            .map_err(|e| ConfigError::new("USER_SERVICE_URL", format!("{raw:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "USER_SERVICE_URL",
                "must be an http(s) URL",
            ));
        }
        Ok(Some(url))
    }

    /// The LMS service base URL (`LMS_SERVICE_URL`), checked.
    pub fn lms_service(&self) -> Result<Option<url::Url>, ConfigError> {
        let Some(raw) = self
            .lms_service_url
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        else {
            return Ok(None);
        };
        match url::Url::parse(raw) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Some(url)),
            _ => Err(ConfigError::new(
                "LMS_SERVICE_URL",
                "must be an http(s) URL",
            )),
        }
    }

    /// Checks `LOG_LEVEL` (the logging set-up itself falls back to `info` on a bad one).
    pub fn check_log_level(&self) -> Result<(), ConfigError> {
        tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .map(drop)
            .map_err(|e| ConfigError::new("LOG_LEVEL", e.to_string()))
    }

    /// Whether external plugins (environment and plugins file) are registered: not in the
    /// seed's `test` profile unless `EXTERNAL_PLUGINS_IN_TEST=true`.
    pub fn external_plugins_enabled(&self) -> bool {
        self.node_env.trim() != "test" || self.external_plugins_in_test
    }
}
