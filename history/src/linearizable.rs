//! A linearizability checker: the Wing–Gong–Lowe search with Lowe's memoisation, as Porcupine
//! and Knossos implement it.
//!
//! A history is linearizable when each operation can be given one instant between its
//! invocation and its completion such that, taken in that order, the operations are a legal run
//! of a sequential [`Model`]. The search walks the history in time order, tries to linearize
//! each pending call next, and backtracks when an operation completes before it could be placed.
//! A cache of (set of linearized operations, model state) pairs prunes states already explored,
//! which keeps it fast on the small partitions it is used on (one per order number).
//!
//! An operation whose outcome is unknown (a timeout) that did take effect is given completion
//! time `u64::MAX`: it may be linearized at any instant after its invocation.

use std::collections::HashSet;
use std::hash::Hash;

/// A sequential specification.
pub trait Model {
    /// What the model remembers between operations; hashed, so the search can skip a state
    /// it has already explored.
    type State: Clone + Eq + Hash;
    /// What an operation asks.
    type Input;
    /// What it answered.
    type Output;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `input` answered with `output` in `state`, or `None` if that answer is
    /// impossible there.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// When it was invoked.
    pub call: u64,
    /// When it completed (`u64::MAX`: never seen to complete).
    pub ret: u64,
    /// What it asked.
    pub input: I,
    /// What it answered.
    pub output: O,
}

/// Whether `ops` is linearizable with respect to `model`.
pub fn is_linearizable<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>]) -> bool {
    let n = ops.len();
    if n == 0 {
        return true;
    }
    // Events in time order; at equal times a call comes first, so touching intervals count
    // as concurrent (the lenient reading).
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        events.push((op.call, false, i));
        events.push((op.ret.max(op.call), true, i));
    }
    events.sort_by_key(|&(time, is_return, id)| (time, is_return, id));

    // A doubly linked list over the events (index `len` is the head sentinel).
    let len = events.len();
    let head = len;
    let mut next: Vec<usize> = (1..=len).chain([0]).collect();
    let mut prev: Vec<usize> = std::iter::once(head).chain(0..len - 1).chain([0]).collect();
    next[head] = 0;
    next[len - 1] = usize::MAX;
    let none = usize::MAX;
    // Where each operation's return event sits in the list.
    let mut return_of = vec![0; n];
    for (pos, &(_, is_return, id)) in events.iter().enumerate() {
        if is_return {
            return_of[id] = pos;
        }
    }

    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize| {
        let (p, nx) = (prev[e], next[e]);
        next[p] = nx;
        if nx != none {
            prev[nx] = p;
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize| {
        let (p, nx) = (prev[e], next[e]);
        next[p] = e;
        if nx != none {
            prev[nx] = e;
        }
    };

    let mut linearized = vec![false; n];
    let mut cache: HashSet<(Vec<bool>, M::State)> = HashSet::new();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut state = model.init();
    let mut entry = next[head];
    while next[head] != none {
        if entry == none {
            // Every remaining call was tried and none could go next.
            let Some((call, old)) = stack.pop() else {
                return false;
            };
            let id = events[call].2;
            linearized[id] = false;
            state = old;
            relink(&mut next, &mut prev, return_of[id]);
            relink(&mut next, &mut prev, call);
            entry = next[call];
            continue;
        }
        let (_, is_return, id) = events[entry];
        if !is_return {
            let op = &ops[id];
            if let Some(new_state) = model.step(&state, &op.input, &op.output) {
                linearized[id] = true;
                if cache.insert((linearized.clone(), new_state.clone())) {
                    stack.push((entry, state));
                    state = new_state;
                    unlink(&mut next, &mut prev, entry);
                    unlink(&mut next, &mut prev, return_of[id]);
                    entry = next[head];
                    continue;
                }
                linearized[id] = false;
            }
            entry = next[entry];
        } else {
            // An operation completed before it could be linearized: undo the last choice.
            let Some((call, old)) = stack.pop() else {
                return false;
            };
            let id = events[call].2;
            linearized[id] = false;
            state = old;
            relink(&mut next, &mut prev, return_of[id]);
            relink(&mut next, &mut prev, call);
            entry = next[call];
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register holding one integer, starting at 0.
    struct Register;

    #[derive(Debug, Clone, Copy)]
    enum In {
        Write(u32),
        Read,
    }

    impl Model for Register {
        type State = u32;
        type Input = In;
        type Output = u32;
        fn init(&self) -> u32 {
            0
        }
        fn step(&self, s: &u32, input: &In, output: &u32) -> Option<u32> {
            match input {
                In::Write(v) => Some(*v),
                In::Read => (s == output).then_some(*s),
            }
        }
    }

    fn op(call: u64, ret: u64, input: In, output: u32) -> Operation<In, u32> {
        Operation {
            call,
            ret,
            input,
            output,
        }
    }

    #[test]
    fn sequential_and_concurrent_histories() {
        // write 1, then read 1.
        assert!(is_linearizable(
            &Register,
            &[op(0, 10, In::Write(1), 0), op(20, 30, In::Read, 1)]
        ));
        // A read after the write completed must not see the old value.
        assert!(!is_linearizable(
            &Register,
            &[op(0, 10, In::Write(1), 0), op(20, 30, In::Read, 0)]
        ));
        // A read concurrent with the write may see either value.
        for seen in [0, 1] {
            assert!(is_linearizable(
                &Register,
                &[op(0, 10, In::Write(1), 0), op(5, 30, In::Read, seen)]
            ));
        }
        // Two reads, the second after the first: new then old is not linearizable.
        assert!(!is_linearizable(
            &Register,
            &[
                op(0, 100, In::Write(1), 0),
                op(10, 20, In::Read, 1),
                op(30, 40, In::Read, 0),
            ]
        ));
        // A read of a value nobody wrote.
        assert!(!is_linearizable(&Register, &[op(0, 10, In::Read, 7)]));
    }

    #[test]
    fn an_unfinished_write_may_take_effect_at_any_later_time() {
        let ops = [
            op(0, u64::MAX, In::Write(1), 0),
            op(10, 20, In::Read, 0),
            op(30, 40, In::Read, 1),
        ];
        assert!(is_linearizable(&Register, &ops));
        // But not before it was invoked.
        let ops = [op(10, 20, In::Read, 1), op(30, u64::MAX, In::Write(1), 0)];
        assert!(!is_linearizable(&Register, &ops));
    }

    #[test]
    fn needs_backtracking() {
        // Writes of 1 and 2 overlap; reads see 2 then 1: the writes must go 2, 1.
        let ops = [
            op(0, 50, In::Write(1), 0),
            op(0, 50, In::Write(2), 0),
            op(60, 70, In::Read, 1),
        ];
        assert!(is_linearizable(&Register, &ops));
        let ops = [
            op(0, 50, In::Write(1), 0),
            op(0, 50, In::Write(2), 0),
            op(10, 20, In::Read, 2),
            op(30, 40, In::Read, 1),
            op(60, 70, In::Read, 1),
        ];
        assert!(is_linearizable(&Register, &ops));
        let ops = [
            op(0, 50, In::Write(1), 0),
            op(0, 50, In::Write(2), 0),
            op(10, 20, In::Read, 2),
            op(30, 40, In::Read, 1),
            op(60, 70, In::Read, 2),
        ];
        assert!(!is_linearizable(&Register, &ops));
    }
}
