//! Uploaded files (upstream's `/file` routes), kept through `object_store`: the local file
//! system (`STORAGE_LOCAL_PATH`) by default, or an S3 bucket (`CLOUD_STORAGE_*`). An object's
//! key names its tenant, organisation and learner ([`FileKey`]), so every use checks that it
//! belongs to the caller. Download URLs expire: on the local store they are paths on this
//! service signed with HMAC-SHA256, on S3 the bucket's own presigned URLs.

use std::sync::Arc;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{
    Attribute, Attributes, ClientOptions, ObjectStore, ObjectStoreExt, PutOptions, PutPayload,
    RetryConfig, local::LocalFileSystem,
};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::storage::S3Bucket;
use crate::config::{Config, ConfigError};
use crate::domain::enums::QuestionType;
use crate::domain::files::{self, FileKey};
use crate::domain::ids::Scope;
use crate::error::{AppError, AppResult};
use crate::service::Actor;
use crate::store::Store;

/// The file store and its rules.
pub struct Files {
    backend: Backend,
    prefix: String,
    max_bytes: u64,
    extensions: Vec<String>,
    url_ttl_secs: i64,
    signing_key: Vec<u8>,
}

/// Where the objects are.
enum Backend {
    /// A folder, opened (and created when missing) at its first use, so that commands other
    /// than `serve` leave no folder behind.
    Local {
        root: std::path::PathBuf,
        opened: tokio::sync::OnceCell<Arc<dyn ObjectStore>>,
    },
    /// A bucket; downloads are its presigned URLs.
    S3 {
        objects: Arc<dyn ObjectStore>,
        signer: Arc<dyn Signer>,
    },
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.backend {
            Backend::Local { .. } => "local",
            Backend::S3 { .. } => "s3",
        };
        f.debug_struct("Files")
            .field("backend", &backend)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// The S3 client of `bucket`. It connects at its first request; a store that does not answer
/// fails that request within seconds (two retries), as a 503.
fn s3_store(bucket: &S3Bucket) -> Result<Backend, ConfigError> {
    // The client's TLS (reqwest 0.13 without a provider of its own) uses the process's
    // default, ring, as the rest of the service's TLS does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&bucket.bucket)
        .with_region(&bucket.region)
        .with_retry(RetryConfig {
            max_retries: 2,
            retry_timeout: std::time::Duration::from_secs(10),
            ..RetryConfig::default()
        })
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(std::time::Duration::from_secs(5))
                .with_timeout(std::time::Duration::from_secs(60)),
        );
    if let Some((key, secret)) = &bucket.credentials {
        builder = builder
            .with_access_key_id(key)
            .with_secret_access_key(secret.expose());
    }
    if let Some(endpoint) = &bucket.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    let s3 = Arc::new(
        builder
            .build()
            .map_err(|e| ConfigError::new("CLOUD_STORAGE_BUCKET_NAME", e.to_string()))?,
    );
    Ok(Backend::S3 {
        objects: s3.clone(),
        signer: s3,
    })
}

/// `POST /file/upload`'s answer (upstream's shape).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Uploaded {
    /// The file's reference: what a `file` answer names, and what `/file/delete` and
    /// `/file/download-url` take.
    pub file: String,
    pub file_size: u64,
}

/// A file as it came in a multipart part.
pub struct Upload<'a> {
    /// Its file name (the extension decides the kind).
    pub name: &'a str,
    /// The part's `Content-Type`, if any.
    pub declared_type: Option<&'a str>,
    pub bytes: Bytes,
}

/// Body of `/file/delete` and `/file/download-url`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// A reference from `/file/upload`.
    pub file: String,
}

/// `POST /file/download-url`'s answer (upstream's shape).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownloadUrl {
    /// A URL that serves the file until it expires: a signed path on this service when files
    /// are kept on its file system, the bucket's presigned URL when they are kept in S3.
    pub download_url: String,
    /// Seconds it works for.
    pub expires_in: i64,
}

type HmacSha256 = Hmac<Sha256>;

