//! Where one purchase's time goes, hop by hop: the means of the services' own latency
//! histograms over a run (client → frontend → order leader → the commit of its one Purchase
//! command). No catalog is on the path: stock and orders are one replicated state machine.
//!
//! Each service observes its part of a purchase in a Prometheus histogram; the difference of
//! `_sum` and `_count` between a scrape before and one after the run is the mean of that part
//! over exactly the run's purchases. What one hop adds is then the difference between the time
//! around it and the time inside it (the frontend's call to the order group minus the leader's
//! own time is the hop from the frontend to the leader and back).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The frontend's histogram of calls to the order group (label `call="place"` for purchases).
pub const FRONTEND_UPSTREAM: &str = "toystore_frontend_upstream_duration_seconds";
/// The order leader's histogram of placing one order, from the request to the applied command.
pub const LEADER_PLACE: &str = "toystore_order_place_duration_seconds";
/// The order leader's histogram of each step of a purchase (one step: `step="commit"`, the
/// Purchase command committed and applied).
pub const LEADER_STEP: &str = "toystore_order_purchase_step_duration_seconds";

/// The samples of one `/metrics` text, by series: the metric name and its labels in name order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape(BTreeMap<(String, Vec<(String, String)>), f64>);

impl Scrape {
    /// Parses Prometheus / OpenMetrics text. Comments and lines that are not `series value`
    /// are skipped; label values are assumed to hold no commas (the services' never do).
    pub fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let mut labels: Vec<(String, String)> = labels
                .split(',')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
                .collect();
            labels.sort();
            samples.insert((name.to_string(), labels), value);
        }
        Self(samples)
    }

    /// Adds another scrape's samples to these (the same series summed: several replicas).
    pub fn add(&mut self, other: Scrape) {
        for (series, value) in other.0 {
            *self.0.entry(series).or_default() += value;
        }
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        self.0
            .get(&(name.to_string(), labels))
            .copied()
            .unwrap_or(0.0)
    }
}

/// The mean of histogram `name` (with `labels`) over what it observed between `before` and
/// `after`, in ms, and how many observations that was; `None` when it observed nothing.
pub fn mean_ms(
    before: &Scrape,
    after: &Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<(f64, u64)> {
    let sum = format!("{name}_sum");
    let count = format!("{name}_count");
    let n = after.value(&count, labels) - before.value(&count, labels);
    let s = after.value(&sum, labels) - before.value(&sum, labels);
    (n >= 1.0).then(|| (s / n * 1000.0, n.round() as u64))
}

/// Where the time of a purchase went, means over one run, ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// Concurrent clients of the run.
    pub clients: usize,
    /// Purchases the leaders placed during the run.
    pub purchases: u64,
    /// Client-observed mean, request sent to answer read.
    pub client_ms: f64,
    /// The frontend's call to the order group (leader discovery, HTTP, the leader's work).
    pub frontend_ms: Option<f64>,
    /// The leader's own time, from the request to the applied command.
    pub leader_ms: Option<f64>,
    /// Committing the Purchase command (log append, replication, a majority's fsync, apply:
    /// key lookup, stock check, decrement, the next order number).
    pub commit_ms: Option<f64>,
}

impl Breakdown {
    /// The breakdown of a run from scrapes of the frontend and of every replica (summed)
    /// before and after it, and the client-observed mean.
    pub fn from_scrapes(
        clients: usize,
        client_ms: f64,
        frontend: (&Scrape, &Scrape),
        replicas: (&Scrape, &Scrape),
    ) -> Self {
        let (rb, ra) = replicas;
        let step = |s: &str| mean_ms(rb, ra, LEADER_STEP, &[("step", s)]).map(|(m, _)| m);
        let leader = mean_ms(rb, ra, LEADER_PLACE, &[]);
        Self {
            clients,
            purchases: leader.map_or(0, |(_, n)| n),
            client_ms,
            frontend_ms: mean_ms(
                frontend.0,
                frontend.1,
                FRONTEND_UPSTREAM,
                &[("upstream", "orders"), ("call", "place")],
            )
            .map(|(m, _)| m),
            leader_ms: leader.map(|(m, _)| m),
            commit_ms: step("commit"),
        }
    }

