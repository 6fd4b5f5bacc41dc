//! The checkers. Each takes the recorded events and the final state and returns what it found
//! wrong; an empty list is a pass.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use api::inventory::{Audit, ProductAudit};

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

/// Runs every checker; the history passes when none finds a violation.
pub fn check_all(events: &[Event], state: &FinalState) -> Vec<Violation> {
    let mut out = acknowledged_orders_kept(events, state);
    out.extend(one_outcome_per_key(events, state));
    out.extend(numbers_dense(state));
    out.extend(order_reads_linearizable(events, state));
    out.extend(product_reads_monotonic(events));
    out.extend(product_versions_consistent(events));
    out.extend(stock_invariant(state));
    out.extend(restocks_only_when_sold_out(events, state));
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

/// Confirmed order numbers are exactly `0..n` on every replica, where `n` is the count of
/// confirmed orders its audit gives; each number is held by one key, and serves that key's toy
/// and quantity.
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
        if let Some(audit) = state.audits.get(id)
            && audit.confirmed != n
        {
            out.push(violation(
                P,
                format!(
                    "replica {id}: its audit counts {} confirmed orders, but orders 0..{n} \
                     are served (the first 404 is at {n})",
                    audit.confirmed
                ),
            ));
        }
        let mut owner: BTreeMap<u64, &str> = BTreeMap::new();
        for (key, o) in &replica.by_key {
            let StoredStatus::Confirmed { number } = o.status else {
                continue;
            };
            if let Some(other) = owner.insert(number, key) {
                out.push(violation(
                    P,
                    format!("replica {id}: order {number} belongs to {other} and {key}"),
                ));
            }
            match replica.by_number.get(&number) {
                None => out.push(violation(
                    P,
                    format!("replica {id}: key {key} holds order {number}, not served"),
                )),
                Some((name, quantity)) if *name != o.name || *quantity != o.quantity => {
                    out.push(violation(
                        P,
                        format!(
                            "replica {id}: key {key} holds order {number} of {} x {}, but \
                             order {number} serves {quantity} x {name}",
                            o.quantity, o.name
                        ),
                    ))
                }
                Some(_) => {}
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

/// Order reads are linearizable: checked per order number against `OrderSlot`, with the
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
/// Versions are the order group's log indexes, so they only grow but are not dense: only their
/// order is compared.
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

/// A product's version names one state of it: the log index of the command that last changed
/// its stock. Two reads of a product at one version, through any frontends, show one quantity.
pub fn product_versions_consistent(events: &[Event]) -> Vec<Violation> {
    const P: &str = "one state per product version";
    let mut seen: BTreeMap<(&str, u64), (u32, usize)> = BTreeMap::new();
    let mut out = Vec::new();
    for e in events {
        let (Op::ReadProduct { name }, Outcome::Product { quantity, version }) =
            (&e.op, &e.outcome)
        else {
            continue;
        };
        match seen.get(&(name.as_str(), *version)) {
            None => {
                seen.insert((name, *version), (*quantity, e.server));
            }
            Some(&(q, server)) if q != *quantity => out.push(violation(
                P,
                format!(
                    "{name} at version {version} was served with quantity {q} (frontend \
                     {server}) and with quantity {quantity} (frontend {})",
                    e.server
                ),
            )),
            Some(_) => {}
        }
    }
    out
}

/// Every replica's books balance and agree with its orders: for every toy, stock = initial +
/// restocked − sold and it never went below zero (sold ≤ initial + restocked), sold = the
/// units of its confirmed orders as the replica counts them (`ordered`), and both equal the
/// units of the confirmed orders served by number (`GET /orders/{n}`).
pub fn stock_invariant(state: &FinalState) -> Vec<Violation> {
    const P: &str = "stock invariant";
    let mut out = Vec::new();
    for (id, audit) in &state.audits {
        for p in &audit.products {
            let had = i128::from(p.initial) + i128::from(p.restocked);
            if i128::from(p.sold) > had {
                out.push(violation(
                    P,
                    format!(
                        "replica {id}: {} sold {} units, more than it ever had (initial {} + \
                         restocked {})",
                        p.name, p.sold, p.initial, p.restocked
                    ),
                ));
            }
            if i128::from(p.stock) != had - i128::from(p.sold) {
                out.push(violation(
                    P,
                    format!(
                        "replica {id}: {}: stock {} != initial {} + restocked {} - sold {}",
                        p.name, p.stock, p.initial, p.restocked, p.sold
                    ),
                ));
            }
            if p.sold != p.ordered {
                out.push(violation(
                    P,
                    format!(
                        "replica {id}: {}: sold {} but its confirmed orders add up to {}",
                        p.name, p.sold, p.ordered
                    ),
                ));
            }
        }
        let Some(orders) = state.replicas.get(id) else {
            continue;
        };
        let mut served: BTreeMap<&str, u64> = BTreeMap::new();
        for (name, quantity) in orders.by_number.values() {
            *served.entry(name).or_default() += u64::from(*quantity);
        }
        let books: BTreeMap<&str, &ProductAudit> = audit
            .products
            .iter()
            .map(|p| (p.name.as_str(), p))
            .collect();
        for (name, units) in &served {
            match books.get(name) {
                None => out.push(violation(
                    P,
                    format!(
                        "replica {id}: confirmed orders of {units} x {name}, a toy its books do \
                         not hold"
                    ),
                )),
                Some(p) if p.ordered != *units => out.push(violation(
                    P,
                    format!(
                        "replica {id}: {name}: the books count {} units ordered, the orders \
                         served by number add up to {units}",
                        p.ordered
                    ),
                )),
                Some(_) => {}
            }
        }
        for p in &audit.products {
            if p.ordered > 0 && !served.contains_key(p.name.as_str()) {
                out.push(violation(
                    P,
                    format!(
                        "replica {id}: {}: the books count {} units ordered, but no order of \
                         it is served by number",
                        p.name, p.ordered
                    ),
                ));
            }
        }
    }
    out
}

/// Restocks are conditional (`Restock{to: R, only_if_at: 0}`), so however many catalog replicas
/// send them, each one that applies adds exactly R units to a sold-out toy: on every replica a
/// toy's restocked units are a multiple of R, and its stock never exceeds the larger of its
/// initial stock and R, neither in the books nor in any product read. Checked only when the
/// final state names R.
pub fn restocks_only_when_sold_out(events: &[Event], state: &FinalState) -> Vec<Violation> {
    const P: &str = "restocks only when sold out";
    let Some(r) = state.restock_quantity.filter(|r| *r > 0) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (id, audit) in &state.audits {
        for p in &audit.products {
            if p.restocked % r != 0 {
                out.push(violation(
                    P,
                    format!(
                        "replica {id}: {} was restocked by {} units in all, not a multiple of \
                         the restock quantity {r}",
                        p.name, p.restocked
                    ),
                ));
            }
            let cap = p.initial.max(r);
            if p.stock > cap {
                out.push(violation(
                    P,
                    format!(
                        "replica {id}: {} holds {} units, more than it can ever have (initial {}, \
                         restocks to {r})",
                        p.name, p.stock, p.initial
                    ),
                ));
            }
        }
    }
    let Some(audit) = state.audits.values().next() else {
        return out;
    };
    let caps: BTreeMap<&str, u64> = audit
        .products
        .iter()
        .map(|p| (p.name.as_str(), p.initial.max(r)))
        .collect();
    for e in events {
        if let (Op::ReadProduct { name }, Outcome::Product { quantity, version }) =
            (&e.op, &e.outcome)
            && let Some(cap) = caps.get(name.as_str())
            && u64::from(*quantity) > *cap
        {
            out.push(violation(
                P,
                format!(
                    "frontend {} served {name} with {quantity} units at version {version}, more \
                     than it can ever have ({cap})",
                    e.server
                ),
            ));
        }
    }
    out
}

/// Every replica ends with the same orders and the same books (the same toys with the same
/// totals, the same counts of confirmed and refused orders).
pub fn replicas_converge(state: &FinalState) -> Vec<Violation> {
    const P: &str = "replicas converge";
    let mut out = Vec::new();
    let mut replicas = state.replicas.iter();
    if let Some((first_id, first)) = replicas.next() {
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
    }
    let mut audits = state.audits.iter();
    if let Some((first_id, first)) = audits.next() {
        for (id, other) in audits {
            if let Some(what) = books_difference(first, other) {
                out.push(violation(
                    P,
                    format!("the books of replica {id} differ from replica {first_id}'s: {what}"),
                ));
            }
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

/// What differs between two audits' books (the applied index aside), if anything.
fn books_difference(a: &Audit, b: &Audit) -> Option<String> {
    if (a.confirmed, a.refused) != (b.confirmed, b.refused) {
        return Some(format!(
            "{} confirmed and {} refused orders vs {} and {}",
            a.confirmed, a.refused, b.confirmed, b.refused
        ));
    }
    let by_name = |audit: &Audit| -> BTreeMap<String, ProductAudit> {
        audit
            .products
            .iter()
            .map(|p| (p.name.clone(), p.clone()))
            .collect()
    };
    let (pa, pb) = (by_name(a), by_name(b));
    let names: BTreeSet<&String> = pa.keys().chain(pb.keys()).collect();
    names
        .into_iter()
        .find(|n| pa.get(*n) != pb.get(*n))
        .map(|n| format!("{n}: {:?} vs {:?}", pa.get(n), pb.get(n)))
}

#[cfg(test)]
mod tests {
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

    /// The books of the clean run: Tux started at 100 and sold 2 + 2; Lego sold nothing and
    /// was restocked.
    fn audit() -> Audit {
        Audit {
            applied_index: 40,
            products: vec![
                ProductAudit {
                    name: "Lego".into(),
                    initial: 0,
                    restocked: 50,
                    sold: 0,
                    stock: 50,
                    ordered: 0,
                },
                ProductAudit {
                    name: "Tux".into(),
                    initial: 100,
                    restocked: 0,
                    sold: 4,
                    stock: 96,
                    ordered: 4,
                },
            ],
            confirmed: 2,
            refused: 1,
        }
    }

    fn clean() -> Run {
        // Product versions are log indexes: sparse, growing.
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
            read_product(0, 100, 17, 98),
            read_product(0, 110, 31, 96),
            read_product(1, 120, 31, 96),
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
        Run {
            events,
            state: FinalState {
                replicas: [(1, replica.clone()), (2, replica)].into(),
                audits: [(1, audit()), (2, audit())].into(),
                restock_quantity: Some(50),
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

    fn tux_books(run: &mut Run, replica: u64) -> &mut ProductAudit {
        run.state
            .audits
            .get_mut(&replica)
            .unwrap()
            .products
            .iter_mut()
            .find(|p| p.name == "Tux")
            .unwrap()
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
    fn an_acknowledged_order_under_another_number_is_caught() {
        // Key a was acknowledged as order 0; replica 2 holds it as order 1.
        let mut run = clean();
        let r = run.state.replicas.get_mut(&2).unwrap();
        r.by_key
            .insert("a".into(), tux(StoredStatus::Confirmed { number: 1 }));
        let v = acknowledged_orders_kept(&run.events, &run.state);
        assert!(v.iter().any(|v| v.detail.contains("replica 2")), "{v:?}");
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
    fn a_key_both_confirmed_and_refused_is_caught() {
        let mut run = clean();
        run.events
            .push(purchase("a", 200, Outcome::Refused { status: 409 }));
        let v = one_outcome_per_key(&run.events, &run.state);
        assert!(
            v.iter().any(|v| v.detail.contains("both confirmed")),
            "{v:?}"
        );
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
        let v = numbers_dense(&run.state);
        assert!(
            v.iter().any(|v| v.detail.contains("highest number")),
            "{v:?}"
        );

        let mut run = clean();
        let r = run.state.replicas.get_mut(&1).unwrap();
        r.by_key
            .insert("c".into(), tux(StoredStatus::Confirmed { number: 1 }));
        let v = numbers_dense(&run.state);
        assert!(v.iter().any(|v| v.detail.contains("belongs to")), "{v:?}");
    }

    #[test]
    fn a_number_serving_another_order_than_its_key_is_caught() {
        let mut run = clean();
        run.state
            .replicas
            .get_mut(&1)
            .unwrap()
            .by_number
            .insert(1, ("Tux".into(), 3));
        let v = numbers_dense(&run.state);
        assert!(
            v.iter().any(|v| v.detail.contains("serves 3 x Tux")),
            "{v:?}"
        );
    }

    #[test]
    fn a_confirmed_count_that_is_not_the_orders_served_is_caught() {
        // The books count a third confirmed order that no number serves (or the last orders
        // are unreadable).
        let mut run = clean();
        run.state.audits.get_mut(&1).unwrap().confirmed = 3;
        let v = numbers_dense(&run.state);
        assert!(
            v.iter()
                .any(|v| v.detail.contains("counts 3 confirmed orders")),
            "{v:?}"
        );
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
        // Versions are sparse log indexes: 31 after 17 is the next state, 17 after 31 is older.
        let mut run = clean();
        run.events.push(read_product(0, 200, 17, 98));
        let v = product_reads_monotonic(&run.events);
        assert!(v[0].detail.contains("version 17"), "{v:?}");
        // Through another frontend, or overlapping in time, it is allowed.
        let mut run = clean();
        run.events.push(read_product(1, 100, 17, 98));
        run.events.push(read_product(0, 112, 17, 98));
        assert_eq!(product_reads_monotonic(&run.events), vec![]);
        // A jump far ahead is no gap: versions need not be dense.
        let mut run = clean();
        run.events.push(read_product(0, 300, 1_000_003, 90));
        assert_eq!(check_all(&run.events, &run.state), vec![]);
    }

    #[test]
    fn two_quantities_at_one_version_are_caught() {
        let mut run = clean();
        run.events.push(read_product(1, 300, 31, 95));
        let v = product_versions_consistent(&run.events);
        assert!(v[0].detail.contains("version 31"), "{v:?}");
    }

    #[test]
    fn unbalanced_stock_is_caught() {
        let mut run = clean();
        tux_books(&mut run, 2).stock = 95;
        let v = stock_invariant(&run.state);
        assert!(
            v.iter()
                .any(|v| v.detail.contains("replica 2: Tux: stock 95")),
            "{v:?}"
        );
    }

    #[test]
    fn stock_below_zero_is_caught() {
        // Sold more than it ever had; the stock shows 0 (it cannot show less).
        let mut run = clean();
        let tux = tux_books(&mut run, 1);
        tux.initial = 3;
        tux.stock = 0;
        let v = stock_invariant(&run.state);
        assert!(
            v.iter().any(|v| v.detail.contains("more than it ever had")),
            "{v:?}"
        );
    }

    #[test]
    fn stock_sold_without_an_order_is_caught() {
        // Stock went down by 2 more than the confirmed orders account for.
        let mut run = clean();
        let tux = tux_books(&mut run, 1);
        tux.sold = 6;
        tux.stock = 94;
        let v = stock_invariant(&run.state);
        assert!(
            v.iter().any(|v| v
                .detail
                .contains("sold 6 but its confirmed orders add up to 4")),
            "{v:?}"
        );
    }

    #[test]
    fn books_that_disagree_with_the_orders_served_are_caught() {
        // The books count 6 units ordered (and sold), but the orders read by number are 2 + 2.
        let mut run = clean();
        let tux = tux_books(&mut run, 1);
        tux.sold = 6;
        tux.ordered = 6;
        tux.stock = 94;
        let v = stock_invariant(&run.state);
        assert!(
            v.iter()
                .any(|v| v.detail.contains("the orders served by number add up to 4")),
            "{v:?}"
        );
        // And orders of a toy the books do not count.
        let mut run = clean();
        let orders = run.state.replicas.get_mut(&1).unwrap();
        orders.by_number.insert(2, ("Robot".into(), 1));
        let v = stock_invariant(&run.state);
        assert!(
            v.iter()
                .any(|v| v.detail.contains("a toy its books do not hold")),
            "{v:?}"
        );
    }

    #[test]
    fn books_ordered_without_an_order_served_are_caught() {
        let mut run = clean();
        let lego = &mut run.state.audits.get_mut(&2).unwrap().products[0];
        lego.sold = 1;
        lego.ordered = 1;
        lego.stock = 49;
        let v = stock_invariant(&run.state);
        assert!(
            v.iter()
                .any(|v| v.detail.contains("replica 2: Lego") && v.detail.contains("no order")),
            "{v:?}"
        );
    }

    #[test]
    fn a_restock_of_a_toy_in_stock_is_caught() {
        // Two catalog replicas both restocked Lego: 100 units restocked, 100 in stock, though
        // a restock only ever brings a sold-out toy to 50. The books still balance.
        let mut run = clean();
        for audit in run.state.audits.values_mut() {
            let lego = &mut audit.products[0];
            lego.restocked = 100;
            lego.stock = 100;
        }
        assert_eq!(stock_invariant(&run.state), vec![]);
        let v = restocks_only_when_sold_out(&run.events, &run.state);
        assert!(
            v.iter()
                .any(|v| v.detail.contains("replica 1: Lego holds 100 units")),
            "{v:?}"
        );
        // A restock by another amount.
        let mut run = clean();
        let lego = &mut run.state.audits.get_mut(&2).unwrap().products[0];
        lego.restocked = 70;
        lego.stock = 20;
        let v = restocks_only_when_sold_out(&run.events, &run.state);
        assert!(v[0].detail.contains("not a multiple"), "{v:?}");
        // Without the restock quantity nothing is assumed.
        run.state.restock_quantity = None;
        assert_eq!(restocks_only_when_sold_out(&run.events, &run.state), vec![]);
    }

    #[test]
    fn a_product_read_above_what_the_toy_can_hold_is_caught() {
        // Tux started at 100 and restocks go to 50: no read can show 101.
        let mut run = clean();
        run.events.push(read_product(1, 300, 45, 101));
        let v = restocks_only_when_sold_out(&run.events, &run.state);
        assert!(
            v[0].detail.contains("frontend 1 served Tux with 101"),
            "{v:?}"
        );
    }

    #[test]
    fn replicas_whose_books_differ_are_caught() {
        // Each replica's books balance, but they tell different stories.
        let mut run = clean();
        let lego = &mut run.state.audits.get_mut(&2).unwrap().products[0];
        lego.restocked = 60;
        lego.stock = 60;
        assert_eq!(stock_invariant(&run.state), vec![]);
        let v = replicas_converge(&run.state);
        assert!(v[0].detail.contains("books of replica 2"), "{v:?}");
        assert!(v[0].detail.contains("Lego"), "{v:?}");
        // A toy one replica does not hold, and different counts of refusals.
        let mut run = clean();
        run.state.audits.get_mut(&2).unwrap().products.remove(0);
        assert!(!replicas_converge(&run.state).is_empty());
        let mut run = clean();
        run.state.audits.get_mut(&2).unwrap().refused = 2;
        let v = replicas_converge(&run.state);
        assert!(v[0].detail.contains("refused"), "{v:?}");
    }
}