impl Files {
    /// The local file store of `config` (its folder is created when missing).
    pub fn from_config(config: &Config) -> Result<Files, ConfigError> {
        let mut extensions = Vec::new();
        for ext in config.file_allowed_extensions.split(',') {
            let ext = ext.trim().trim_start_matches('.').to_ascii_lowercase();
            if ext.is_empty() {
                continue;
            }
            if !files::known_extension(&ext) {
                return Err(ConfigError::new(
                    "ASSESSMENT_FILE_ALLOWED_EXTENSIONS",
                    format!("{ext:?} is not one of {}", files::DEFAULT_EXTENSIONS),
                ));
            }
            extensions.push(ext);
        }
        let prefix = config.upload_path.trim_matches('/').to_string();
        if prefix.is_empty() || prefix.split('/').any(|p| p.is_empty() || p == "..") {
            return Err(ConfigError::new(
                "ASSESSMENT_UPLOAD_PATH",
                "must be a relative folder such as assessment/feedback-files",
            ));
        }
        let signing_key = match &config.storage_url_signing_secret {
            Some(s) if !s.expose().is_empty() => s.expose().as_bytes().to_vec(),
            _ => Uuid::new_v4().as_bytes().to_vec(),
        };
        let backend = match config.cloud_storage.s3()? {
            Some(bucket) => s3_store(&bucket)?,
            None => Backend::Local {
                root: config.storage_local_path.clone(),
                opened: tokio::sync::OnceCell::new(),
            },
        };
        Ok(Files {
            backend,
            prefix,
            max_bytes: config.file_max_bytes(),
            extensions,
            url_ttl_secs: config.file_url_expires_secs.clamp(60, 3600) as i64,
            signing_key,
        })
    }

    /// The store, opened on first use.
    async fn objects(&self) -> AppResult<&Arc<dyn ObjectStore>> {
        let (root, opened) = match &self.backend {
            Backend::S3 { objects, .. } => return Ok(objects),
            Backend::Local { root, opened } => (root, opened),
        };
        opened
            .get_or_try_init(|| async {
                if !root.exists() {
                    std::fs::create_dir_all(root).map_err(|e| {
                        tracing::warn!(path = %root.display(), error = %e, "cannot create the folder for uploaded files");
                        AppError::Unavailable("The file storage is unavailable".into())
                    })?;
                    tracing::info!(path = %root.display(), "created the folder for uploaded files");
                }
                let store = LocalFileSystem::new_with_prefix(root).map_err(storage_error)?;
                Ok(Arc::new(store) as Arc<dyn ObjectStore>)
            })
            .await
    }

    /// The largest upload, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Checks and stores an upload of the actor's; returns its reference. With a question, it
    /// must be a `file` question of the scope, and its `allowedFileExtensions` apply.
    pub async fn upload(
        &self,
        store: &Store,
        actor: &Actor,
        question: Option<Uuid>,
        file: Upload<'_>,
        now_ms: i64,
    ) -> AppResult<Uploaded> {
        let Upload {
            name,
            declared_type,
            bytes,
        } = file;
        let ext = files::extension(name)
            .filter(|e| self.extensions.contains(e))
            .ok_or_else(|| {
                AppError::validation(format!(
                    "File type not allowed. Allowed extensions: {}",
                    self.extensions.join(", ")
                ))
            })?;
        if let Some(id) = question {
            let q = crate::store::questions::get(store, &actor.scope, id)
                .await?
                .ok_or_else(|| AppError::validation("Question not found for this upload"))?;
            if q.qtype != QuestionType::File {
                return Err(AppError::validation(
                    "This question does not accept file uploads",
                ));
            }
            let allowed: Vec<String> = q
                .params
                .as_ref()
                .and_then(|p| p.0.get("allowedFileExtensions"))
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            let allowed: Vec<String> = allowed
                .iter()
                .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                .collect();
            if !allowed.is_empty() && !allowed.contains(&ext) {
                return Err(AppError::validation(format!(
                    "This question accepts only: {}",
                    allowed.join(", ")
                )));
            }
        }
        if !files::type_matches(&ext, declared_type) {
            return Err(AppError::validation(format!(
                "The file's type ({}) does not match its extension (.{ext})",
                declared_type.unwrap_or_default()
            )));
        }
        if !files::content_matches(&ext, &bytes) {
            return Err(AppError::validation(format!(
                "The file's content is not a .{ext} file"
            )));
        }
        let key = FileKey {
            prefix: self.prefix.clone(),
            tenant: actor.scope.tenant.as_uuid(),
            organisation: actor.scope.organisation.as_uuid(),
            user: actor.user_uuid(),
            id: Uuid::new_v4(),
            millis: now_ms,
            ext,
        };
        let size = bytes.len() as u64;
        // A bucket keeps the type and serves the file as an attachment, as this service's own
        // download route does (the local store keeps no attributes).
        let mut attributes = Attributes::new();
        if let Backend::S3 { .. } = self.backend {
            attributes.insert(Attribute::ContentType, files::content_type(&key.ext).into());
            attributes.insert(
                Attribute::ContentDisposition,
                format!("attachment; filename=\"{}.{}\"", key.id, key.ext).into(),
            );
        }
        let options = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        self.objects()
            .await?
            .put_opts(
                &ObjectPath::from(key.to_string()),
                PutPayload::from(bytes),
                options,
            )
            .await
            // Not found here is the bucket missing: the service's trouble, not the caller's.
            .map_err(unavailable)?;
        Ok(Uploaded {
            file: key.to_string(),
            file_size: size,
        })
    }

