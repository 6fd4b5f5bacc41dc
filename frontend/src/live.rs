//! Live stock for the storefront page: `GET /events`, a stream of server-sent events.
//!
//! The frontend already follows the catalog's change feed to keep its cache correct
//! ([`crate::feed`]). This module relays what the feed learns to browsers, so a page shows
//! another shopper's purchase (or a restock) without being reloaded. Server-sent events, not
//! polling: one connection per open page, pushed within a feed round trip, and the browser's
//! `EventSource` reconnects by itself.
//!
//! Two kinds of event, each with JSON data:
//! - `snapshot` — `{"products": [{"name", "price", "quantity", "version"}, ...]}`: the whole
//!   catalog. Sent first, and again whenever this stream may have missed a change (the feed
//!   reconnected, reset or skipped versions, or the stream fell behind the relay's buffer).
//! - `change` — `{"version", "product": {"name", "price", "quantity", "version"}}`: one toy
//!   changed. A page applies it only when `version` is newer than the one it shows.
//!
//! A stream subscribes to the relay *before* it reads the snapshot, so no change can fall
//! between the two; a change the snapshot already holds is recognised by its version.
//!
//! Bounds: at most [`MAX_STREAMS`] streams at once (a page beyond that is told 503 and polls
//! `GET /products` instead); a comment every [`KEEP_ALIVE`] keeps proxies from timing the
//! stream out; every stream ends when the frontend starts draining or shutting down, and a
//! draining frontend opens none, so pages reconnect to another frontend.
//!
//! This is the storefront page's own channel, like `GET /` itself, not part of the public REST
//! API: it is documented in the README, not in the OpenAPI document.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};

use api::catalog::{ChangeEvent, Product};
use servicekit::HttpError;

use crate::Frontend;

/// Most live streams served at once (each holds one of the listener's connections).
pub const MAX_STREAMS: usize = 256;
/// How often an idle stream sends a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Changes the relay buffers for a slow stream before that stream must resynchronise.
const RELAY_CAPACITY: usize = 1024;
/// How long a stream waits before asking the catalog again for a snapshot it could not get.
const SNAPSHOT_RETRY: Duration = Duration::from_secs(1);

/// What the feed tells the streams.
#[derive(Debug, Clone)]
enum Notice {
    /// One toy changed.
    Change(ChangeEvent),
    /// Changes may have been missed: every stream sends a new snapshot.
    Resync,
}

/// The frontend's live streams: the relay the feed publishes to, the stream limit, and the
/// switch that ends every stream at shutdown.
#[derive(Debug)]
pub struct Live {
    relay: broadcast::Sender<Notice>,
    streams: Arc<Semaphore>,
    closing: watch::Sender<bool>,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            relay: broadcast::channel(RELAY_CAPACITY).0,
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
            closing: watch::channel(false).0,
        }
    }
}

impl Live {
    /// Passes one change of the catalog on to every stream.
    pub fn changed(&self, event: &ChangeEvent) {
        // No stream open: nobody to tell.
        let _ = self.relay.send(Notice::Change(event.clone()));
    }

    /// Tells every stream to send a new snapshot: changes may have been missed.
    pub fn resync(&self) {
        let _ = self.relay.send(Notice::Resync);
    }

    /// Ends every stream and refuses new ones (at the start of a drain or a shutdown).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

/// The data of a `snapshot` event.
#[derive(Serialize)]
struct Snapshot<'a> {
    products: &'a [Product],
}

/// One stream's state between events.
struct StreamState {
    frontend: Arc<Frontend>,
    notices: broadcast::Receiver<Notice>,
    closing: watch::Receiver<bool>,
    need_snapshot: bool,
    _permit: OwnedSemaphorePermit,
}

fn event(name: &str, data: &impl Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .expect("products serialize to JSON")
}

impl StreamState {
    /// The next event to send, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            if self.need_snapshot {
                match self
                    .frontend
                    .catalogs
                    .products(self.frontend.cache.min_version_of_all())
                    .await
                {
                    Ok(products) => {
                        self.need_snapshot = false;
                        return Some(event(
                            "snapshot",
                            &Snapshot {
                                products: &products,
                            },
                        ));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "live stream: no snapshot yet; retrying");
                        tokio::select! {
                            _ = self.closing.wait_for(|c| *c) => return None,
                            _ = tokio::time::sleep(SNAPSHOT_RETRY) => continue,
                        }
                    }
                }
            }
            tokio::select! {
                _ = self.closing.wait_for(|c| *c) => return None,
                notice = self.notices.recv() => match notice {
                    Ok(Notice::Change(change)) => return Some(event("change", &change)),
                    Ok(Notice::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.need_snapshot = true;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }
}

/// `GET /events`: the storefront's live stock (see the module documentation).
pub async fn events(
    State(frontend): State<Arc<Frontend>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, HttpError> {
    let live = &frontend.live;
    if frontend.draining.load(Ordering::Relaxed) || *live.closing.borrow() {
        return Err(HttpError::unavailable("shutting down"));
    }
    let permit = live.streams.clone().try_acquire_owned().map_err(|_| {
        HttpError::unavailable(format!(
            "{MAX_STREAMS} live pages already open; poll GET /products instead"
        ))
    })?;
    // Subscribe first, then read the snapshot: no change falls between the two.
    let state = StreamState {
        notices: live.relay.subscribe(),
        closing: live.closing.subscribe(),
        frontend: frontend.clone(),
        need_snapshot: true,
        _permit: permit,
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((Ok(event), state))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
