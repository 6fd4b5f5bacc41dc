//! The evaluation's figures: which charts show which results, as data for [`loadgen::plot`].
//!
//! Each figure is a pure function of [`EvalResults`], so what a chart shows can be checked
//! without drawing it; [`crate::write_outputs`] draws each one as SVG (linked from the report)
//! and PNG.

use loadgen::plot::{Chart, Marker, Series, XAxis};
use loadgen::stats::WorkloadResult;

use crate::report::{EvalResults, Failover, Part, SweepPoint, TimelinePoint};

/// Every figure the results allow, by file name (without extension).
pub fn all(r: &EvalResults) -> Vec<(&'static str, Vec<Chart>)> {
    let mut figures = vec![
        ("latency_vs_p", latency_vs_p(r)),
        ("order_scaling", order_scaling(r)),
    ];
    if let Part::Measured(f) = &r.failover {
        figures.push(("failover", failover(f)));
    }
    figures
}

/// Query and order latency against p, cache on and off.
pub fn latency_vs_p(r: &EvalResults) -> Vec<Chart> {
    // Orders at p = 0: there are none, so that point is left out of the order chart.
    let line = |cache: bool, orders: bool, pick: &dyn Fn(&SweepPoint) -> f64| -> Vec<(f64, f64)> {
        r.sweep
            .iter()
            .filter(|s| s.cache == cache && (!orders || s.order.result.ops > 0))
            .map(|s| (s.p, pick(s)))
            .collect()
    };
    let series = |orders: bool, pick: &dyn Fn(&SweepPoint) -> (f64, f64)| {
        vec![
            Series::new("p50, cache on", line(true, orders, &|s| pick(s).0)),
            Series::new("p50, cache off", line(false, orders, &|s| pick(s).0)),
            Series::new("p99, cache on", line(true, orders, &|s| pick(s).1)),
            Series::new("p99, cache off", line(false, orders, &|s| pick(s).1)),
        ]
    };
    let query = series(false, &|s| {
        (s.query.latency().p50_ms, s.query.latency().p99_ms)
    });
    let order = series(true, &|s| {
        (s.order.latency().p50_ms, s.order.latency().p99_ms)
    });
    let chart = |title: &str, series| {
        let mut c = Chart::new(
            title,
            "p (probability of ordering a toy in stock)",
            "latency (ms)",
            series,
        );
        c.dots = true;
        c
    };
    vec![
        chart("Query latency (GET /products/{name}) against p", query),
        chart("Order latency (POST /orders) against p", order),
    ]
}

/// Order throughput and latency at 1, 8 and 64 clients, with etcd's when it was measured.
pub fn order_scaling(r: &EvalResults) -> Vec<Chart> {
    let ours = |pick: &dyn Fn(&WorkloadResult) -> f64| -> Vec<(f64, f64)> {
        r.scaling
            .iter()
            .map(|s| (s.clients as f64, pick(&s.order.result)))
            .collect()
    };
    let etcd = |pick: &dyn Fn(&WorkloadResult) -> f64| -> Option<Vec<(f64, f64)>> {
        match &r.etcd {
            Part::Measured(b) => Some(
                b.results
                    .iter()
                    .map(|e| (e.clients as f64, pick(e)))
                    .collect(),
            ),
            Part::Skipped(_) => None,
        }
    };
    let mut throughput = vec![Series::new("ToyStore orders/s", ours(&|w| w.throughput))];
    let mut latency = vec![
        Series::new("ToyStore p50", ours(&|w| w.latency.p50_ms)),
        Series::new("ToyStore p99", ours(&|w| w.latency.p99_ms)),
    ];
    if let Some(points) = etcd(&|w| w.throughput) {
        throughput.push(Series::new("etcd puts/s", points));
    }
    if let (Some(p50), Some(p99)) = (etcd(&|w| w.latency.p50_ms), etcd(&|w| w.latency.p99_ms)) {
        latency.push(Series::new("etcd p50", p50));
        latency.push(Series::new("etcd p99", p99));
    }
    // Clients on a log2 axis: 1, 8 and 64 evenly spaced.
    let chart = |title: &str, y: &str, series| {
        let mut c = Chart::new(title, "concurrent clients (log₂ scale)", y, series);
        c.x_axis = XAxis::Log2;
        c.dots = true;
        c
    };
    vec![
        chart(
            "Order throughput (orders only)",
            "operations per second",
            throughput,
        ),
        chart("Order latency (orders only)", "latency (ms)", latency),
    ]
}

