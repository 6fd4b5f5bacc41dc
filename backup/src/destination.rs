//! Where backups go: a URL naming a folder in an object store, and the client for it.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};

use crate::BackupError;
use crate::http::HyperConnector;

/// A folder in an object store: the client, the folder's path in it, and its URL as the user
/// wrote it (every message names objects by URL, never by the store's internal path).
#[derive(Debug, Clone)]
pub struct Destination {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
}

impl Destination {
    /// How often and how long a request to a cloud store is retried: 3 retries within 30 s,
    /// backing off from 100 ms. Short enough that an unreachable destination fails a backup in
    /// seconds rather than the object store's default minutes, long enough to ride out a
    /// throttled or briefly failing request.
    pub fn retry_config() -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
        }
    }

    /// Opens the folder `url` names: `s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `az://container/prefix` (also `azure://`, `abfs://`, `abfss://`, `adl://`) or
    /// `file:///absolute/path` (created if missing). Credentials, region and endpoint come from
    /// the environment as each provider's builder reads it (`AWS_*`, `GOOGLE_*`, `AZURE_*`);
    /// for an S3-compatible server set `AWS_ENDPOINT_URL` (requests are then path-style unless
    /// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`) and `AWS_ALLOW_HTTP=true` for plain HTTP.
    pub fn parse(url: &str) -> Result<Self, BackupError> {
        Self::parse_with(url, std::iter::empty::<(String, String)>())
    }

    /// [`parse`](Self::parse) with `options` applied on top of the environment, named as the
    /// environment variables are (`AWS_ENDPOINT_URL`, `GOOGLE_SERVICE_ACCOUNT`, ...; case does
    /// not matter): for a caller (a test) that must not change its process's environment. An
    /// option the URL's provider does not know is an error, as is any option for `file://`.
    pub fn parse_with<K, V>(
        url: &str,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, BackupError>
    where
        K: AsRef<str>,
        V: Into<String>,
    {
        let bad = |reason: String| BackupError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => {
                bad("not a URL (a local directory is written file:///absolute/path)".into())
            }
            e => bad(e.to_string()),
        })?;
        let prefix = Path::from_url_path(parsed.path()).map_err(|e| bad(e.to_string()))?;
        let options: Vec<(String, String)> = options
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.into()))
            .collect();
        let unknown = |key: &str| bad(format!("unknown option {key:?} for this kind of store"));
        let open = |source| BackupError::Open {
            url: url.to_string(),
            source: Box::new(source),
        };
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "s3" | "s3a" => {
                let mut builder = AmazonS3Builder::from_env();
                for (key, value) in options {
                    let key: AmazonS3ConfigKey = key.parse().map_err(|_| unknown(&key))?;
                    builder = builder.with_config(key, value);
                }
                let builder = builder
                    .with_url(url)
                    .with_retry(Self::retry_config())
                    .with_http_connector(HyperConnector);
                Arc::new(builder.build().map_err(open)?)
            }
            "gs" => {
                let mut builder = GoogleCloudStorageBuilder::from_env();
                for (key, value) in options {
                    let key: GoogleConfigKey = key.parse().map_err(|_| unknown(&key))?;
                    builder = builder.with_config(key, value);
                }
                let builder = builder
                    .with_url(url)
                    .with_retry(Self::retry_config())
                    .with_http_connector(HyperConnector);
                Arc::new(builder.build().map_err(open)?)
            }
            "az" | "azure" | "abfs" | "abfss" | "adl" => {
                let mut builder = MicrosoftAzureBuilder::from_env();
                for (key, value) in options {
                    let key: AzureConfigKey = key.parse().map_err(|_| unknown(&key))?;
                    builder = builder.with_config(key, value);
                }
                let builder = builder
                    .with_url(url)
                    .with_retry(Self::retry_config())
                    .with_http_connector(HyperConnector);
                Arc::new(builder.build().map_err(open)?)
            }
            "file" => {
                if let Some((key, _)) = options.first() {
                    return Err(bad(format!("file:// takes no options (got {key:?})")));
                }
                if !url.starts_with("file:///") {
                    return Err(bad(
                        "a file URL names an absolute path: file:///absolute/path".into(),
                    ));
                }
                let dir = parsed
                    .to_file_path()
                    .map_err(|()| bad("not a local path".into()))?;
                std::fs::create_dir_all(&dir).map_err(|source| BackupError::CreateDir {
                    path: dir.display().to_string(),
                    source,
                })?;
                // fsync: a backup is only worth having once it is on disk. Automatic cleanup:
                // a pruned artifact leaves no empty folder behind.
                let fs = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(open)?
                    .with_fsync(true)
                    .with_automatic_cleanup(true);
                return Ok(Self {
                    store: Arc::new(fs),
                    prefix: Path::default(),
                    url: url.trim_end_matches('/').to_string(),
                });
            }
            other => return Err(bad(format!("unknown scheme {other:?}"))),
        };
        Ok(Self {
            store,
            prefix,
            url: url.trim_end_matches('/').to_string(),
        })
    }

    /// The folder's URL, without a trailing `/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The child folder `name` (one path segment, e.g. an artifact's name), in the same store.
    pub fn join(&self, name: &str) -> Destination {
        Destination {
            store: self.store.clone(),
            prefix: self.prefix.clone().join(name),
            url: format!("{}/{name}", self.url),
        }
    }

    /// The object store client, for a caller that needs more than this crate offers.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The folder's path inside the store.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The store path of the object `name` in this folder.
    pub(crate) fn object(&self, name: &str) -> Path {
        self.prefix.clone().join(name)
    }

    /// The URL of the object `name` in this folder, for messages.
    pub(crate) fn object_url(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_and_unknown_schemes_are_refused_naming_the_url() {
        for url in ["backups/x", "/abs/path", "ftp://host/x", "http://host/x"] {
            let e = Destination::parse(url).unwrap_err().to_string();
            assert!(e.contains(url), "{e}");
            assert!(e.contains("s3://bucket/prefix"), "{e}");
            assert!(e.contains("file:///absolute/path"), "{e}");
        }
        let e = Destination::parse("file://relative/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("absolute path"), "{e}");
    }

    #[test]
    fn s3_prefix_and_join() {
        let d = Destination::parse_with(
            "s3://bucket/a/b/",
            [
                ("AWS_REGION", "us-east-1"),
                ("aws_endpoint_url", "http://127.0.0.1:1"),
            ],
        )
        .unwrap();
        assert_eq!(d.url(), "s3://bucket/a/b");
        assert_eq!(d.prefix().as_ref(), "a/b");
        let c = d.join("2024");
        assert_eq!(c.url(), "s3://bucket/a/b/2024");
        assert_eq!(c.prefix().as_ref(), "a/b/2024");
        assert_eq!(
            c.object_url("manifest.json"),
            "s3://bucket/a/b/2024/manifest.json"
        );
    }

    #[test]
    fn unknown_options_are_refused() {
        let e = Destination::parse_with("s3://bucket/a", [("NO_SUCH_THING", "1")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no_such_thing"), "{e}");
    }

    #[test]
    fn file_destinations_are_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x/y");
        let url = format!("file://{}", path.display());
        let d = Destination::parse(&url).unwrap();
        assert!(path.is_dir());
        assert_eq!(d.url(), url);
        assert_eq!(d.prefix().as_ref(), "");
    }
}
