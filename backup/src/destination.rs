//! Where backups go: a URL naming a folder in an object store, and the client for it.

use std::path::PathBuf;
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
    /// The folder's directory, for a `file://` destination.
    dir: Option<PathBuf>,
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
    /// `file:///absolute/path`. Nothing is created here: a missing directory is created by the
    /// first artifact written into it ([`crate::write_artifact`]), and reading from one is
    /// [`BackupError::NotFound`]. Credentials, region and endpoint come from
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
        // A cloud store: the provider's builder from the environment, `options` on top (keys of
        // the provider's config key type), then the URL, our retries and our HTTP transport.
        macro_rules! cloud {
            ($builder:ty, $key:ty) => {{
                let mut builder = <$builder>::from_env();
                for (key, value) in options {
                    let key: $key = key.parse().map_err(|_| unknown(&key))?;
                    builder = builder.with_config(key, value);
                }
                let builder = builder
                    .with_url(url)
                    .with_retry(Self::retry_config())
                    .with_http_connector(HyperConnector);
                Arc::new(builder.build().map_err(open)?)
            }};
        }
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "s3" | "s3a" => cloud!(AmazonS3Builder, AmazonS3ConfigKey),
            "gs" => cloud!(GoogleCloudStorageBuilder, GoogleConfigKey),
            "az" | "azure" | "abfs" | "abfss" | "adl" => {
                cloud!(MicrosoftAzureBuilder, AzureConfigKey)
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
                // The store is rooted at the directory, or, while it does not exist, at its
                // nearest existing ancestor: nothing is created until an artifact is written
                // (the store creates, and fsyncs, the missing directories with its first
                // object), so a mistyped URL to read from leaves no empty folder behind.
                let root = dir.ancestors().find(|a| a.exists()).unwrap_or(&dir);
                if !root.is_dir() {
                    return Err(bad(format!("{} is not a directory", root.display())));
                }
                let prefix = dir
                    .strip_prefix(root)
                    .expect("an ancestor")
                    .iter()
                    .map(|part| part.to_str().ok_or_else(|| bad("not a UTF-8 path".into())))
                    .collect::<Result<Path, _>>()?;
                // fsync: a backup is only worth having once it is on disk. Automatic cleanup:
                // a pruned artifact leaves no empty folder behind (up to the store's root, so
                // never a directory that existed when the URL was parsed but the root itself).
                let fs = LocalFileSystem::new_with_prefix(root)
                    .map_err(open)?
                    .with_fsync(true)
                    .with_automatic_cleanup(true);
                return Ok(Self {
                    store: Arc::new(fs),
                    prefix,
                    url: url.trim_end_matches('/').to_string(),
                    dir: Some(dir),
                });
            }
            other => return Err(bad(format!("unknown scheme {other:?}"))),
        };
        Ok(Self {
            store,
            prefix,
            url: url.trim_end_matches('/').to_string(),
            dir: None,
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
            dir: self.dir.as_ref().map(|dir| dir.join(name)),
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

    /// Why nothing is in this folder, if nothing is: a local directory that does not exist, or
    /// no object stored under the folder. `None` when something is there, or when the store
    /// cannot tell (a failed listing: the caller's own error stands).
    pub(crate) async fn absent(&self) -> Option<&'static str> {
        if let Some(dir) = &self.dir
            && let Err(e) = std::fs::metadata(dir)
            && e.kind() == std::io::ErrorKind::NotFound
        {
            return Some("the directory does not exist");
        }
        let prefix = (!self.prefix.is_root()).then_some(&self.prefix);
        match self.store.list_with_delimiter(prefix).await {
            Ok(listed) if listed.objects.is_empty() && listed.common_prefixes.is_empty() => {
                Some("nothing is stored there")
            }
            _ => None,
        }
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
    fn file_destinations_are_not_created_by_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x/y");
        let url = format!("file://{}", path.display());
        let d = Destination::parse(&url).unwrap();
        assert!(
            !dir.path().join("x").exists(),
            "parsing created a directory"
        );
        assert_eq!(d.url(), url);
        assert_eq!(d.prefix().as_ref(), "x/y");

        std::fs::create_dir_all(&path).unwrap();
        let d = Destination::parse(&url).unwrap();
        assert_eq!(d.url(), url);
        assert_eq!(d.prefix().as_ref(), "");

        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let e = Destination::parse(&format!("file://{}/x", file.display()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a directory"), "{e}");
    }
}
