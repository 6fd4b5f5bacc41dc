//! The checkers. Each takes the recorded events and the final state and returns what it found
//! wrong; an empty list is a pass.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use api::catalog::TakeOutcome;

use crate::linearizable::{Model, Operation, is_linearizable};
use crate::record::{Event, Op, Outcome};
use crate::state::{FinalState, ReplicaOrders, StoredStatus};

/// Something the store did that it must never do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which property (the checker's name).
    pub property: &'static str,
    /// What exactly, for a person.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.property, self.detail)
    }
}

fn violation(property: &'static str, detail: String) -> Violation {
    Violation { property, detail }
}

/// Runs every checker.
pub fn check_all(events: &[Event], state: &FinalState) -> Vec<Violation> {
    let mut out = acknowledged_orders_kept(events, state);
    out.extend(one_outcome_per_key(events, state));
    out.extend(numbers_dense(state));
    out.extend(order_reads_linearizable(events, state));
    out.extend(product_reads_monotonic(events));
    out.extend(stock_invariant(state));
    out.extend(replicas_converge(state));
    out
}

/// Every purchase the store confirmed to a client is in every replica's final state, under the
/// key, toy, quantity and number it was confirmed with.
pub fn acknowledged_orders_kept(events: &[Event], state: &FinalState) -> Vec<Violation> {
    const P: &str = "acknowledged order kept";
    let mut out = Vec::new();
    for e in events {
        let (
            Op::Purchase {
                key,
                name,
                quantity,
            },
            Outcome::Confirmed { number },
        ) = (&e.op, &e.outcome)
        else {
            continue;
        };
        for (id, replica) in &state.replicas {
            match replica.by_key.get(key) {
                Some(o)
                    if o.status == StoredStatus::Confirmed { number: *number }
                        && &o.name == name
                        && o.quantity == *quantity => {}
                other => out.push(violation(
                    P,
                    format!(
                        "order {number} (key {key}, {quantity} x {name}) was acknowledged but \
                         replica {id} holds {other:?}"
                    ),
                )),
            }
            match replica.by_number.get(number) {
                Some((n, q)) if n == name && q == quantity => {}
                other => out.push(violation(
                    P,
                    format!(
                        "order {number} (key {key}) was acknowledged but replica {id} serves \
                         {other:?} under that number"
                    ),
                )),
            }
        }
    }
    out
}

/// A key has one outcome: the answers clients got for it agree with each other and with the
/// final state (a key confirmed twice under two numbers is a duplicated order; a key refused and
/// yet confirmed is a purchase the client was told did not happen).
pub fn one_outcome_per_key(events: &[Event], state: &FinalState) -> Vec<Violation> {
    const P: &str = "one outcome per key";
    let mut out = Vec::new();
    let mut numbers: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    let mut refused: BTreeSet<&str> = BTreeSet::new();
    for e in events {
        let Op::Purchase { key, .. } = &e.op else {
            continue;
        };
        match &e.outcome {
            Outcome::Confirmed { number } => {
                numbers.entry(key).or_default().insert(*number);
            }
            // 422 is a key reused with another body: it says nothing about the key's order.
            Outcome::Refused { status } if *status != 422 => {
                refused.insert(key);
            }
            _ => {}
        }
    }
    for (key, ns) in &numbers {
        if ns.len() > 1 {
            out.push(violation(
                P,
                format!("key {key} was confirmed under several numbers {ns:?}"),
            ));
        }
        if refused.contains(key) {
            out.push(violation(
                P,
                format!("key {key} was both confirmed {ns:?} and refused"),
            ));
        }
    }
    if let Some(reference) = state.reference() {
        for key in refused.difference(&numbers.keys().copied().collect()) {
            if let Some(o) = reference.by_key.get(*key)
                && let StoredStatus::Confirmed { number } = o.status
            {
                out.push(violation(
                    P,
                    format!("key {key} was refused to a client but holds order {number}"),
                ));
            }
        }
    }
    out
}

