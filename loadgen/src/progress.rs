//! The progress a running load reports, and the one-line bar `toystore load` draws from it.

use std::time::Duration;

/// Which part of a run is going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Sessions are querying and ordering.
    Load,
    /// Acknowledged orders are being read back.
    ReadBack,
}

/// A snapshot of a running load, for progress display. The counts are those of the summary:
/// each answer counts once, and sold out and unknown toy are not errors.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Load or read-back; `elapsed` and the request counts are this phase's.
    pub phase: Phase,
    /// Time since the phase started.
    pub elapsed: Duration,
    /// Requests answered so far in this phase.
    pub requests: u64,
    /// Failed requests so far in this phase.
    pub errors: u64,
    /// Orders answered sold out (409) so far.
    pub sold_out: u64,
    /// Queries and orders answered unknown toy (404) so far.
    pub unknown_toy: u64,
    /// Orders acknowledged so far.
    pub orders: u64,
    /// Fraction done (0..=1), when known.
    pub fraction: Option<f64>,
}

/// Renders a one-line progress bar, e.g.
/// `load      [######......]   5.0s     1234 req      321 orders     12 sold out      0 errors`;
/// unknown toys are shown only when there were some.
pub fn progress_line(p: &Progress) -> String {
    const WIDTH: usize = 20;
    let bar = match p.fraction {
        Some(f) => {
            let filled = ((f.clamp(0.0, 1.0) * WIDTH as f64).round()) as usize;
            format!("[{}{}]", "#".repeat(filled), ".".repeat(WIDTH - filled))
        }
        None => String::new(),
    };
    let phase = match p.phase {
        Phase::Load => "load",
        Phase::ReadBack => "read-back",
    };
    let unknown = if p.unknown_toy > 0 {
        format!(" {} unknown toy", p.unknown_toy)
    } else {
        String::new()
    };
    format!(
        "{phase:<9} {bar} {:>6.1}s {:>8} req {:>8} orders {:>6} sold out{unknown} {:>6} errors",
        p.elapsed.as_secs_f64(),
        p.requests,
        p.orders,
        p.sold_out,
        p.errors
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_shows_the_figures() {
        let mut p = Progress {
            phase: Phase::Load,
            elapsed: Duration::from_millis(2500),
            requests: 120,
            errors: 3,
            sold_out: 7,
            unknown_toy: 0,
            orders: 40,
            fraction: Some(0.5),
        };
        let line = progress_line(&p);
        assert!(line.contains("[##########..........]"), "{line}");
        for figure in ["2.5s", "120 req", "40 orders", "7 sold out", "3 errors"] {
            assert!(line.contains(figure), "{figure} missing: {line}");
        }
        assert!(!line.contains("unknown"), "{line}");
        p.unknown_toy = 2;
        assert!(progress_line(&p).contains("7 sold out 2 unknown toy"));
    }
}
