//! Recording operations as clients make them.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `POST /orders` with this idempotency key.
    Purchase {
        /// Sent as `Idempotency-Key`; the final state holds the purchase under it
        /// ([`ReplicaOrders::by_key`](crate::ReplicaOrders::by_key)).
        key: String,
        /// The toy to buy; one the store does not sell is refused (404), not an error.
        name: String,
        /// Units to buy.
        quantity: u32,
    },
    /// `GET /orders/{number}`.
    ReadOrder {
        /// The number read; one no purchase has got (yet) answers 404 ([`Outcome::NoOrder`]).
        number: u64,
    },
    /// `GET /products/{name}`.
    ReadProduct {
        /// The toy read, as the catalog names it.
        name: String,
    },
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The purchase was confirmed under this number.
    Confirmed {
        /// The dense order number the store gave it (`0, 1, 2, ...` across the store).
        number: u64,
    },
    /// A definite refusal (4xx): the operation changed nothing.
    Refused {
        /// The 4xx status, e.g. 409 sold out, 404 unknown toy, 422 key reused for another purchase.
        status: u16,
    },
    /// An order read found the order.
    Order {
        /// The toy the order holds, compared with the purchase that got the number.
        name: String,
        /// The units the order holds, compared likewise.
        quantity: u32,
    },
    /// An order read answered 404.
    NoOrder,
    /// A product read.
    Product {
        /// Units in stock.
        quantity: u32,
        /// The product's version (its `ETag`): the index of the order group's log entry that
        /// last changed its stock.
        version: u64,
    },
    /// Timeout, connection error or 5xx: it may or may not have happened.
    Unknown {
        /// What the client saw.
        error: String,
    },
}

/// One completed operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The client (a sequential process) that made it.
    pub client: usize,
    /// The frontend (or replica) it was sent to.
    pub server: usize,
    /// What was asked.
    pub op: Op,
    /// Nanoseconds since the recording started, when the request was sent.
    pub invoked: u64,
    /// Nanoseconds since the recording started, when the answer arrived.
    pub completed: u64,
    /// What came back.
    pub outcome: Outcome,
}

/// Collects events from many client tasks. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    start: Instant,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// Starts a recording; times are measured from now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            events: Arc::default(),
        }
    }

    /// Notes that `client` sends `op` to `server` now.
    pub fn invoke(&self, client: usize, server: usize, op: Op) -> Invocation {
        Invocation {
            recorder: self.clone(),
            client,
            server,
            op,
            invoked: self.now(),
        }
    }

    /// Every completed operation so far, in completion order.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Nanoseconds since the recording started, on the clock of [`Event::invoked`] and
    /// [`Event::completed`] (to place something outside the history, such as a backup, in it).
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// An operation in flight; [`complete`](Self::complete) records it. One dropped without being
/// completed is recorded as [`Outcome::Unknown`]: a client that gave up does not know.
#[derive(Debug)]
pub struct Invocation {
    recorder: Recorder,
    client: usize,
    server: usize,
    op: Op,
    invoked: u64,
}

impl Invocation {
    /// Records the answer.
    pub fn complete(self, outcome: Outcome) {
        let completed = self.recorder.now();
        let event = Event {
            client: self.client,
            server: self.server,
            op: self.op.clone(),
            invoked: self.invoked,
            completed,
            outcome,
        };
        self.recorder.events.lock().unwrap().push(event);
        std::mem::forget(self);
    }
}

impl Drop for Invocation {
    fn drop(&mut self) {
        let event = Event {
            client: self.client,
            server: self.server,
            op: self.op.clone(),
            invoked: self.invoked,
            completed: u64::MAX,
            outcome: Outcome::Unknown {
                error: "abandoned".into(),
            },
        };
        if let Ok(mut events) = self.recorder.events.lock() {
            events.push(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocations_record_times_and_outcomes() {
        let rec = Recorder::new();
        let a = rec.invoke(0, 1, Op::ReadOrder { number: 3 });
        a.complete(Outcome::NoOrder);
        drop(rec.invoke(1, 0, Op::ReadOrder { number: 4 }));
        let events = rec.events();
        assert_eq!(events.len(), 2);
        assert!(events[0].invoked <= events[0].completed);
        assert_eq!(events[0].outcome, Outcome::NoOrder);
        assert!(matches!(events[1].outcome, Outcome::Unknown { .. }));
        assert_eq!(events[1].completed, u64::MAX);
    }
}
