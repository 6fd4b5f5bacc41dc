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

/// A snapshot of a running load, for progress display.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// What is going on.
    pub phase: Phase,
    /// Time since the phase started.
    pub elapsed: Duration,
    /// Requests answered so far in this phase.
    pub requests: u64,
    /// Failed requests so far in this phase (409 out of stock included).
    pub errors: u64,
    /// Orders acknowledged so far.
    pub orders: u64,
    /// Fraction done (0..=1), when known.
    pub fraction: Option<f64>,
}

/// Renders a one-line progress bar, e.g. `load [#####.....] 5.0s 1234 req 0 err 321 orders`.
pub fn progress_line(p: &Progress) -> String {
    const WIDTH: usize = 24;
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
    format!(
        "{phase:<9} {bar} {:>6.1}s {:>8} req {:>6} err {:>8} orders",
        p.elapsed.as_secs_f64(),
        p.requests,
        p.errors,
        p.orders
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_shows_the_figures() {
        let line = progress_line(&Progress {
            phase: Phase::Load,
            elapsed: Duration::from_millis(2500),
            requests: 120,
            errors: 3,
            orders: 40,
            fraction: Some(0.5),
        });
        assert!(line.contains("[############............]"), "{line}");
        assert!(line.contains("2.5s") && line.contains("120 req") && line.contains("3 err"));
    }
}
