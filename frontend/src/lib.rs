//! ToyStore frontend: the public REST API and storefront page.
//!
//! - [`args`]: the command line ([`api::settings::Frontend`]) resolved into settings;
//! - [`cache`]: the LRU product cache and its correctness rules;
//! - [`catalogs`]: the catalog replicas, read in turn;
//! - [`feed`]: the change-feed subscriber that keeps the cache correct;
//! - [`http`]: the public API, OpenAPI document, storefront page, health and metrics;
//! - [`live`]: the storefront page's live stock (server-sent events relayed from the feed);
//! - [`metrics`]: Prometheus metrics.
//!
//! Orders go to the order group through [`api::GroupClient`], which finds the leader from the
//! replicas' read-only view of the group (the frontend holds no token), follows redirects and
//! retries with the same idempotency key until a deadline.

pub mod args;
pub mod cache;
pub mod catalogs;
pub mod feed;
pub mod http;
pub mod live;
pub mod metrics;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;

use api::GroupClient;

use crate::cache::ProductCache;
use crate::catalogs::Catalogs;
use crate::live::Live;
use crate::metrics::Metrics;

/// Everything needed to run a frontend, from its command line (see [`args`]).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The catalog replicas' base URLs (one Service URL in Kubernetes).
    pub catalog_urls: Vec<String>,
    /// Seed URLs of order replicas.
    pub order_replicas: Vec<String>,
    /// Product cache capacity; 0 turns the cache off.
    pub cache_capacity: usize,
    /// How long a purchase may take, retries included, before answering 503.
    pub order_deadline: Duration,
    /// How long to keep serving, unready, after the shutdown signal (the `drain` of [`serve`]).
    pub shutdown_delay: Duration,
}

/// State shared by the handlers.
pub struct Frontend {
    /// The catalog replicas, read in turn.
    pub catalogs: Arc<Catalogs>,
    /// Purchases and order look-ups, sent to the order leader it finds by itself.
    pub orders: GroupClient,
    pub cache: Arc<ProductCache>,
    pub metrics: Metrics,
    /// The storefront's live streams, fed by the change feed.
    pub live: Arc<Live>,
    /// Set on SIGTERM for the drain period: `/readyz` fails, so load balancers and Service
    /// endpoints stop sending new clients, while requests still in flight or still arriving
    /// are served, with `Connection: close` so clients reconnect elsewhere.
    pub draining: AtomicBool,
}

impl Frontend {
    /// Builds the frontend and starts its background tasks (change feed, membership refresh).
    pub fn start(settings: Settings) -> Arc<Self> {
        let http = api::client::http_client(Duration::from_secs(5));
        let catalogs = Arc::new(Catalogs::new(http, &settings.catalog_urls));
        let cache = Arc::new(ProductCache::new(settings.cache_capacity));
        let orders = GroupClient::new(settings.order_replicas, None, settings.order_deadline);
        let frontend = Arc::new(Self {
            catalogs: catalogs.clone(),
            orders,
            cache: cache.clone(),
            metrics: Metrics::new(),
            live: Arc::new(Live::default()),
            draining: AtomicBool::new(false),
        });
        tokio::spawn(feed::follow(catalogs, cache, frontend.live.clone()));
        tokio::spawn(refresh_membership(frontend.clone()));
        frontend
    }
}

/// Starts a frontend with `settings` and serves it in a task of this process, on a listener
/// bound to loopback port 0, until the task is aborted (see [`servicekit::Spawned`]).
pub async fn spawn_on_loopback(settings: Settings) -> std::io::Result<servicekit::Spawned> {
    let (listener, url) = servicekit::bind_loopback().await?;
    let drain = settings.shutdown_delay;
    let frontend = Frontend::start(settings);
    let task = tokio::spawn(serve(frontend, listener, drain, std::future::pending()));
    Ok(servicekit::Spawned { url, task })
}

/// Serves `frontend` on `listener` until `shutdown` completes. With a `drain` delay it then
/// keeps serving that long with `/readyz` failing (see [`Frontend::draining`]), so load
/// balancers and Service endpoints stop sending clients before it stops. Live streams end as
/// soon as `shutdown` completes, so pages reconnect elsewhere and the drain is not held up.
pub async fn serve(
    frontend: Arc<Frontend>,
    listener: TcpListener,
    drain: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let state = frontend.clone();
    let drain_then_stop = async move {
        shutdown.await;
        state.live.close();
        if !drain.is_zero() {
            tracing::info!(?drain, "draining before shutdown");
            state.draining.store(true, Ordering::Relaxed);
            tokio::time::sleep(drain).await;
        }
    };
    servicekit::serve(
        listener,
        http::router(frontend),
        servicekit::Limits::PUBLIC,
        drain_then_stop,
    )
    .await;
}

/// Re-learns the order group's membership and leader every second.
async fn refresh_membership(frontend: Arc<Frontend>) {
    loop {
        frontend.orders.refresh().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
