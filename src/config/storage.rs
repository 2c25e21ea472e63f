//! Where uploaded files are kept: the local file system, or S3 and the servers that speak its
//! API (MinIO, Ceph, moto). Upstream's variable names, with its `AWS_*` fallbacks.

use clap::Args;

use super::ConfigError;
use crate::secret::Secret;

/// The S3 settings (all unset: files stay on the local file system).
#[derive(Debug, Clone, Default, Args)]
pub struct CloudStorage {
    /// `local` (the folder STORAGE_LOCAL_PATH) or `aws` (S3, or a server that speaks its API).
    /// Unset: `aws` when a bucket is named, else `local`.
    #[arg(
        long = "storage-provider",
        env = "CLOUD_STORAGE_PROVIDER",
        global = true
    )]
    pub provider: Option<String>,
    /// The bucket (upstream looks for it here first).
    #[arg(long, env = "CLOUD_STORAGE_PRIVATE_BUCKET_NAME", global = true)]
    pub private_bucket: Option<String>,
    /// The bucket, when CLOUD_STORAGE_PRIVATE_BUCKET_NAME is unset (then AWS_BUCKET_NAME).
    #[arg(
        long = "storage-bucket",
        env = "CLOUD_STORAGE_BUCKET_NAME",
        global = true
    )]
    pub bucket: Option<String>,
    #[arg(long, env = "AWS_BUCKET_NAME", global = true, hide = true)]
    pub aws_bucket: Option<String>,
    /// The bucket's region (then AWS_REGION; default us-east-1).
    #[arg(long = "storage-region", env = "CLOUD_STORAGE_REGION", global = true)]
    pub region: Option<String>,
    #[arg(long, env = "AWS_REGION", global = true, hide = true)]
    pub aws_region: Option<String>,
    /// Access key (then AWS_ACCESS_KEY_ID; unset: the instance's role).
    #[arg(
        long = "storage-access-key-id",
        env = "CLOUD_STORAGE_ACCESS_KEY_ID",
        global = true
    )]
    pub access_key_id: Option<String>,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", global = true, hide = true)]
    pub aws_access_key_id: Option<String>,
    /// Secret key (then AWS_SECRET_ACCESS_KEY).
    #[arg(
        long = "storage-secret-access-key",
        env = "CLOUD_STORAGE_SECRET_ACCESS_KEY",
        global = true,
        hide_env_values = true
    )]
    pub secret_access_key: Option<Secret>,
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        global = true,
        hide = true,
        hide_env_values = true
    )]
    pub aws_secret_access_key: Option<Secret>,
    /// An S3-compatible server's address, e.g. http://127.0.0.1:9000 (addressed path-style).
    /// Unset: Amazon S3 in the region.
    #[arg(
        long = "storage-endpoint",
        env = "CLOUD_STORAGE_ENDPOINT",
        global = true
    )]
    pub endpoint: Option<String>,
}

/// The S3 bucket to use, resolved from [`CloudStorage`].
#[derive(Debug, Clone)]
pub struct S3Bucket {
    pub bucket: String,
    pub region: String,
    /// Both halves of a key, or none (the instance's credentials).
    pub credentials: Option<(String, Secret)>,
    pub endpoint: Option<String>,
}

fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl CloudStorage {
    /// `None` for the local file system; the bucket otherwise.
    pub fn s3(&self) -> Result<Option<S3Bucket>, ConfigError> {
        let bucket = set(&self.private_bucket)
            .or(set(&self.bucket))
            .or(set(&self.aws_bucket));
        let provider = set(&self.provider).map(str::to_ascii_lowercase);
        match (provider.as_deref(), bucket) {
            (Some("local"), _) | (None, None) => return Ok(None),
            (Some("aws" | "s3") | None, Some(_)) => {}
            (Some("aws" | "s3"), None) => {
                return Err(ConfigError::new(
                    "CLOUD_STORAGE_BUCKET_NAME",
                    "CLOUD_STORAGE_PROVIDER is aws: name the bucket (CLOUD_STORAGE_PRIVATE_BUCKET_NAME, CLOUD_STORAGE_BUCKET_NAME or AWS_BUCKET_NAME)",
                ));
            }
            (Some(other), _) => {
                return Err(ConfigError::new(
                    "CLOUD_STORAGE_PROVIDER",
                    format!("{other:?} is not one of local, aws"),
                ));
            }
        }
        let bucket = bucket.unwrap_or_default().to_string();
        let key = set(&self.access_key_id).or(set(&self.aws_access_key_id));
        let secret = [&self.secret_access_key, &self.aws_secret_access_key]
            .into_iter()
            .flatten()
            .find(|s| !s.expose().trim().is_empty());
        let credentials = match (key, secret) {
            (Some(k), Some(s)) => Some((k.to_string(), s.clone())),
            (None, None) => None,
            _ => {
                return Err(ConfigError::new(
                    "CLOUD_STORAGE_ACCESS_KEY_ID",
                    "set both the access key id and the secret access key, or neither",
                ));
            }
        };
        let endpoint = set(&self.endpoint).map(str::to_string);
        if let Some(e) = &endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(ConfigError::new(
                "CLOUD_STORAGE_ENDPOINT",
                "must be an http:// or https:// address",
            ));
        }
        Ok(Some(S3Bucket {
            bucket,
            region: set(&self.region)
                .or(set(&self.aws_region))
                .unwrap_or("us-east-1")
                .to_string(),
            credentials,
            endpoint,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_decides_unless_the_provider_says() {
        assert!(CloudStorage::default().s3().unwrap().is_none());
        let named = CloudStorage {
            bucket: Some("answers".into()),
            aws_bucket: Some("ignored".into()),
            aws_region: Some("ap-south-1".into()),
            ..CloudStorage::default()
        };
        let b = named.s3().unwrap().unwrap();
        assert_eq!(
            (b.bucket.as_str(), b.region.as_str()),
            ("answers", "ap-south-1")
        );
        assert!(b.credentials.is_none());
        let local = CloudStorage {
            provider: Some("local".into()),
            ..named.clone()
        };
        assert!(local.s3().unwrap().is_none());
        let aws_without_bucket = CloudStorage {
            provider: Some("aws".into()),
            ..CloudStorage::default()
        };
        assert!(aws_without_bucket.s3().is_err());
        let half_a_key = CloudStorage {
            access_key_id: Some("AKIA".into()),
            ..named.clone()
        };
        assert!(half_a_key.s3().is_err());
        let unknown = CloudStorage {
            provider: Some("gcs".into()),
            ..named.clone()
        };
        assert!(unknown.s3().is_err());
        let bad_endpoint = CloudStorage {
            endpoint: Some("127.0.0.1:9000".into()),
            ..named
        };
        assert!(bad_endpoint.s3().is_err());
    }
}