/// Order latency and acknowledgements over time across the SIGKILL of the leader.
pub fn failover(f: &Failover) -> Vec<Chart> {
    // One point per 100 ms bucket in which orders were sent; where no order was sent (every
    // client waiting on an answer) the line breaks rather than suggest latencies nobody saw.
    let line = |pick: &dyn Fn(&TimelinePoint) -> f64| {
        let mut points = Vec::new();
        let mut last: Option<f64> = None;
        for p in f.timeline.iter().filter(|p| p.acked > 0) {
            if last.is_some_and(|t| p.t_secs - t > 0.15) {
                points.push((p.t_secs, f64::NAN));
            }
            points.push((p.t_secs, pick(p)));
            last = Some(p.t_secs);
        }
        points
    };
    let series = vec![
        Series::new("slowest order sent in each 100 ms", line(&|p| p.max_ms)),
        Series::new("median order sent in each 100 ms", line(&|p| p.p50_ms)),
    ];
    let marker = Marker {
        x: 0.0,
        label: format!("SIGKILL replica {}", f.killed_replica),
    };
    let mut latency = Chart::new(
        "Order latency across a SIGKILL of the Raft leader",
        "time the order was sent (s; 0 = SIGKILL of the leader)",
        "latency (ms)",
        series,
    );
    latency.markers.push(marker.clone());
    let acks = vec![Series::new(
        "acknowledgements per 100 ms",
        f.timeline
            .iter()
            .map(|p| (p.t_secs, p.completed as f64))
            .collect(),
    )];
    let mut throughput = Chart::new(
        "Acknowledged orders across the fail-over",
        "time the acknowledgement arrived (s; 0 = SIGKILL of the leader)",
        "orders per 100 ms",
        acks,
    );
    throughput.markers.push(marker);
    vec![latency, throughput]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{results, results_with_etcd};

    #[test]
    fn figures_follow_what_was_measured() {
        let r = results();
        let names = |r: &EvalResults| all(r).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(
            names(&r),
            ["latency_vs_p", "order_scaling"],
            "no fail-over figure"
        );

        let scaling = order_scaling(&r);
        assert!(scaling.iter().all(|c| c.x_axis == XAxis::Log2));
        assert_eq!(
            scaling[0].series.len(),
            1,
            "no etcd series while it was skipped"
        );
        assert_eq!(scaling[0].series[0].points, vec![(8.0, 2000.0)]);

        let r = results_with_etcd();
        let scaling = order_scaling(&r);
        assert_eq!(scaling[0].series[1].name, "etcd puts/s");
        assert_eq!(scaling[1].series.len(), 4, "p50 and p99 of both");

        // Every chart says what its axes measure.
        for (_, charts) in all(&r) {
            for c in charts {
                assert!(!c.x_label.is_empty() && !c.y_label.is_empty(), "{c:?}");
            }
        }
    }

    #[test]
    fn outputs_are_written_as_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let report = crate::write_outputs(dir.path(), &results()).unwrap();
        assert_eq!(report, dir.path().join("report.md"));
        for name in [
            "report.md",
            "results.json",
            "latency_vs_p.svg",
            "latency_vs_p.png",
            "order_scaling.svg",
            "order_scaling.png",
        ] {
            let bytes = std::fs::read(dir.path().join(name)).unwrap();
            assert!(!bytes.is_empty(), "{name} is empty");
        }
        let svg = std::fs::read_to_string(dir.path().join("order_scaling.svg")).unwrap();
        assert!(svg.contains("concurrent clients") && svg.contains("ToyStore p99"));
    }
}
