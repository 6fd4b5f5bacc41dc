//! The catalog's view of the inventory, kept by the order group's change stream.
//!
//! The view holds every toy as of a version (a log index of the order group) and the last
//! [`WINDOW`] changes, which it relays to the frontends as its own change feed with the group's
//! versions. It only moves forward: a batch from a replica that is behind adds nothing, so a
//! catalog that switches replicas never goes back in time. Reads name the lowest version they
//! accept and wait (bounded) until the view gets there ([`View::wait_for`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::RwLock;
use std::time::Duration;

use api::catalog::{ChangeBatch, ChangeEvent, Product};
use tokio::sync::watch;

/// Changes kept for the frontends' feed: a frontend further behind starts again from the whole
/// inventory.
pub const WINDOW: usize = 10_000;

/// Most events one feed answer carries.
pub const MAX_EVENTS: usize = 2_000;

/// What the view knows.
#[derive(Debug, Default)]
struct State {
    products: BTreeMap<String, Product>,
    /// Every change up to here is in `products`.
    version: u64,
    /// Whether the group's inventory has been defined.
    defined: bool,
    /// Whether a first answer of the change stream has arrived.
    synced: bool,
    /// The last changes, oldest first.
    window: VecDeque<ChangeEvent>,
    /// Every change after this version is in `window`.
    window_from: u64,
}

/// The inventory as this catalog sees it. See the module documentation.
#[derive(Debug)]
pub struct View {
    state: RwLock<State>,
    version: watch::Sender<u64>,
}

impl Default for View {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            version: watch::Sender::new(0),
        }
    }
}

