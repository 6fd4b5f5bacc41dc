//! What the catalog's handlers and tasks share: the view, the order group, metrics.

use std::sync::Arc;
use std::time::Duration;

use api::GroupClient;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::view::View;

/// How long one inventory command (define, restock) may take, leader changes included.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(10);

/// The running catalog.
#[derive(Debug)]
pub struct Catalog {
    /// The view of the inventory.
    pub view: View,
    /// The order group, with the cluster token (the change stream and inventory commands).
    pub group: GroupClient,
    /// The cluster token.
    pub token: String,
    /// Its Prometheus counters and gauges (`GET /metrics`).
    pub metrics: Metrics,
    shutting_down: watch::Sender<bool>,
}

impl Catalog {
    /// A catalog over the order group at `order_replicas` (a seed list; the rest is learned).
    pub fn new(order_replicas: Vec<String>, token: String) -> Arc<Self> {
        Arc::new(Self {
            view: View::default(),
            group: GroupClient::new(order_replicas, Some(token.clone()), COMMAND_DEADLINE),
            token,
            metrics: Metrics::new(),
            shutting_down: watch::Sender::new(false),
        })
    }

    /// A receiver that turns `true` when the service begins to shut down.
    pub fn shutdown_receiver(&self) -> watch::Receiver<bool> {
        self.shutting_down.subscribe()
    }

    /// Tells long-polls to answer now: the server is going away.
    pub fn begin_shutdown(&self) {
        self.shutting_down.send_replace(true);
    }
}