    /// The key `file` names, when it is of the caller's tenant and organisation and the caller
    /// owns it or `reviews` (reads or removes any learner's files); 404 otherwise, as for a
    /// file that does not exist.
    fn owned(&self, scope: &Scope, user: Uuid, reviews: bool, file: &str) -> AppResult<FileKey> {
        let not_found = || AppError::not_found("File not found");
        if file.contains("..") {
            return Err(AppError::validation("Invalid file reference"));
        }
        let key = FileKey::parse(&self.prefix, file).ok_or_else(not_found)?;
        let in_scope = key.tenant == scope.tenant.as_uuid()
            && key.organisation == scope.organisation.as_uuid();
        if !in_scope || (key.user != user && !reviews) {
            return Err(not_found());
        }
        Ok(key)
    }

    /// `POST /file/delete`.
    pub async fn delete(&self, actor: &Actor, reviews: bool, file: &str) -> AppResult<()> {
        let key = self.owned(&actor.scope, actor.user_uuid(), reviews, file)?;
        let path = ObjectPath::from(key.to_string());
        let objects = self.objects().await?;
        objects.head(&path).await.map_err(storage_error)?;
        objects.delete(&path).await.map_err(storage_error)
    }

    /// `POST /file/download-url`: a URL that serves the file until `now + expiresIn`. On the
    /// local store, a signed path on this service (`api_prefix`, e.g. `assessment/v1`); on S3,
    /// the bucket's presigned URL.
    pub async fn download_url(
        &self,
        actor: &Actor,
        reviews: bool,
        file: &str,
        api_prefix: &str,
        now_secs: i64,
    ) -> AppResult<DownloadUrl> {
        let key = self.owned(&actor.scope, actor.user_uuid(), reviews, file)?;
        let key = key.to_string();
        let path = ObjectPath::from(key.as_str());
        self.objects()
            .await?
            .head(&path)
            .await
            .map_err(storage_error)?;
        if let Backend::S3 { signer, .. } = &self.backend {
            let ttl = std::time::Duration::from_secs(self.url_ttl_secs as u64);
            let url = signer
                .signed_url(http::Method::GET, &path, ttl)
                .await
                .map_err(storage_error)?;
            return Ok(DownloadUrl {
                download_url: url.to_string(),
                expires_in: self.url_ttl_secs,
            });
        }
        let expires = now_secs + self.url_ttl_secs;
        let signature = self.signature(&key, expires);
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("key", &key)
            .append_pair("expires", &expires.to_string())
            .append_pair("signature", &signature)
            .finish();
        Ok(DownloadUrl {
            download_url: format!("/{api_prefix}/file/download?{query}"),
            expires_in: self.url_ttl_secs,
        })
    }

    /// The bytes and content type a signed URL names, if its signature holds and it has not
    /// expired.
    pub async fn download(
        &self,
        key: &str,
        expires: i64,
        signature: &str,
        now_secs: i64,
    ) -> AppResult<(Bytes, &'static str, String)> {
        let refused = || AppError::forbidden("This download link is not valid");
        let parsed = FileKey::parse(&self.prefix, key).ok_or_else(refused)?;
        let given = hex_decode(signature).ok_or_else(refused)?;
        if self.mac(key, expires).verify_slice(&given).is_err() {
            return Err(refused());
        }
        if now_secs > expires {
            return Err(AppError::forbidden("This download link has expired"));
        }
        let got = self
            .objects()
            .await?
            .get(&ObjectPath::from(key))
            .await
            .map_err(storage_error)?;
        let bytes = got.bytes().await.map_err(storage_error)?;
        let name = format!("{}.{}", parsed.id, parsed.ext);
        Ok((bytes, files::content_type(&parsed.ext), name))
    }

    /// A `file` answer must name a file the learner uploaded in this scope, still there.
    pub async fn check_answer(&self, actor: &Actor, file: &str) -> Result<(), String> {
        let refused =
            || "file must name a file you uploaded (the `file` of POST /file/upload)".to_string();
        let key = self
            .owned(&actor.scope, actor.user_uuid(), false, file)
            .map_err(|_| refused())?;
        let Ok(objects) = self.objects().await else {
            return Err(refused());
        };
        match objects.head(&ObjectPath::from(key.to_string())).await {
            Ok(_) => Ok(()),
            Err(_) => Err(refused()),
        }
    }

    fn mac(&self, key: &str, expires: i64) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.signing_key).expect("HMAC takes keys of any length");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    fn signature(&self, key: &str, expires: i64) -> String {
        self.mac(key, expires)
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn storage_error(e: object_store::Error) -> AppError {
    match e {
        object_store::Error::NotFound { .. } => AppError::not_found("File not found"),
        other => unavailable(other),
    }
}

fn unavailable(e: object_store::Error) -> AppError {
    tracing::warn!(error = %e, "the file storage failed");
    AppError::Unavailable("The file storage is unavailable".into())
}
