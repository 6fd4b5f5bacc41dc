//! object_store's HTTP transport: hyper with rustls on `ring`, the TLS stack the operator's
//! Kubernetes client already uses.
//!
//! object_store's bundled transport is reqwest, whose TLS brings either aws-lc-rs (a C build
//! this project avoids) or a "no provider" mode that makes every reqwest client in the process
//! panic unless a provider was installed first (features unify across the workspace, so that
//! would reach every service and test). A small connector of our own avoids both.
//!
//! Of object_store's client options it honours `allow_http` (`AWS_ALLOW_HTTP`, ...): without
//! it, a request to a plain `http://` URL is refused before anything is sent, so that signed
//! requests never travel in clear text by accident. It has no proxy support: a proxy option
//! (`proxy_url`) is an error rather than silently bypassed. Its timeouts are its own
//! ([`CONNECT_TIMEOUT`], [`REQUEST_TIMEOUT`]); other options do not apply.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::TokioExecutor;
use object_store::client::{ClientConfigKey, ClientOptions};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
    HttpResponse, HttpResponseBody, HttpService,
};

/// How long connecting to a destination may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one request may wait for its response's headers (a part of a large upload
/// included); object_store retries one that times out.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Builds object_store's HTTP clients on hyper + rustls (`ring`, the system's root
/// certificates); plain HTTP only where the options allow it.
#[derive(Debug, Default)]
pub struct HyperConnector;

impl HttpConnector for HyperConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        if options
            .get_config_value(&ClientConfigKey::ProxyUrl)
            .is_some()
        {
            // Not the value: a proxy URL may carry credentials.
            return Err(generic(
                "a proxy is configured (proxy_url), but this transport does not support \
                 proxies; unset it to connect directly",
            ));
        }
        let allow_http = allow_http(options)?;
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let builder = HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| generic(format!("loading the system's root certificates: {e}")))?;
        let builder = if allow_http {
            builder.https_or_http()
        } else {
            builder.https_only()
        };
        let https = builder.enable_http1().wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(HttpClient::new(HyperService { client, allow_http }))
    }
}

/// An error of building a client.
fn generic(message: impl Into<String>) -> object_store::Error {
    object_store::Error::Generic {
        store: "backup destination",
        source: message.into().into(),
    }
}

/// The options' `allow_http`, read as object_store reads a boolean option.
fn allow_http(options: &ClientOptions) -> object_store::Result<bool> {
    let value = options
        .get_config_value(&ClientConfigKey::AllowHttp)
        .unwrap_or_default();
    match value.to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "off" | "no" | "n" => Ok(false),
        "1" | "true" | "on" | "yes" | "y" => Ok(true),
        _ => Err(generic(format!(
            "allow_http is {value:?}, which is neither true nor false"
        ))),
    }
}

/// One hyper client, shared by an object store's requests.
#[derive(Debug)]
struct HyperService {
    client: Client<HttpsConnector<TcpConnector>, HttpRequestBody>,
    /// Whether plain `http://` requests may be sent.
    allow_http: bool,
}

#[async_trait::async_trait]
impl HttpService for HyperService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        // The connector is HTTPS-only then too; refusing here says why, and (as an error of an
        // unknown kind) is not retried as a failed connection would be.
        if !self.allow_http && req.uri().scheme_str() == Some("http") {
            let message = format!(
                "refusing to send a request to {} over plain http: allow it with allow_http \
                 (AWS_ALLOW_HTTP=true for an S3-compatible server), or use https",
                req.uri().authority().map_or("", |a| a.as_str()),
            );
            return Err(HttpError::new(
                HttpErrorKind::Unknown,
                std::io::Error::other(message),
            ));
        }
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(req))
            .await
            .map_err(|e| HttpError::new(HttpErrorKind::Timeout, e))?
            .map_err(|e| {
                let kind = if e.is_connect() {
                    HttpErrorKind::Connect
                } else {
                    HttpErrorKind::Request
                };
                HttpError::new(kind, e)
            })?;
        let (parts, body) = response.into_parts();
        let body = body.map_err(|e| HttpError::new(HttpErrorKind::Interrupted, e));
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}
