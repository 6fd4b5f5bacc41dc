//! The catalog's wire types and typed client.
//!
//! The catalog is a stateless service over the order group: it keeps a view of the group's
//! inventory from the group's change stream and serves it (used by the frontends):
//! - `GET /products?min_version=V` → `{"data": [Product, ...]}`
//! - `GET /products/{name}?min_version=V` → `{"data": Product}`; unknown → 404. A read names
//!   the lowest version it accepts: the catalog answers once its view has reached it (or 503).
//! - `GET /changes?after=V&wait_ms=W` → `{"data": ChangeBatch}` (long-poll change feed, relayed
//!   from the group with the group's versions)

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::{ClientError, decode_data};

/// A toy as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// Unique name, e.g. `Tux`.
    pub name: String,
    /// Price in the store's currency.
    pub price: f64,
    /// Units in stock.
    pub quantity: u32,
    /// Version of the last change to this product's stock: the index of the order group's
    /// log entry that made it.
    pub version: u64,
}

/// A toy as the public API shows it: `{"name", "price", "quantity"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductView {
    /// Toy name.
    pub name: String,
    /// Price of one unit, in the store's currency.
    pub price: f64,
    /// Units in stock.
    pub quantity: u32,
}

impl From<&Product> for ProductView {
    fn from(p: &Product) -> Self {
        Self {
            name: p.name.clone(),
            price: p.price,
            quantity: p.quantity,
        }
    }
}

/// One change-feed event: a product's new state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// Feed version; strictly increasing across the catalog's life.
    pub version: u64,
    /// The product after the change.
    pub product: Product,
}

/// Answer to `GET /changes?after=V` (the catalog's feed) and to `GET /inventory/changes` (an
/// order replica's change stream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeBatch {
    /// Events with versions > `after`, in order.
    pub events: Vec<ChangeEvent>,
    /// How far the answer goes: every change up to this version is in `events` (or in
    /// `snapshot`), or was already before `after`.
    pub version: u64,
    /// True when events after `after` are no longer available: the subscriber must drop what it
    /// knew and start again from `snapshot` (when given) at `version`.
    pub reset: bool,
    /// With `reset`: every product as of `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Vec<Product>>,
    /// Whether the store's inventory has been defined in the group.
    #[serde(default)]
    pub defined: bool,
}

/// Typed client of the catalog.
#[derive(Debug, Clone)]
pub struct CatalogClient {
    http: reqwest::Client,
    base: String,
}

impl CatalogClient {
    /// A client for the catalog at `base` (e.g. `http://127.0.0.1:7100`).
    pub fn new(http: reqwest::Client, base: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into().trim_end_matches('/').to_string(),
        }
    }

    /// The catalog's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /products?min_version=V`.
    pub async fn products(&self, min_version: u64) -> Result<Vec<Product>, ClientError> {
        self.get(&format!("/products?min_version={min_version}"), None)
            .await
    }

    /// `GET /products/{name}?min_version=V`.
    pub async fn product(&self, name: &str, min_version: u64) -> Result<Product, ClientError> {
        let path = format!(
            "/products/{}?min_version={min_version}",
            encode_path_segment(name)
        );
        self.get(&path, None).await
    }

    /// `GET /changes?after=V&wait_ms=W`: waits up to `wait` for events after `after`.
    pub async fn changes(&self, after: u64, wait: Duration) -> Result<ChangeBatch, ClientError> {
        let path = format!("/changes?after={after}&wait_ms={}", wait.as_millis());
        self.get(&path, Some(wait + Duration::from_secs(5))).await
    }

    /// `GET /readyz`: whether the catalog answers and is ready.
    pub async fn ready(&self) -> Result<(), ClientError> {
        let url = format!("{}/readyz", self.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.bytes().await.unwrap_or_default();
        Err(ClientError::Api {
            status,
            error: crate::client::error_body(status, &body),
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        timeout: Option<Duration>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.get(&url);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        decode_data(&url, req.send().await).await
    }
}

/// Percent-encodes a path segment (toy names may hold spaces and other characters).
pub fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
