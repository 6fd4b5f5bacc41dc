//! The catalog replicas a frontend reads from.
//!
//! The catalog is stateless and runs as several replicas (in Kubernetes behind one Service,
//! locally as a list of URLs). A read that finds one unreachable or unready (a transport error
//! or a 5xx) asks the next at once; a 4xx (an unknown toy) is an answer. The change feed
//! follows one replica and moves to the next when it fails. Versions are the order group's, so
//! every replica's answers are comparable.

use std::sync::atomic::{AtomicUsize, Ordering};

use api::catalog::{CatalogClient, Product};
use api::client::ClientError;

/// The catalog replicas, used in turn.
#[derive(Debug)]
pub struct Catalogs {
    clients: Vec<CatalogClient>,
    current: AtomicUsize,
}

impl Catalogs {
    /// Catalogs at `urls` (at least one).
    pub fn new(http: reqwest::Client, urls: &[String]) -> Self {
        assert!(!urls.is_empty(), "at least one catalog URL");
        Self {
            clients: urls
                .iter()
                .map(|u| CatalogClient::new(http.clone(), u))
                .collect(),
            current: AtomicUsize::new(0),
        }
    }

    /// The replica in use now.
    pub fn current(&self) -> &CatalogClient {
        &self.clients[self.current.load(Ordering::Relaxed) % self.clients.len()]
    }

    /// Moves to the next replica (the one in use failed).
    pub fn advance(&self) {
        self.current.fetch_add(1, Ordering::Relaxed);
    }

    /// `GET /products?min_version=V` from the first replica that answers.
    pub async fn products(&self, min_version: u64) -> Result<Vec<Product>, ClientError> {
        self.first_answer(|c| async move { c.products(min_version).await })
            .await
    }

    /// `GET /products/{name}?min_version=V` from the first replica that answers.
    pub async fn product(&self, name: &str, min_version: u64) -> Result<Product, ClientError> {
        self.first_answer(|c| async move { c.product(name, min_version).await })
            .await
    }

    async fn first_answer<'a, T, F, Fut>(&'a self, call: F) -> Result<T, ClientError>
    where
        F: Fn(&'a CatalogClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let mut last = None;
        for _ in 0..self.clients.len() {
            match call(self.current()).await {
                Err(e) if unavailable(&e) => {
                    self.advance();
                    last = Some(e);
                }
                answer => return answer,
            }
        }
        Err(last.expect("at least one catalog was asked"))
    }
}

/// Whether the replica could not answer (as opposed to answering "no").
fn unavailable(e: &ClientError) -> bool {
    !matches!(e, ClientError::Api { status, .. } if status.is_client_error())
}
