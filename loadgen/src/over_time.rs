//! Latency and answers over the course of a run, in time slices: what `toystore load`'s
//! latency-over-time chart shows.
//!
//! A run keeps no samples (see [`crate::stats`]), so the recorder keeps one latency histogram
//! and a few counters per time slice and request type instead. Slices start one second wide;
//! when a run outgrows [`MAX_SLICES`] slices, neighbours merge pairwise and the width doubles,
//! so a run of any length keeps at most that many. Requests count in the slice in which they
//! were sent, as in the evaluation's fail-over figure.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plot::{Chart, Series};
use crate::report::{Answer, RequestKind};
use crate::stats::LatencyHistogram;

/// Most slices a run keeps.
pub const MAX_SLICES: usize = 120;
/// Width of a slice until a run outgrows [`MAX_SLICES`].
const FIRST_WIDTH: Duration = Duration::from_secs(1);

/// What happened to one request type in one slice, while recording.
#[derive(Debug, Clone, Default)]
struct Tally {
    latencies: LatencyHistogram,
    sold_out: u64,
    unknown_toy: u64,
    errors: u64,
}

impl Tally {
    fn merge(&mut self, other: &Tally) {
        self.latencies.merge(&other.latencies);
        self.sold_out += other.sold_out;
        self.unknown_toy += other.unknown_toy;
        self.errors += other.errors;
    }

    fn figures(&self) -> SliceFigures {
        let ok = self.latencies.count();
        let stats = self.latencies.stats();
        SliceFigures {
            ok,
            sold_out: self.sold_out,
            unknown_toy: self.unknown_toy,
            errors: self.errors,
            p50_ms: (ok > 0).then_some(stats.p50_ms),
            p99_ms: (ok > 0).then_some(stats.p99_ms),
        }
    }
}

/// Queries and orders of one slice, while recording.
#[derive(Debug, Clone, Default)]
struct SliceTally {
    query: Tally,
    order: Tally,
    found_sold_out: u64,
}

/// Records the requests of a load phase into time slices (shared by the sessions).
#[derive(Debug)]
pub(crate) struct Recorder {
    width: Duration,
    slices: Vec<SliceTally>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            width: FIRST_WIDTH,
            slices: Vec::new(),
        }
    }
}

impl Recorder {
    /// The slice of a request sent `sent` after the start.
    fn slice(&mut self, sent: Duration) -> &mut SliceTally {
        let index = loop {
            let index = (sent.as_nanos() / self.width.as_nanos()) as usize;
            if index < MAX_SLICES {
                break index;
            }
            self.coarsen();
        };
        if self.slices.len() <= index {
            self.slices.resize_with(index + 1, SliceTally::default);
        }
        &mut self.slices[index]
    }

    /// Records one query or order sent `sent` after the start; lookups are not part of it.
    pub(crate) fn record(
        &mut self,
        kind: RequestKind,
        sent: Duration,
        latency: Duration,
        answer: &Answer,
    ) {
        let slice = self.slice(sent);
        let tally = match kind {
            RequestKind::Query => &mut slice.query,
            RequestKind::Order => &mut slice.order,
            RequestKind::Lookup => return,
        };
        match answer {
            Answer::Ok => tally.latencies.record(latency),
            Answer::SoldOut => tally.sold_out += 1,
            Answer::UnknownToy => tally.unknown_toy += 1,
            Answer::Error(_) => tally.errors += 1,
        }
    }

    /// Records a session that set out to buy but whose query, sent `sent` after the start,
    /// showed the toy sold out.
    pub(crate) fn found_sold_out(&mut self, sent: Duration) {
        self.slice(sent).found_sold_out += 1;
    }

    /// Doubles the width: slices 2i and 2i+1 become slice i.
    fn coarsen(&mut self) {
        self.width *= 2;
        let old = std::mem::take(&mut self.slices);
        self.slices = old
            .chunks(2)
            .map(|pair| {
                let mut merged = pair[0].clone();
                if let Some(second) = pair.get(1) {
                    merged.query.merge(&second.query);
                    merged.order.merge(&second.order);
                    merged.found_sold_out += second.found_sold_out;
                }
                merged
            })
            .collect();
    }

    /// The figures of a load phase that lasted `elapsed`.
    pub(crate) fn finish(&self, elapsed: Duration) -> OverTime {
        let width = self.width.as_secs_f64();
        OverTime {
            slice_secs: width,
            elapsed_secs: elapsed.as_secs_f64(),
            slices: self
                .slices
                .iter()
                .enumerate()
                .map(|(i, s)| Slice {
                    start_secs: i as f64 * width,
                    query: s.query.figures(),
                    order: s.order.figures(),
                    found_sold_out: s.found_sold_out,
                })
                .collect(),
        }
    }
}