impl View {
    /// Takes in one answer of the group's change stream.
    pub fn apply(&self, batch: ChangeBatch) {
        let mut s = self.state.write().unwrap();
        s.synced = true;
        s.defined |= batch.defined;
        if batch.reset {
            if batch.version < s.version {
                return; // a replica further behind than this view: nothing new
            }
            s.products = batch
                .snapshot
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.name.clone(), p))
                .collect();
            s.window.clear();
            s.window_from = batch.version;
            s.version = batch.version;
        } else {
            for event in batch.events {
                if event.version <= s.version {
                    continue;
                }
                s.products
                    .insert(event.product.name.clone(), event.product.clone());
                s.window.push_back(event);
            }
            s.version = s.version.max(batch.version);
            while s.window.len() > WINDOW {
                let oldest = s.window.pop_front().expect("not empty").version;
                s.window_from = oldest;
                // A version's changes go whole, so none of `oldest` is left half.
                while s.window.front().is_some_and(|e| e.version == oldest) {
                    s.window.pop_front();
                }
            }
        }
        let version = s.version;
        drop(s);
        self.version.send_if_modified(|v| {
            let newer = version > *v;
            *v = (*v).max(version);
            newer
        });
    }

    /// How far the view goes.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Whether the view has heard from the group, and the group's inventory is defined.
    pub fn is_ready(&self) -> bool {
        let s = self.state.read().unwrap();
        s.synced && s.defined
    }

    /// Whether the view has heard from the group at all.
    pub fn is_synced(&self) -> bool {
        self.state.read().unwrap().synced
    }

    /// Whether the group's inventory has been defined, as far as the view knows.
    pub fn is_defined(&self) -> bool {
        self.state.read().unwrap().defined
    }

    /// A receiver of the view's version, raised after each change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Waits until the view has reached `min_version`, at most `patience`; false if it has not.
    pub async fn wait_for(&self, min_version: u64, patience: Duration) -> bool {
        let mut version = self.subscribe();
        tokio::time::timeout(patience, version.wait_for(|v| *v >= min_version))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Every toy, by name.
    pub fn products(&self) -> Vec<Product> {
        self.state
            .read()
            .unwrap()
            .products
            .values()
            .cloned()
            .collect()
    }

    /// The toy called `name`.
    pub fn product(&self, name: &str) -> Option<Product> {
        self.state.read().unwrap().products.get(name).cloned()
    }

    /// Number of toys.
    pub fn len(&self) -> usize {
        self.state.read().unwrap().products.len()
    }

    /// Whether the view holds no toy.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The toys at 0 (to restock).
    pub fn sold_out(&self) -> Vec<String> {
        self.state
            .read()
            .unwrap()
            .products
            .values()
            .filter(|p| p.quantity == 0)
            .map(|p| p.name.clone())
            .collect()
    }

    /// The feed after `after`, as the view has it now: the changes (at most [`MAX_EVENTS`]),
    /// or, when `after` is older than the window, the whole inventory (`reset`).
    pub fn changes(&self, after: u64) -> ChangeBatch {
        let s = self.state.read().unwrap();
        if after < s.window_from {
            return ChangeBatch {
                events: Vec::new(),
                version: s.version,
                reset: true,
                snapshot: Some(s.products.values().cloned().collect()),
                defined: s.defined,
            };
        }
        let start = s.window.partition_point(|e| e.version <= after);
        let mut events: Vec<ChangeEvent> = s.window.range(start..).cloned().collect();
        let mut version = s.version.max(after);
        if events.len() > MAX_EVENTS {
            // Cut between versions, so a subscriber never sees half of one.
            let cut = events[MAX_EVENTS].version;
            events.retain(|e| e.version < cut);
            version = events.last().map_or(after, |e| e.version);
        }
        ChangeBatch {
            events,
            version,
            reset: false,
            snapshot: None,
            defined: s.defined,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(name: &str, quantity: u32, version: u64) -> Product {
        Product {
            name: name.into(),
            price: 1.0,
            quantity,
            version,
        }
    }

    fn event(name: &str, quantity: u32, version: u64) -> ChangeEvent {
        ChangeEvent {
            version,
            product: toy(name, quantity, version),
        }
    }

    fn batch(events: Vec<ChangeEvent>, version: u64) -> ChangeBatch {
        ChangeBatch {
            events,
            version,
            reset: false,
            snapshot: None,
            defined: true,
        }
    }

    #[test]
    fn the_view_only_moves_forward() {
        let view = View::default();
        assert!(!view.is_ready());
        view.apply(batch(vec![event("Tux", 5, 1), event("Fox", 3, 1)], 4));
        assert!(view.is_ready());
        assert_eq!(view.version(), 4);
        view.apply(batch(vec![event("Tux", 4, 6)], 7));
        // A replica behind answers with older changes and an older version: nothing moves.
        view.apply(batch(vec![event("Tux", 5, 1)], 5));
        assert_eq!(view.version(), 7);
        assert_eq!(view.product("Tux").unwrap().quantity, 4);
        // And a reset from a replica behind is ignored too.
        view.apply(ChangeBatch {
            events: Vec::new(),
            version: 3,
            reset: true,
            snapshot: Some(vec![toy("Tux", 5, 1)]),
            defined: true,
        });
        assert_eq!(view.product("Tux").unwrap().quantity, 4);
        assert_eq!(view.product("Fox").unwrap().quantity, 3);
    }

    #[test]
    fn the_feed_relays_changes_with_the_groups_versions_and_resets_the_far_behind() {
        let view = View::default();
        view.apply(ChangeBatch {
            events: Vec::new(),
            version: 10,
            reset: true,
            snapshot: Some(vec![toy("Tux", 5, 8), toy("Fox", 0, 9)]),
            defined: true,
        });
        assert_eq!(view.sold_out(), ["Fox"]);
        view.apply(batch(vec![event("Tux", 4, 12), event("Fox", 100, 13)], 15));
        let feed = view.changes(10);
        assert!(!feed.reset);
        let versions: Vec<u64> = feed.events.iter().map(|e| e.version).collect();
        assert_eq!((versions, feed.version), (vec![12, 13], 15));
        assert_eq!(view.changes(12).events.len(), 1);
        // Older than what the view was started from: the whole inventory.
        let old = view.changes(9);
        assert!(old.reset);
        assert_eq!(old.snapshot.unwrap().len(), 2);
        assert_eq!(old.version, 15);
        // Ahead of the view (another catalog got further): nothing yet, never a lower version.
        assert_eq!(view.changes(20).version, 20);
    }

    #[tokio::test]
    async fn a_read_waits_for_its_min_version() {
        let view = std::sync::Arc::new(View::default());
        view.apply(batch(vec![event("Tux", 5, 1)], 1));
        assert!(view.wait_for(1, Duration::ZERO).await);
        assert!(!view.wait_for(2, Duration::from_millis(20)).await);
        let waiting = tokio::spawn({
            let view = view.clone();
            async move { view.wait_for(3, Duration::from_secs(10)).await }
        });
        view.apply(batch(vec![event("Tux", 4, 3)], 3));
        assert!(waiting.await.unwrap());
    }
}
