//! The catalog's wire types and typed client.
//!
//! The catalog owns stock. Its internal API (used by the order leader and the frontends):
//! - `GET /products` → `{"data": [Product, ...]}`
//! - `GET /products/{name}` → `{"data": Product}`; unknown → 404
//! - `POST /take` with [`TakeRequest`] → `{"data": TakeResponse}`; idempotent by `key`
//! - `GET /changes?after=V&wait_ms=W` → `{"data": ChangeBatch}` (long-poll change feed)
//! - `GET /audit` → `{"data": Audit}` (every take record and restock totals, for checkers)

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
    /// Feed version of the last change to this product (0 = never changed since seeding).
    pub version: u64,
}

/// A toy as the public API shows it: `{"name", "price", "quantity"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductView {
    /// Toy name.
    pub name: String,
    /// Price.
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

/// `POST /take`: take stock for one purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeRequest {
    /// Idempotency key of the purchase.
    pub key: String,
    /// Toy name.
    pub name: String,
    /// Units to take (≥ 1).
    pub quantity: u32,
}

/// What a take did. Recorded with its key: a repeat returns the same outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TakeOutcome {
    /// The stock was taken.
    Taken,
    /// Not enough stock; nothing changed.
    Insufficient,
    /// No such toy; nothing changed.
    UnknownProduct,
}

/// Answer to `POST /take`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TakeResponse {
    /// The outcome (the first one, for a repeated key).
    pub outcome: TakeOutcome,
    /// The product after the take (absent for an unknown product).
    pub product: Option<Product>,
}

/// One change-feed event: a product's new state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// Feed version; strictly increasing across the catalog's life.
    pub version: u64,
    /// The product after the change.
    pub product: Product,
}

/// Answer to `GET /changes?after=V`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeBatch {
    /// Events with versions > `after`, in order.
    pub events: Vec<ChangeEvent>,
    /// The catalog's current version.
    pub version: u64,
    /// True when events after `after` are no longer available (or `after` is from the future):
    /// the subscriber must drop what it cached and continue from `version`.
    pub reset: bool,
}

/// A recorded take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeRecord {
    /// Idempotency key.
    pub key: String,
    /// Toy name.
    pub name: String,
    /// Units asked for.
    pub quantity: u32,
    /// What happened.
    pub outcome: TakeOutcome,
}

/// Per-product bookkeeping for the stock invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductAudit {
    /// Toy name.
    pub name: String,
    /// Units at seeding.
    pub initial: u32,
    /// Units now.
    pub quantity: u32,
    /// Units taken by `Taken` records.
    pub taken: u64,
    /// Units added by restocks.
    pub restocked: u64,
}

/// `GET /audit`: everything needed to check `quantity = initial − taken + restocked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    /// Per product.
    pub products: Vec<ProductAudit>,
    /// Every take record.
    pub takes: Vec<TakeRecord>,
}

/// Typed client of the catalog.
#[derive(Debug, Clone)]
pub struct CatalogClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl CatalogClient {
    /// A client for the catalog at `base` (e.g. `http://127.0.0.1:7100`); it can read products
    /// and the change feed.
    pub fn new(http: reqwest::Client, base: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into().trim_end_matches('/').to_string(),
            token: None,
        }
    }

    /// The same client with the cluster token, which [`take`](Self::take) and
    /// [`audit`](Self::audit) need.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// The catalog's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /products`.
    pub async fn products(&self) -> Result<Vec<Product>, ClientError> {
        self.get("/products", None).await
    }

    /// `GET /products/{name}`.
    pub async fn product(&self, name: &str) -> Result<Product, ClientError> {
        let path = format!("/products/{}", encode_path_segment(name));
        self.get(&path, None).await
    }

    /// `POST /take`.
    pub async fn take(&self, req: &TakeRequest) -> Result<TakeResponse, ClientError> {
        let url = format!("{}/take", self.base);
        let resp = self.authorized(self.http.post(&url)).json(req).send().await;
        decode_data(&url, resp).await
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

    /// `GET /audit`.
    pub async fn audit(&self) -> Result<Audit, ClientError> {
        self.get("/audit", Some(Duration::from_secs(30))).await
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        timeout: Option<Duration>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.authorized(self.http.get(&url));
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
