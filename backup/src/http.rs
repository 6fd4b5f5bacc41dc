//! object_store's HTTP transport: hyper with rustls on `ring`, the TLS stack the operator's
//! Kubernetes client already uses.
//!
//! object_store's bundled transport is reqwest, whose TLS brings either aws-lc-rs (a C build
//! this project avoids) or a "no provider" mode that makes every reqwest client in the process
//! panic unless a provider was installed first (features unify across the workspace, so that
//! would reach every service and test). A small connector of our own avoids both.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::TokioExecutor;
use object_store::ClientOptions;
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
/// certificates).
#[derive(Debug, Default)]
pub struct HyperConnector;

impl HttpConnector for HyperConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let https = HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| object_store::Error::Generic {
                store: "backup destination",
                source: format!("loading the system's root certificates: {e}").into(),
            })?
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(HttpClient::new(HyperService(client)))
    }
}

/// One hyper client, shared by an object store's requests.
#[derive(Debug)]
struct HyperService(Client<HttpsConnector<TcpConnector>, HttpRequestBody>);

#[async_trait::async_trait]
impl HttpService for HyperService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.0.request(req))
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
