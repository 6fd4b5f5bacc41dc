//! The frontend's LRU cache of catalog products, kept correct by the change feed.
//!
//! Rules (docs/design.md, "Frontend"):
//! - an entry is updated or invalidated by every feed event for its product;
//! - while the feed is disconnected the cache is bypassed (reads go to the catalog, nothing is
//!   inserted) and it is cleared when the feed reconnects, since events may have been missed;
//! - a value older than one already seen is never (re)inserted.
//!
//! Reads of the catalog name the lowest version they accept ([`ProductCache::min_version`]):
//! the newest version this frontend has seen of the toy, or made by a purchase through it. Any
//! catalog replica then answers with a value at least that new, so reads through one frontend
//! are monotonic and a purchase is visible to the next read, whichever catalog answers.
//!
//! The last rule needs care with reads racing writes: a read that started before an event or a
//! local purchase may come back with the old value after the event was processed. Each read
//! therefore takes a [`FetchTicket`] first; the value is inserted only if no event, local
//! invalidation or clear touched that product since, and its version is not older than the
//! newest version seen for it.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

use api::catalog::{ChangeEvent, Product};

/// Proof of when a read of the catalog started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchTicket {
    epoch: u64,
    generation: u64,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// Served from the cache.
    Hit(Product),
    /// Not cached: read the catalog, then [`ProductCache::insert`] with this ticket.
    Miss(FetchTicket),
    /// The cache is off or the feed is down: read the catalog and do not insert.
    Bypass,
}

struct Inner {
    lru: Option<LruCache<String, Product>>,
    /// Newest version seen per product, from events and reads.
    seen: HashMap<String, u64>,
    /// Bumped for a product by each event or local invalidation.
    generation: HashMap<String, u64>,
    /// Bumped by every clear.
    epoch: u64,
    feed_connected: bool,
    /// Version of the last purchase through this frontend, per product.
    purchased: HashMap<String, u64>,
    /// The newest version seen or purchased of any product.
    high_water: u64,
}

/// A product cache; `capacity` 0 turns caching off (for evaluation).
pub struct ProductCache {
    inner: Mutex<Inner>,
}