/// Confirmed order numbers are exactly `0..n` on every replica, each held by one key, and
/// nothing is left pending once faults have healed.
pub fn numbers_dense(state: &FinalState) -> Vec<Violation> {
    const P: &str = "dense order numbers";
    let mut out = Vec::new();
    for (id, replica) in &state.replicas {
        let n = replica.by_number.len() as u64;
        if let Some(last) = replica.by_number.keys().next_back()
            && *last + 1 != n
        {
            out.push(violation(
                P,
                format!("replica {id} holds {n} orders but the highest number is {last}"),
            ));
        }
        let mut owner: BTreeMap<u64, &str> = BTreeMap::new();
        for (key, o) in &replica.by_key {
            match o.status {
                StoredStatus::Confirmed { number } => {
                    if let Some(other) = owner.insert(number, key) {
                        out.push(violation(
                            P,
                            format!("replica {id}: order {number} belongs to {other} and {key}"),
                        ));
                    }
                    if !replica.by_number.contains_key(&number) {
                        out.push(violation(
                            P,
                            format!("replica {id}: key {key} holds order {number}, not served"),
                        ));
                    }
                }
                StoredStatus::Pending => out.push(violation(
                    P,
                    format!("replica {id}: key {key} is still pending after healing"),
                )),
                StoredStatus::Rejected => {}
            }
        }
    }
    out
}

/// The sequential model of one order number: absent until its purchase takes effect, then that
/// order for good.
struct OrderSlot;

#[derive(Debug, Clone)]
enum SlotInput {
    /// The purchase that got this number.
    Confirm(String, u32),
    /// A read of the number.
    Read,
}

#[derive(Debug, Clone)]
enum SlotOutput {
    Done,
    Found(String, u32),
    Missing,
}

impl Model for OrderSlot {
    type State = Option<(String, u32)>;
    type Input = SlotInput;
    type Output = SlotOutput;

    fn init(&self) -> Self::State {
        None
    }

    fn step(&self, s: &Self::State, input: &SlotInput, output: &SlotOutput) -> Option<Self::State> {
        match (input, output, s) {
            (SlotInput::Confirm(n, q), SlotOutput::Done, None) => Some(Some((n.clone(), *q))),
            (SlotInput::Read, SlotOutput::Missing, None) => Some(None),
            (SlotInput::Read, SlotOutput::Found(n, q), Some((sn, sq))) if n == sn && q == sq => {
                Some(s.clone())
            }
            _ => None,
        }
    }
}

/// Order reads are linearizable: checked per order number against [`OrderSlot`], with the
/// purchase that got the number (known from the final state) as its only write. A purchase
/// whose answer was lost may take effect any time after it was sent.
pub fn order_reads_linearizable(events: &[Event], state: &FinalState) -> Vec<Violation> {
    const P: &str = "linearizable order reads";
    let Some(reference) = state.reference() else {
        return Vec::new();
    };
    let mut slots: BTreeMap<u64, Vec<Operation<SlotInput, SlotOutput>>> = BTreeMap::new();
    for e in events {
        if let Op::ReadOrder { number } = &e.op {
            let output = match &e.outcome {
                Outcome::Order { name, quantity } => SlotOutput::Found(name.clone(), *quantity),
                Outcome::NoOrder => SlotOutput::Missing,
                _ => continue, // an unanswered read constrains nothing
            };
            slots.entry(*number).or_default().push(Operation {
                call: e.invoked,
                ret: e.completed,
                input: SlotInput::Read,
                output,
            });
        }
    }
    // The write of each number: the purchase (the earliest invocation) of the key that holds it.
    let mut first_purchase: BTreeMap<&str, &Event> = BTreeMap::new();
    for e in events {
        if let Op::Purchase { key, .. } = &e.op {
            let slot = first_purchase.entry(key).or_insert(e);
            if e.invoked < slot.invoked {
                *slot = e;
            }
        }
    }
    let mut out = Vec::new();
    for (number, reads) in &mut slots {
        let writer = reference.by_key.iter().find_map(|(key, o)| {
            (o.status == StoredStatus::Confirmed { number: *number })
                .then(|| (key.as_str(), o.name.clone(), o.quantity))
        });
        if let Some((key, name, quantity)) = writer {
            // The key's orders were all sent by the history's clients; without one it was
            // placed before the recording, i.e. before every read.
            let (call, ret) = match first_purchase.get(key) {
                Some(e) => {
                    let acked = events.iter().any(|x| {
                        matches!(&x.op, Op::Purchase { key: k, .. } if k == key)
                            && matches!(x.outcome, Outcome::Confirmed { .. })
                    });
                    let ret = if acked {
                        events
                            .iter()
                            .filter(|x| matches!(&x.op, Op::Purchase { key: k, .. } if k == key))
                            .filter(|x| matches!(x.outcome, Outcome::Confirmed { .. }))
                            .map(|x| x.completed)
                            .min()
                            .unwrap_or(u64::MAX)
                    } else {
                        u64::MAX
                    };
                    (e.invoked, ret)
                }
                None => (0, 0),
            };
            reads.push(Operation {
                call,
                ret,
                input: SlotInput::Confirm(name, quantity),
                output: SlotOutput::Done,
            });
        }
        if !is_linearizable(&OrderSlot, reads) {
            out.push(violation(
                P,
                format!(
                    "reads of order {number} are not linearizable with its purchase: {}",
                    describe(reads)
                ),
            ));
        }
    }
    out
}

