//! When local mode restarts a child that exited: growing back-off, as Kubernetes' CrashLoopBackOff.
//!
//! A child that keeps failing (a replica on a full disk, a data directory it refuses) must not
//! be restarted once a second forever: each restart in a row waits twice as long as the last,
//! up to a cap, and a child that then stays up for a healthy while starts over from the first
//! delay. Kubernetes uses 10 s doubling to 5 min, reset after 10 min up; local mode restarts
//! sooner (1 s doubling to 1 min, reset after 2 min up), since one machine's processes come
//! back in well under a second.

use std::time::{Duration, Instant};

/// The back-off schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first restart in a row.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// A child up this long since its last start has recovered: its next restart is the first
    /// in a row again.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(120),
        }
    }
}

/// One child's restarts under a [`Backoff`].
#[derive(Debug, Clone)]
pub struct Restarts {
    backoff: Backoff,
    /// Restarts since the supervisor began.
    total: u32,
    /// Restarts in a row without a healthy while in between.
    in_a_row: u32,
    /// When the child was last started.
    started: Instant,
    /// When the exited child is due to be restarted.
    due: Option<Instant>,
}

impl Restarts {
    /// A child that was started at `started` and has not been restarted.
    pub fn new(backoff: Backoff, started: Instant) -> Self {
        Self {
            backoff,
            total: 0,
            in_a_row: 0,
            started,
            due: None,
        }
    }

    /// The child was seen exited at `now` (or its restart failed): when to restart it. Asking
    /// again before it is restarted gives the same time.
    pub fn exited(&mut self, now: Instant) -> Instant {
        if let Some(due) = self.due {
            return due;
        }
        if now.saturating_duration_since(self.started) >= self.backoff.reset_after {
            self.in_a_row = 0;
        }
        let delay = self
            .backoff
            .initial
            .saturating_mul(1u32.checked_shl(self.in_a_row).unwrap_or(u32::MAX))
            .min(self.backoff.max);
        let due = now + delay;
        self.due = Some(due);
        due
    }

    /// The child is being restarted at `now`.
    pub fn restarting(&mut self, now: Instant) {
        self.total += 1;
        self.in_a_row = self.in_a_row.saturating_add(1);
        self.started = now;
        self.due = None;
    }

    /// Restarts since the supervisor began.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// When the exited child is due to be restarted (`None`: it has not exited since its
    /// last start).
    pub fn due(&self) -> Option<Instant> {
        self.due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Exits at once after every restart: the delays are the schedule's.
    fn crash_loop(restarts: &mut Restarts, mut now: Instant, times: usize) -> Vec<Duration> {
        let mut delays = Vec::new();
        for _ in 0..times {
            let due = restarts.exited(now);
            delays.push(due - now);
            now = due;
            restarts.restarting(now);
        }
        delays
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let t0 = Instant::now();
        let mut r = Restarts::new(Backoff::default(), t0);
        let delays = crash_loop(&mut r, t0, 9);
        let expected: Vec<Duration> = [1, 2, 4, 8, 16, 32, 60, 60, 60].map(secs).to_vec();
        assert_eq!(delays, expected);
        assert_eq!(r.total(), 9);
    }

    #[test]
    fn a_healthy_while_starts_the_schedule_over() {
        let t0 = Instant::now();
        let mut r = Restarts::new(Backoff::default(), t0);
        crash_loop(&mut r, t0, 4); // 1 + 2 + 4 + 8 s
        let restarted = t0 + secs(15);
        // Up for less than the healthy while: the schedule goes on.
        assert_eq!(r.exited(restarted + secs(30)), restarted + secs(30 + 16));
        r.restarting(restarted + secs(46));
        // Up for the healthy while: back to the first delay.
        let later = restarted + secs(46 + 120);
        assert_eq!(r.exited(later), later + secs(1));
        assert_eq!(r.total(), 5);
    }

    #[test]
    fn asking_again_before_the_restart_keeps_the_due_time() {
        let t0 = Instant::now();
        let mut r = Restarts::new(Backoff::default(), t0);
        let due = r.exited(t0 + secs(1));
        assert_eq!(r.exited(t0 + secs(2)), due);
        assert_eq!(r.total(), 0);
    }
}