    /// The hops, each with its mean in ms: what each layer adds around the one inside it.
    pub fn hops(&self) -> Vec<(&'static str, Option<f64>)> {
        let minus = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        vec![
            (
                "client ⇄ frontend (HTTP, frontend work)",
                minus(Some(self.client_ms), self.frontend_ms),
            ),
            (
                "frontend ⇄ order leader (HTTP, leader discovery, retries)",
                minus(self.frontend_ms, self.leader_ms),
            ),
            (
                "leader: commit of the Purchase command (append, replicate, majority fsync, \
                 apply)",
                self.commit_ms,
            ),
            (
                "leader: the rest (admission, request checks, answer)",
                minus(self.leader_ms, self.commit_ms),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRONTEND_BEFORE: &str = "\
# TYPE toystore_frontend_upstream_duration_seconds histogram
toystore_frontend_upstream_duration_seconds_sum{upstream=\"orders\",call=\"place\"} 1.0
toystore_frontend_upstream_duration_seconds_count{upstream=\"orders\",call=\"place\"} 100
toystore_frontend_upstream_duration_seconds_sum{upstream=\"orders\",call=\"get\"} 5.0
toystore_frontend_upstream_duration_seconds_count{upstream=\"orders\",call=\"get\"} 10
";
    const FRONTEND_AFTER: &str = "\
toystore_frontend_upstream_duration_seconds_sum{upstream=\"orders\",call=\"place\"} 2.0
toystore_frontend_upstream_duration_seconds_count{upstream=\"orders\",call=\"place\"} 350
toystore_frontend_upstream_duration_seconds_sum{upstream=\"orders\",call=\"get\"} 50.0
toystore_frontend_upstream_duration_seconds_count{upstream=\"orders\",call=\"get\"} 20
# EOF
";

    fn replica(place: (f64, f64), commit: f64, n: f64) -> Scrape {
        Scrape::parse(&format!(
            "toystore_order_place_duration_seconds_sum {}\n\
             toystore_order_place_duration_seconds_count {}\n\
             toystore_order_purchase_step_duration_seconds_sum{{step=\"commit\"}} {commit}\n\
             toystore_order_purchase_step_duration_seconds_count{{step=\"commit\"}} {n}\n",
            place.0, place.1
        ))
    }

    #[test]
    fn means_are_over_the_run_only_and_by_label() {
        let (b, a) = (
            Scrape::parse(FRONTEND_BEFORE),
            Scrape::parse(FRONTEND_AFTER),
        );
        let labels = [("call", "place"), ("upstream", "orders")];
        let (mean, n) = mean_ms(&b, &a, FRONTEND_UPSTREAM, &labels).unwrap();
        assert_eq!(n, 250);
        assert!((mean - 4.0).abs() < 1e-9, "{mean}");
        assert_eq!(mean_ms(&a, &a, FRONTEND_UPSTREAM, &labels), None);
        assert_eq!(mean_ms(&b, &a, "missing", &[]), None);
    }

    #[test]
    fn hops_are_what_each_layer_adds() {
        let fb = Scrape::parse(FRONTEND_BEFORE);
        let fa = Scrape::parse(FRONTEND_AFTER);
        // Two replicas: the leader changed half-way; their samples are summed.
        let mut rb = replica((0.0, 0.0), 0.0, 0.0);
        rb.add(replica((0.0, 0.0), 0.0, 0.0));
        let mut ra = replica((0.375, 125.0), 0.3125, 125.0);
        ra.add(replica((0.375, 125.0), 0.3125, 125.0));
        let b = Breakdown::from_scrapes(1, 5.0, (&fb, &fa), (&rb, &ra));
        assert_eq!(b.purchases, 250);
        let hops: Vec<f64> = b.hops().into_iter().map(|(_, v)| v.unwrap()).collect();
        // Client 5 ms, frontend's call 4 ms, leader 3 ms, commit 2.5 ms.
        let want = [1.0, 1.0, 2.5, 0.5];
        assert_eq!(hops.len(), want.len(), "{hops:?}");
        for (got, want) in hops.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{hops:?}");
        }
        // The hops add up to what the client saw.
        assert!((hops.iter().sum::<f64>() - 5.0).abs() < 1e-9);
    }
}