fn describe(ops: &[Operation<SlotInput, SlotOutput>]) -> String {
    let mut ops: Vec<_> = ops.iter().collect();
    ops.sort_by_key(|o| o.call);
    ops.iter()
        .map(|o| {
            let ret = if o.ret == u64::MAX {
                "∞".to_string()
            } else {
                o.ret.to_string()
            };
            format!("[{}..{ret}] {:?} -> {:?}", o.call, o.input, o.output)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads through one frontend are monotonic: a product read that starts after another read of
/// the same product through the same frontend completed never returns an older version.
pub fn product_reads_monotonic(events: &[Event]) -> Vec<Violation> {
    const P: &str = "monotonic product reads";
    /// `(invoked, completed, version, quantity)` of one read.
    type Read = (u64, u64, u64, u32);
    let mut reads: BTreeMap<(usize, &str), Vec<Read>> = BTreeMap::new();
    for e in events {
        if let (Op::ReadProduct { name }, Outcome::Product { quantity, version }) =
            (&e.op, &e.outcome)
        {
            reads.entry((e.server, name)).or_default().push((
                e.invoked,
                e.completed,
                *version,
                *quantity,
            ));
        }
    }
    let mut out = Vec::new();
    for ((server, name), mut rs) in reads {
        rs.sort_by_key(|r| r.1);
        // The newest version served by each completion time, scanning reads by invocation.
        let mut by_invocation = rs.clone();
        by_invocation.sort_by_key(|r| r.0);
        let mut served = rs.iter().peekable();
        let mut newest: Option<(u64, u32)> = None;
        for (invoked, _, version, quantity) in by_invocation {
            while let Some(r) = served.peek()
                && r.1 < invoked
            {
                if newest.is_none_or(|(v, _)| r.2 > v) {
                    newest = Some((r.2, r.3));
                }
                served.next();
            }
            if let Some((v, q)) = newest
                && version < v
            {
                out.push(violation(
                    P,
                    format!(
                        "frontend {server} served {name} at version {version} (quantity \
                         {quantity}) after it had served version {v} (quantity {q})"
                    ),
                ));
            }
        }
    }
    out
}

/// The catalog's books balance, and stock was taken for a key exactly when its order is
/// confirmed, with the same toy and quantity.
pub fn stock_invariant(state: &FinalState) -> Vec<Violation> {
    const P: &str = "stock invariant";
    let (Some(audit), Some(reference)) = (&state.catalog, state.reference()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut taken: BTreeMap<&str, u64> = BTreeMap::new();
    for t in &audit.takes {
        if t.outcome == TakeOutcome::Taken {
            *taken.entry(&t.name).or_default() += u64::from(t.quantity);
        }
    }
    for p in &audit.products {
        let expected = i128::from(p.initial) - i128::from(p.taken) + i128::from(p.restocked);
        if i128::from(p.quantity) != expected {
            out.push(violation(
                P,
                format!(
                    "{}: quantity {} != initial {} - taken {} + restocked {}",
                    p.name, p.quantity, p.initial, p.taken, p.restocked
                ),
            ));
        }
        let recorded = taken.get(p.name.as_str()).copied().unwrap_or(0);
        if recorded != p.taken {
            out.push(violation(
                P,
                format!(
                    "{}: take records add up to {recorded}, totals say {}",
                    p.name, p.taken
                ),
            ));
        }
    }
    let takes: BTreeMap<&str, _> = audit.takes.iter().map(|t| (t.key.as_str(), t)).collect();
    for (key, o) in &reference.by_key {
        let take = takes.get(key.as_str());
        let took = take.is_some_and(|t| t.outcome == TakeOutcome::Taken);
        let confirmed = matches!(o.status, StoredStatus::Confirmed { .. });
        if took != confirmed {
            out.push(violation(
                P,
                format!("key {key}: order {:?} but catalog take {take:?}", o.status),
            ));
        } else if let Some(t) = take.filter(|_| took)
            && (t.name != o.name || t.quantity != o.quantity)
        {
            out.push(violation(
                P,
                format!(
                    "key {key}: took {} x {} for an order of {} x {}",
                    t.quantity, t.name, o.quantity, o.name
                ),
            ));
        }
    }
    let orders: BTreeSet<&str> = reference.by_key.keys().map(String::as_str).collect();
    for t in &audit.takes {
        if t.outcome == TakeOutcome::Taken && !orders.contains(t.key.as_str()) {
            out.push(violation(
                P,
                format!(
                    "the catalog took {} x {} for key {} that has no order",
                    t.quantity, t.name, t.key
                ),
            ));
        }
    }
    out
}

/// Every replica ends with the same orders.
pub fn replicas_converge(state: &FinalState) -> Vec<Violation> {
    const P: &str = "replicas converge";
    let mut out = Vec::new();
    let mut replicas = state.replicas.iter();
    let Some((first_id, first)) = replicas.next() else {
        return out;
    };
    for (id, other) in replicas {
        if other != first {
            out.push(violation(
                P,
                format!(
                    "replica {id} differs from replica {first_id}: {}",
                    difference(first, other)
                ),
            ));
        }
    }
    out
}

fn difference(a: &ReplicaOrders, b: &ReplicaOrders) -> String {
    let keys: BTreeSet<&String> = a.by_key.keys().chain(b.by_key.keys()).collect();
    let key = keys
        .into_iter()
        .find(|k| a.by_key.get(*k) != b.by_key.get(*k));
    if let Some(k) = key {
        return format!("key {k}: {:?} vs {:?}", a.by_key.get(k), b.by_key.get(k));
    }
    format!(
        "{} vs {} orders by number",
        a.by_number.len(),
        b.by_number.len()
    )
}

#[cfg(test)]
mod tests {
    use api::catalog::{Audit, ProductAudit, TakeRecord};

    use super::*;
    use crate::state::StoredOrder;

    /// A clean run: two purchases confirmed as 0 and 1, one refused, reads that saw them.
    struct Run {
        events: Vec<Event>,
        state: FinalState,
    }

    fn purchase(key: &str, at: u64, outcome: Outcome) -> Event {
        Event {
            client: 0,
            server: 0,
            op: Op::Purchase {
                key: key.into(),
                name: "Tux".into(),
                quantity: 2,
            },
            invoked: at,
            completed: at + 10,
            outcome,
        }
    }

    fn read_order(number: u64, at: u64, outcome: Outcome) -> Event {
        Event {
            client: 1,
            server: 0,
            op: Op::ReadOrder { number },
            invoked: at,
            completed: at + 5,
            outcome,
        }
    }

    fn read_product(server: usize, at: u64, version: u64, quantity: u32) -> Event {
        Event {
            client: 2,
            server,
            op: Op::ReadProduct { name: "Tux".into() },
            invoked: at,
            completed: at + 5,
            outcome: Outcome::Product { quantity, version },
        }
    }

    fn tux(status: StoredStatus) -> StoredOrder {
        StoredOrder {
            name: "Tux".into(),
            quantity: 2,
            status,
        }
    }

    fn take(key: &str, outcome: TakeOutcome) -> TakeRecord {
        TakeRecord {
            key: key.into(),
            name: "Tux".into(),
            quantity: 2,
            outcome,
        }
    }

    fn clean() -> Run {
        let events = vec![
            read_order(0, 0, Outcome::NoOrder),
            purchase("a", 10, Outcome::Confirmed { number: 0 }),
            read_order(0, 30, Outcome::order("Tux", 2)),
            purchase(
                "b",
                40,
                Outcome::Unknown {
                    error: "timeout".into(),
                },
            ),
            purchase("c", 60, Outcome::Refused { status: 409 }),
            read_order(1, 100, Outcome::order("Tux", 2)),
            read_product(0, 100, 3, 96),
            read_product(0, 110, 4, 94),
        ];
        let replica = ReplicaOrders {
            by_key: [
                ("a".to_string(), tux(StoredStatus::Confirmed { number: 0 })),
                ("b".to_string(), tux(StoredStatus::Confirmed { number: 1 })),
                ("c".to_string(), tux(StoredStatus::Rejected)),
            ]
            .into(),
            by_number: [(0, ("Tux".to_string(), 2)), (1, ("Tux".to_string(), 2))].into(),
        };
        let audit = Audit {
            products: vec![ProductAudit {
                name: "Tux".into(),
                initial: 100,
                quantity: 96,
                taken: 4,
                restocked: 0,
            }],
            takes: vec![
                take("a", TakeOutcome::Taken),
                take("b", TakeOutcome::Taken),
                take("c", TakeOutcome::Insufficient),
            ],
        };
        Run {
            events,
            state: FinalState {
                replicas: [(1, replica.clone()), (2, replica)].into(),
                catalog: Some(audit),
            },
        }
    }

    impl Outcome {
        fn order(name: &str, quantity: u32) -> Self {
            Outcome::Order {
                name: name.into(),
                quantity,
            }
        }
    }

    fn properties(v: &[Violation]) -> BTreeSet<&'static str> {
        v.iter().map(|v| v.property).collect()
    }

    #[test]
    fn a_clean_run_passes() {
        let run = clean();
        assert_eq!(check_all(&run.events, &run.state), vec![]);
    }

    #[test]
    fn a_lost_acknowledged_order_is_caught() {
        let mut run = clean();
        for r in run.state.replicas.values_mut() {
            r.by_key.remove("a");
            r.by_number.remove(&0);
        }
        let v = acknowledged_orders_kept(&run.events, &run.state);
        assert!(!v.is_empty());
        assert!(v[0].detail.contains("order 0 (key a"), "{v:?}");
    }

    #[test]
    fn an_order_lost_on_one_replica_is_caught() {
        let mut run = clean();
        run.state.replicas.get_mut(&2).unwrap().by_key.remove("a");
        assert!(
            properties(&check_all(&run.events, &run.state)).contains("acknowledged order kept")
        );
        assert!(properties(&check_all(&run.events, &run.state)).contains("replicas converge"));
    }

    #[test]
    fn a_key_confirmed_twice_is_caught() {
        let mut run = clean();
        run.events
            .push(purchase("a", 200, Outcome::Confirmed { number: 5 }));
        let v = one_outcome_per_key(&run.events, &run.state);
        assert!(v[0].detail.contains("several numbers"), "{v:?}");
    }

    #[test]
    fn a_refused_key_that_holds_an_order_is_caught() {
        let mut run = clean();
        for r in run.state.replicas.values_mut() {
            r.by_key
                .insert("c".into(), tux(StoredStatus::Confirmed { number: 2 }));
            r.by_number.insert(2, ("Tux".into(), 2));
        }
        let v = one_outcome_per_key(&run.events, &run.state);
        assert!(v[0].detail.contains("refused to a client"), "{v:?}");
    }

    #[test]
    fn a_gap_or_a_shared_number_is_caught() {
        let mut run = clean();
        let r = run.state.replicas.get_mut(&1).unwrap();
        r.by_number.remove(&0);
        assert!(!numbers_dense(&run.state).is_empty());

        let mut run = clean();
        let r = run.state.replicas.get_mut(&1).unwrap();
        r.by_key
            .insert("c".into(), tux(StoredStatus::Confirmed { number: 1 }));
        let v = numbers_dense(&run.state);
        assert!(v.iter().any(|v| v.detail.contains("belongs to")), "{v:?}");
    }

    #[test]
    fn a_pending_order_after_healing_is_caught() {
        let mut run = clean();
        run.state
            .replicas
            .get_mut(&1)
            .unwrap()
            .by_key
            .insert("d".into(), tux(StoredStatus::Pending));
        assert!(!numbers_dense(&run.state).is_empty());
    }

    #[test]
    fn a_stale_order_read_is_caught() {
        // Order 0 was acknowledged at 20; a read starting at 30 says it does not exist.
        let mut run = clean();
        run.events[2] = read_order(0, 30, Outcome::NoOrder);
        let v = order_reads_linearizable(&run.events, &run.state);
        assert_eq!(properties(&v), ["linearizable order reads"].into());
    }

    #[test]
    fn a_read_from_the_future_is_caught() {
        // Order 1 (key b) was sent at 40; a read that ended at 15 already saw it.
        let mut run = clean();
        run.events.push(read_order(1, 10, Outcome::order("Tux", 2)));
        assert!(!order_reads_linearizable(&run.events, &run.state).is_empty());
    }

    #[test]
    fn a_read_of_the_wrong_order_is_caught() {
        let mut run = clean();
        run.events
            .push(read_order(0, 300, Outcome::order("Lego", 2)));
        assert!(!order_reads_linearizable(&run.events, &run.state).is_empty());
    }

    #[test]
    fn a_read_of_a_number_nobody_got_is_caught() {
        let mut run = clean();
        run.events
            .push(read_order(9, 300, Outcome::order("Tux", 2)));
        assert!(!order_reads_linearizable(&run.events, &run.state).is_empty());
    }

    #[test]
    fn a_product_read_going_back_is_caught() {
        let mut run = clean();
        run.events.push(read_product(0, 200, 3, 96));
        let v = product_reads_monotonic(&run.events);
        assert!(v[0].detail.contains("version 3"), "{v:?}");
        // Through another frontend, or overlapping in time, it is allowed.
        let mut run = clean();
        run.events.push(read_product(1, 200, 3, 96));
        run.events.push(read_product(0, 112, 3, 96));
        assert_eq!(product_reads_monotonic(&run.events), vec![]);
    }

    #[test]
    fn unbalanced_stock_is_caught() {
        let mut run = clean();
        run.state.catalog.as_mut().unwrap().products[0].quantity = 95;
        assert!(!stock_invariant(&run.state).is_empty());
    }

    #[test]
    fn stock_taken_without_an_order_is_caught() {
        // The catalog took stock for c, whose order was rejected.
        let mut run = clean();
        let audit = run.state.catalog.as_mut().unwrap();
        audit.takes[2].outcome = TakeOutcome::Taken;
        audit.products[0].taken = 6;
        audit.products[0].quantity = 94;
        let v = stock_invariant(&run.state);
        assert!(v.iter().any(|v| v.detail.contains("key c")), "{v:?}");
        // And a take for a key the order service never heard of.
        let mut run = clean();
        let audit = run.state.catalog.as_mut().unwrap();
        audit.takes.push(take("stray", TakeOutcome::Taken));
        audit.products[0].taken = 6;
        audit.products[0].quantity = 94;
        let v = stock_invariant(&run.state);
        assert!(v.iter().any(|v| v.detail.contains("no order")), "{v:?}");
    }

    #[test]
    fn an_order_confirmed_without_stock_taken_is_caught() {
        // The planted bug of issue 12: acknowledging before the take.
        let mut run = clean();
        let audit = run.state.catalog.as_mut().unwrap();
        audit.takes.remove(1);
        audit.products[0].taken = 2;
        audit.products[0].quantity = 98;
        let v = stock_invariant(&run.state);
        assert!(v.iter().any(|v| v.detail.contains("key b")), "{v:?}");
    }
}