impl ProductCache {
    /// A cache of at most `capacity` products (0: no caching).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                lru: NonZeroUsize::new(capacity).map(LruCache::new),
                seen: HashMap::new(),
                generation: HashMap::new(),
                epoch: 0,
                feed_connected: false,
                purchased: HashMap::new(),
                high_water: 0,
            }),
        }
    }

    /// Whether caching is configured at all.
    pub fn enabled(&self) -> bool {
        self.inner.lock().unwrap().lru.is_some()
    }

    /// Number of cached products.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap()
            .lru
            .as_ref()
            .map_or(0, |l| l.len())
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Looks `name` up.
    pub fn lookup(&self, name: &str) -> Lookup {
        let mut inner = self.inner.lock().unwrap();
        if !inner.feed_connected {
            return Lookup::Bypass;
        }
        let epoch = inner.epoch;
        let generation = inner.generation.get(name).copied().unwrap_or(0);
        match inner.lru.as_mut() {
            None => Lookup::Bypass,
            Some(lru) => match lru.get(name) {
                Some(p) => Lookup::Hit(p.clone()),
                None => Lookup::Miss(FetchTicket { epoch, generation }),
            },
        }
    }

    /// Records a product read from the catalog and about to be served, and caches it under
    /// `ticket` (the one [`lookup`](Self::lookup) gave; `None` after a bypass) unless
    /// something happened to the product since the lookup. Returns whether it was cached.
    ///
    /// Every served value raises the newest version seen, even one that is not cached: a slower
    /// read that started earlier must not insert an older value afterwards. And a cached entry
    /// older than the served value is dropped, so no later hit goes back in time.
    pub fn insert(&self, product: Product, ticket: Option<FetchTicket>) -> bool {
        let mut inner = self.inner.lock().unwrap();
        let name = product.name.clone();
        let seen = inner.seen.get(&name).copied().unwrap_or(0);
        inner.seen.insert(name.clone(), seen.max(product.version));
        inner.high_water = inner.high_water.max(product.version);
        let current = FetchTicket {
            epoch: inner.epoch,
            generation: inner.generation.get(&name).copied().unwrap_or(0),
        };
        let fresh = inner.feed_connected && ticket == Some(current) && product.version >= seen;
        let Some(lru) = inner.lru.as_mut() else {
            return false;
        };
        if fresh {
            lru.put(name, product);
            return true;
        }
        if lru.peek(&name).is_some_and(|c| c.version < product.version) {
            lru.pop(&name);
        }
        false
    }

    /// Applies a feed event: the cached entry (if any) takes the event's newer state.
    pub fn apply(&self, event: &ChangeEvent) {
        let mut inner = self.inner.lock().unwrap();
        let name = &event.product.name;
        let seen = inner.seen.entry(name.clone()).or_insert(0);
        *seen = (*seen).max(event.version);
        inner.high_water = inner.high_water.max(event.version);
        *inner.generation.entry(name.clone()).or_insert(0) += 1;
        if let Some(lru) = inner.lru.as_mut()
            && let Some(cached) = lru.peek_mut(name)
            && cached.version < event.version
        {
            *cached = Product {
                version: event.version,
                ..event.product.clone()
            };
        }
    }

    /// Drops `name` after a purchase through this frontend (applied at `version`, when it
    /// reached an outcome), so the next read asks the catalog for at least that version.
    pub fn purchased(&self, name: &str, version: Option<u64>) {
        let mut inner = self.inner.lock().unwrap();
        *inner.generation.entry(name.to_string()).or_insert(0) += 1;
        if let Some(v) = version {
            let at = inner.purchased.entry(name.to_string()).or_insert(0);
            *at = (*at).max(v);
            inner.high_water = inner.high_water.max(v);
        }
        if let Some(lru) = inner.lru.as_mut() {
            lru.pop(name);
        }
    }

    /// The lowest version a read of `name` from the catalog may accept: the newest this
    /// frontend has seen of it or made by a purchase.
    pub fn min_version(&self, name: &str) -> u64 {
        let inner = self.inner.lock().unwrap();
        let seen = inner.seen.get(name).copied().unwrap_or(0);
        seen.max(inner.purchased.get(name).copied().unwrap_or(0))
    }

    /// The lowest version a read of every product may accept.
    pub fn min_version_of_all(&self) -> u64 {
        self.inner.lock().unwrap().high_water
    }

    /// Records the feed's state. Going down bypasses the cache; coming up clears it, since
    /// events may have been missed in between.
    pub fn set_feed_connected(&self, connected: bool) {
        let mut inner = self.inner.lock().unwrap();
        if connected != inner.feed_connected {
            inner.feed_connected = connected;
            Self::clear_locked(&mut inner);
        }
    }

    /// Whether the feed is connected (the cache is in use).
    pub fn feed_connected(&self) -> bool {
        self.inner.lock().unwrap().feed_connected
    }

    /// Drops every entry (feed gap or reset).
    pub fn clear(&self) {
        Self::clear_locked(&mut self.inner.lock().unwrap());
    }

    fn clear_locked(inner: &mut Inner) {
        inner.epoch += 1;
        if let Some(lru) = inner.lru.as_mut() {
            lru.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(name: &str, quantity: u32, version: u64) -> Product {
        Product {
            name: name.into(),
            price: 9.5,
            quantity,
            version,
        }
    }

    fn event(name: &str, quantity: u32, version: u64) -> ChangeEvent {
        ChangeEvent {
            version,
            product: product(name, quantity, version),
        }
    }

    fn connected(capacity: usize) -> ProductCache {
        let c = ProductCache::new(capacity);
        c.set_feed_connected(true);
        c
    }

    fn miss(cache: &ProductCache, name: &str) -> FetchTicket {
        match cache.lookup(name) {
            Lookup::Miss(t) => t,
            other => panic!("expected a miss, got {other:?}"),
        }
    }

    #[test]
    fn second_lookup_is_a_hit() {
        let cache = connected(10);
        let t = miss(&cache, "Tux");
        assert!(cache.insert(product("Tux", 5, 1), Some(t)));
        assert_eq!(cache.lookup("Tux"), Lookup::Hit(product("Tux", 5, 1)));
    }

    #[test]
    fn event_updates_cached_entry() {
        let cache = connected(10);
        let t = miss(&cache, "Tux");
        cache.insert(product("Tux", 5, 1), Some(t));
        cache.apply(&event("Tux", 3, 2));
        assert_eq!(cache.lookup("Tux"), Lookup::Hit(product("Tux", 3, 2)));
    }

    #[test]
    fn read_that_raced_an_event_is_not_inserted() {
        let cache = connected(10);
        let t = miss(&cache, "Tux");
        cache.apply(&event("Tux", 3, 7)); // arrives while the read is in flight
        assert!(
            !cache.insert(product("Tux", 5, 6), Some(t)),
            "stale value reinserted"
        );
        assert!(matches!(cache.lookup("Tux"), Lookup::Miss(_)));
    }

    #[test]
    fn value_older_than_one_seen_is_never_inserted() {
        let cache = connected(10);
        cache.apply(&event("Tux", 3, 7));
        let t = miss(&cache, "Tux");
        assert!(!cache.insert(product("Tux", 5, 6), Some(t)));
        let t = miss(&cache, "Tux");
        assert!(cache.insert(product("Tux", 3, 7), Some(t)));
    }

    #[test]
    fn local_invalidation_beats_an_in_flight_read() {
        let cache = connected(10);
        let t = miss(&cache, "Tux");
        cache.purchased("Tux", None); // a purchase through this frontend completed
        assert!(!cache.insert(product("Tux", 5, 1), Some(t)));
    }

    #[test]
    fn disconnected_feed_bypasses_and_reconnect_clears() {
        let cache = connected(10);
        let t = miss(&cache, "Tux");
        cache.insert(product("Tux", 5, 1), Some(t));
        cache.set_feed_connected(false);
        assert_eq!(cache.lookup("Tux"), Lookup::Bypass);
        cache.set_feed_connected(true);
        assert!(
            matches!(cache.lookup("Tux"), Lookup::Miss(_)),
            "cleared on reconnect"
        );
    }

    #[test]
    fn read_started_before_a_clear_is_not_inserted() {
        let cache = connected(10);
        let t = miss(&cache, "Tux");
        cache.clear();
        assert!(!cache.insert(product("Tux", 5, 1), Some(t)));
    }

    #[test]
    fn a_served_value_is_never_followed_by_an_older_one() {
        // Read A looks up, then a purchase here invalidates; read B looks up and reads the
        // catalog (v10) before A does (v12). A serves v12 but may not cache it (its ticket is
        // stale); B then tries to cache v10: that would serve v10 after v12.
        let cache = connected(10);
        let a = miss(&cache, "Tux");
        cache.purchased("Tux", None);
        let b = miss(&cache, "Tux");
        assert!(!cache.insert(product("Tux", 660, 12), Some(a)));
        assert!(!cache.insert(product("Tux", 664, 10), Some(b)));
        assert!(matches!(cache.lookup("Tux"), Lookup::Miss(_)));
    }

    #[test]
    fn a_cached_entry_older_than_a_served_value_is_dropped() {
        let cache = connected(10);
        let a = miss(&cache, "Tux");
        let b = miss(&cache, "Tux");
        assert!(cache.insert(product("Tux", 10, 3), Some(b)));
        cache.apply(&event("Tux", 9, 4)); // a's ticket goes stale; the entry moves to v4
        assert!(!cache.insert(product("Tux", 8, 5), Some(a)));
        assert!(
            matches!(cache.lookup("Tux"), Lookup::Miss(_)),
            "v4 must not be served after v5"
        );
    }

    #[test]
    fn values_served_while_the_feed_is_down_count_too() {
        let cache = ProductCache::new(10);
        let t = {
            cache.set_feed_connected(true);
            miss(&cache, "Tux")
        };
        cache.set_feed_connected(false);
        assert!(!cache.insert(product("Tux", 5, 9), None)); // a bypassed read served v9
        cache.set_feed_connected(true);
        let late = miss(&cache, "Tux");
        assert!(!cache.insert(product("Tux", 6, 8), Some(t)));
        assert!(!cache.insert(product("Tux", 6, 8), Some(late)));
    }

    #[test]
    fn capacity_zero_turns_caching_off_and_lru_evicts() {
        let off = connected(0);
        assert_eq!(off.lookup("Tux"), Lookup::Bypass);
        let cache = connected(2);
        for (i, name) in ["A", "B", "C"].iter().enumerate() {
            let t = miss(&cache, name);
            cache.insert(product(name, 1, i as u64), Some(t));
        }
        assert_eq!(cache.len(), 2);
        assert!(
            matches!(cache.lookup("A"), Lookup::Miss(_)),
            "least recently used evicted"
        );
    }
}