/// One request type in one slice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SliceFigures {
    /// Successful answers, whose latencies `p50_ms` and `p99_ms` describe.
    pub ok: u64,
    /// Answered 409, not enough stock (orders only).
    pub sold_out: u64,
    /// Answered 404, unknown toy.
    pub unknown_toy: u64,
    /// Failed requests: any answer but a success, sold out or unknown toy.
    pub errors: u64,
    /// Median latency of the successful answers (none without any).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency of the successful answers (none without any).
    pub p99_ms: Option<f64>,
}

/// One time slice of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    /// Seconds from the start of the run to the start of the slice.
    pub start_secs: f64,
    /// Queries sent in the slice.
    pub query: SliceFigures,
    /// Orders sent in the slice.
    pub order: SliceFigures,
    /// Sessions that set out to buy but whose query (sent in the slice) showed the toy sold
    /// out, so they placed no order.
    pub found_sold_out: u64,
}

/// Queries and orders of a load phase, slice by slice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OverTime {
    /// Width of every slice, in seconds.
    pub slice_secs: f64,
    /// How long the load phase lasted, in seconds (the last slice may be cut short by it).
    pub elapsed_secs: f64,
    /// The slices, from the start of the run.
    pub slices: Vec<Slice>,
}

impl OverTime {
    /// The slices worth plotting, each with its middle and its length in seconds. A last slice
    /// cut by the end of the run to less than half a width and less than a second (requests of
    /// sessions that had just begun) is left out: a rate over a few milliseconds says nothing.
    fn plotted(&self) -> impl Iterator<Item = (&Slice, f64, f64)> {
        self.slices.iter().filter_map(|s| {
            let length = (self.elapsed_secs - s.start_secs).min(self.slice_secs);
            (length >= self.slice_secs / 2.0 || length >= 1.0).then_some((
                s,
                s.start_secs + length / 2.0,
                length,
            ))
        })
    }

    /// The latency-over-time figure: query latency and order latency (p50 and p99 of the
    /// successful answers, per slice), then what became of the purchases the sessions set out
    /// to make, per second (bought, or sold out at the query or at the order); a chart
    /// is left out when the run had nothing to show in it. `setup` goes into the titles (e.g.
    /// "5 clients, p = 0.5").
    pub fn charts(&self, setup: &str) -> Vec<Chart> {
        let x_label = "time since the start of the run (s)";
        let latency = |pick: &dyn Fn(&Slice) -> &SliceFigures| {
            // A slice without a successful answer breaks the line rather than suggest a value.
            let line = |q: &dyn Fn(&SliceFigures) -> Option<f64>| -> Vec<(f64, f64)> {
                self.plotted()
                    .map(|(s, x, _)| (x, q(pick(s)).unwrap_or(f64::NAN)))
                    .collect()
            };
            vec![
                Series::new("p50", line(&|f| f.p50_ms)),
                Series::new("p99", line(&|f| f.p99_ms)),
            ]
        };
        let any = |pick: &dyn Fn(&SliceFigures) -> u64| {
            self.slices
                .iter()
                .any(|s| pick(&s.query) + pick(&s.order) > 0)
        };
        let total = |f: &SliceFigures| f.ok + f.sold_out + f.unknown_toy + f.errors;
        let mut charts = Vec::new();
        if self.slices.iter().any(|s| total(&s.query) > 0) {
            let mut c = Chart::new(
                format!("Query latency (GET /products/{{name}}) over time, {setup}"),
                x_label,
                "latency (ms)",
                latency(&|s| &s.query),
            );
            c.dots = self.slices.len() <= 30;
            charts.push(c);
        }
        if self.slices.iter().any(|s| total(&s.order) > 0) {
            let mut c = Chart::new(
                format!("Order latency (POST /orders, confirmed) over time, {setup}"),
                x_label,
                "latency (ms)",
                latency(&|s| &s.order),
            );
            c.dots = self.slices.len() <= 30;
            charts.push(c);
        }
        if self
            .slices
            .iter()
            .any(|s| total(&s.order) + s.found_sold_out > 0)
        {
            let rate = |pick: &dyn Fn(&Slice) -> u64| -> Vec<(f64, f64)> {
                self.plotted()
                    .map(|(s, x, length)| (x, pick(s) as f64 / length))
                    .collect()
            };
            let mut series = vec![Series::new("bought", rate(&|s| s.order.ok))];
            if self.slices.iter().any(|s| total(&s.query) > 0) {
                series.push(Series::new(
                    "sold out at the query",
                    rate(&|s| s.found_sold_out),
                ));
            }
            series.push(Series::new(
                "sold out at the order (409)",
                rate(&|s| s.order.sold_out),
            ));
            if any(&|f| f.unknown_toy) {
                series.push(Series::new(
                    "unknown toy (404)",
                    rate(&|s| s.query.unknown_toy + s.order.unknown_toy),
                ));
            }
            if any(&|f| f.errors) {
                series.push(Series::new(
                    "failed requests",
                    rate(&|s| s.query.errors + s.order.errors),
                ));
            }
            charts.push(Chart::new(
                format!("Purchases per second, {setup}"),
                x_label,
                "purchases per second",
                series,
            ));
        }
        charts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn requests_land_in_the_slice_they_were_sent_in() {
        let mut r = Recorder::default();
        r.record(RequestKind::Query, ms(100), ms(1), &Answer::Ok);
        r.record(RequestKind::Order, ms(900), ms(8), &Answer::Ok);
        r.record(RequestKind::Order, ms(1500), ms(9), &Answer::SoldOut);
        r.record(
            RequestKind::Order,
            ms(1600),
            ms(9),
            &Answer::Error("503".into()),
        );
        r.record(RequestKind::Lookup, ms(1700), ms(1), &Answer::Ok);
        let t = r.finish(ms(2000));
        assert_eq!(t.slice_secs, 1.0);
        assert_eq!(t.slices.len(), 2);
        assert_eq!((t.slices[0].query.ok, t.slices[0].order.ok), (1, 1));
        let p50 = t.slices[0].order.p50_ms.unwrap();
        assert!(
            (p50 - 8.0).abs() < 0.01,
            "{p50} (within the histogram's precision)"
        );
        let second = &t.slices[1].order;
        assert_eq!((second.ok, second.sold_out, second.errors), (0, 1, 1));
        assert_eq!(
            second.p50_ms, None,
            "no latency without a successful answer"
        );
        assert_eq!(
            t.slices[1].query,
            SliceFigures::default(),
            "lookups are not kept"
        );
    }

    #[test]
    fn a_long_run_keeps_at_most_max_slices() {
        let mut r = Recorder::default();
        for s in 0..1000u64 {
            r.record(
                RequestKind::Order,
                Duration::from_secs(s),
                ms(5),
                &Answer::Ok,
            );
        }
        let t = r.finish(Duration::from_secs(1000));
        assert!(t.slices.len() <= MAX_SLICES, "{}", t.slices.len());
        assert_eq!(t.slice_secs, 16.0);
        let total: u64 = t.slices.iter().map(|s| s.order.ok).sum();
        assert_eq!(total, 1000, "merging loses nothing");
        assert_eq!(t.slices[1].start_secs, 16.0);
        assert_eq!(t.slices[1].order.ok, 16);
    }

    #[test]
    fn charts_show_latency_and_answers_with_units() {
        let mut r = Recorder::default();
        for i in 0..40u64 {
            r.record(RequestKind::Query, ms(i * 100), ms(1), &Answer::Ok);
            let answer = if i < 20 { Answer::Ok } else { Answer::SoldOut };
            r.record(RequestKind::Order, ms(i * 100 + 50), ms(10), &answer);
        }
        r.found_sold_out(ms(3900));
        // A session that had just begun when the run ended: a sliver of a slice.
        r.record(RequestKind::Query, ms(4001), ms(1), &Answer::Ok);
        let t = r.finish(ms(4002));
        let charts = t.charts("2 clients, p = 0.5");
        assert_eq!(charts.len(), 3);
        for c in &charts {
            assert!(c.x_label.contains("(s)"), "{c:?}");
            assert!(c.y_label.contains("ms") || c.y_label.contains("per second"));
            assert!(c.title.contains("2 clients, p = 0.5"));
            assert!(!c.series.is_empty());
        }
        let answers = &charts[2];
        let names: Vec<&str> = answers.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bought",
                "sold out at the query",
                "sold out at the order (409)"
            ]
        );
        assert_eq!(
            answers.series[0].points.len(),
            4,
            "the sliver is not plotted"
        );
        assert_eq!(answers.series[0].points[0], (0.5, 10.0));
        assert_eq!(answers.series[1].points[3], (3.5, 1.0));
        assert_eq!(answers.series[2].points[3], (3.5, 10.0));
        // Order latency breaks where no order was confirmed.
        assert!(charts[1].series[0].points[3].1.is_nan());
        let svg = crate::plot::svg(&charts).unwrap();
        assert!(svg.contains("latency (ms)") && svg.contains("sold out at the query"));

        let orders_only = {
            let mut r = Recorder::default();
            r.record(RequestKind::Order, ms(10), ms(3), &Answer::Ok);
            r.finish(ms(1000))
        };
        assert_eq!(orders_only.charts("x").len(), 2, "no query chart");
    }
}
