//! Hand-written SVG line charts for the evaluation report.
//!
//! The report needs a handful of simple charts (latency against p, latency over a fail-over,
//! scaling with clients). SVG is plain text, renders in every browser and in Markdown viewers,
//! and a line chart with axes, ticks and a legend is a page of code, so no plotting crate (and
//! none of their native dependencies) is needed.

use std::fmt::Write;

/// One named line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Shown in the legend.
    pub name: String,
    /// `(x, y)` points, joined in the given order; a non-finite value (NaN) breaks the line.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series from a name and points.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
        }
    }
}

/// A labelled vertical line, e.g. the moment a process was killed.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Where on the x axis.
    pub x: f64,
    /// Label written next to the line.
    pub label: String,
}

/// A line chart with everything that can be set; [`line_chart`] covers the common case.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    /// Title above the plot.
    pub title: &'a str,
    /// Label under the x axis.
    pub x_label: &'a str,
    /// Label beside the y axis.
    pub y_label: &'a str,
    /// The lines.
    pub series: &'a [Series],
    /// Vertical marker lines.
    pub markers: Vec<Marker>,
    /// Explicit x ticks `(position, label)` instead of computed ones.
    pub x_ticks: Option<Vec<(f64, String)>>,
    /// Draw a dot at every point (sensible for few points).
    pub dots: bool,
    /// Width in pixels of the plot with its axes (the legend adds to it).
    pub width: f64,
    /// Height in pixels.
    pub height: f64,
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

const MARGIN_LEFT: f64 = 70.0;
const MARGIN_RIGHT: f64 = 20.0;
const MARGIN_TOP: f64 = 40.0;
const MARGIN_BOTTOM: f64 = 55.0;

/// A line chart of `series` with a title, labelled axes with ticks and a legend.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    Chart::new(title, x_label, y_label, series).render()
}

/// Stacks whole SVG documents vertically into one document (e.g. two related charts).
pub fn stack(charts: &[String]) -> String {
    let mut width: f64 = 0.0;
    let mut body = String::new();
    let mut y = 0.0;
    for chart in charts {
        let (w, h) = (attr(chart, "width"), attr(chart, "height"));
        width = width.max(w);
        // A nested <svg> is a viewport of its own; `y` places it.
        let _ = write!(body, "<g transform=\"translate(0,{y})\">{chart}</g>");
        y += h;
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{y}\" \
         viewBox=\"0 0 {width} {y}\">{body}</svg>\n"
    )
}

/// Reads a numeric attribute of the root element (`width="720"`).
fn attr(svg: &str, name: &str) -> f64 {
    let needle = format!(" {name}=\"");
    svg.find(&needle)
        .and_then(|i| {
            let rest = &svg[i + needle.len()..];
            rest[..rest.find('"')?].parse().ok()
        })
        .unwrap_or(0.0)
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `count` ticks over `span`.
fn nice_step(span: f64, count: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / count;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm < 1.5 {
        1.0
    } else if norm < 3.5 {
        2.0
    } else if norm < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Ticks from `lo` to `hi` (inclusive, widened to step multiples) and the widened range.
fn ticks(lo: f64, hi: f64, count: f64) -> (Vec<f64>, f64, f64) {
    let step = nice_step(hi - lo, count);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let n = ((end - start) / step).round() as usize;
    let ticks = (0..=n).map(|i| start + i as f64 * step).collect();
    (ticks, start, end)
}

/// Formats a tick value without noise (`0.2`, not `0.20000000000000004`).
fn tick_label(v: f64) -> String {
    let r = (v * 1e6).round() / 1e6;
    if r == r.trunc() && r.abs() < 1e15 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

impl<'a> Chart<'a> {
    /// A chart with default size (720×400), computed ticks and no markers.
    pub fn new(title: &'a str, x_label: &'a str, y_label: &'a str, series: &'a [Series]) -> Self {
        Self {
            title,
            x_label,
            y_label,
            series,
            markers: Vec::new(),
            x_ticks: None,
            dots: false,
            width: 720.0,
            height: 400.0,
        }
    }

    /// Renders the chart as a standalone SVG document.
    pub fn render(&self) -> String {
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        let finite = |v: &f64| v.is_finite();
        let xs: Vec<f64> = points()
            .map(|p| p.0)
            .chain(self.markers.iter().map(|m| m.x))
            .chain(self.x_ticks.iter().flatten().map(|t| t.0))
            .filter(finite)
            .collect();
        let ys: Vec<f64> = points().map(|p| p.1).filter(finite).collect();
        let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (mut x_lo, mut x_hi) = if xs.is_empty() {
            (0.0, 1.0)
        } else {
            (min(&xs), max(&xs))
        };
        if x_hi <= x_lo {
            x_lo -= 0.5;
            x_hi += 0.5;
        }
        // Latencies and rates: the y axis starts at zero so sizes compare honestly.
        let y_hi = if ys.is_empty() {
            1.0
        } else {
            max(&ys).max(0.0)
        };
        let y_lo = if ys.is_empty() {
            0.0
        } else {
            min(&ys).min(0.0)
        };
        let y_hi = if y_hi <= y_lo {
            y_lo + 1.0
        } else {
            y_hi * 1.05
        };
        let (y_ticks, y_lo, y_hi) = ticks(y_lo, y_hi, 6.0);
        let x_ticks: Vec<(f64, String)> = match &self.x_ticks {
            Some(t) => t.clone(),
            None => {
                let (t, lo, hi) = ticks(x_lo, x_hi, 8.0);
                (x_lo, x_hi) = (lo, hi);
                t.into_iter().map(|v| (v, tick_label(v))).collect()
            }
        };

        // The legend sits right of the plot, so it never hides a line.
        let longest = self
            .series
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0) as f64;
        let legend_w = if self.series.is_empty() {
            0.0
        } else {
            34.0 + longest * 7.0
        };
        let (w, h) = (self.width + legend_w, self.height);
        let (left, right) = (MARGIN_LEFT, w - MARGIN_RIGHT - legend_w);
        let (top, bottom) = (MARGIN_TOP, h - MARGIN_BOTTOM);
        let sx = |x: f64| left + (x - x_lo) / (x_hi - x_lo) * (right - left);
        let sy = |y: f64| bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top);

        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n\
             <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{}</text>\n",
            w / 2.0,
            esc(self.title)
        );
        // Grid and ticks.
        for y in &y_ticks {
            let py = sy(*y);
            let _ = writeln!(
                svg,
                "<line x1=\"{left}\" y1=\"{py:.1}\" x2=\"{right}\" y2=\"{py:.1}\" stroke=\"#e5e5e5\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                left - 6.0,
                py + 4.0,
                esc(&tick_label(*y))
            );
        }
        for (x, label) in &x_ticks {
            let px = sx(*x);
            let _ = writeln!(
                svg,
                "<line x1=\"{px:.1}\" y1=\"{top}\" x2=\"{px:.1}\" y2=\"{bottom}\" stroke=\"#f0f0f0\"/>\
                 <line x1=\"{px:.1}\" y1=\"{bottom}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"black\"/>\
                 <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                bottom + 5.0,
                bottom + 18.0,
                esc(label)
            );
        }
        // Axes and their labels.
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"black\"/>\
             <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\" stroke=\"black\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n\
             <text x=\"16\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {:.1})\">{}</text>",
            (left + right) / 2.0,
            h - 12.0,
            esc(self.x_label),
            (top + bottom) / 2.0,
            (top + bottom) / 2.0,
            esc(self.y_label)
        );
        // Markers.
        for m in &self.markers {
            let px = sx(m.x);
            let _ = writeln!(
                svg,
                "<line x1=\"{px:.1}\" y1=\"{top}\" x2=\"{px:.1}\" y2=\"{bottom}\" stroke=\"#444\" \
                 stroke-dasharray=\"6 4\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#444\">{}</text>",
                px + 4.0,
                top + 14.0,
                esc(&m.label)
            );
        }
        // Lines; a non-finite point breaks a line into separate pieces.
        for (i, s) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let mut pieces: Vec<Vec<String>> = vec![Vec::new()];
            for (x, y) in &s.points {
                if x.is_finite() && y.is_finite() {
                    let last = pieces.last_mut().expect("never empty");
                    last.push(format!("{:.1},{:.1}", sx(*x), sy(*y)));
                } else if !pieces.last().expect("never empty").is_empty() {
                    pieces.push(Vec::new());
                }
            }
            for piece in pieces.iter().filter(|p| !p.is_empty()) {
                let _ = writeln!(
                    svg,
                    "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                    piece.join(" ")
                );
            }
            if self.dots {
                for p in pieces.iter().flatten() {
                    let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
                    let _ = write!(
                        svg,
                        "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"3.5\" fill=\"{color}\"/>"
                    );
                }
                svg.push('\n');
            }
        }
        // Legend, right of the plot.
        let lx = right + 10.0;
        if !self.series.is_empty() {
            let _ = writeln!(
                svg,
                "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                 fill=\"white\" stroke=\"#ccc\"/>",
                top,
                legend_w - 10.0,
                8.0 + 18.0 * self.series.len() as f64
            );
        }
        for (i, s) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let ly = top + 14.0 + 18.0 * i as f64;
            let _ = writeln!(
                svg,
                "<line x1=\"{:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" \
                 stroke-width=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                lx + 6.0,
                lx + 24.0,
                lx + 28.0,
                ly + 4.0,
                esc(&s.name)
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Series> {
        vec![
            Series::new("cache on", vec![(0.0, 1.0), (0.2, 1.5), (0.4, 2.0)]),
            Series::new(
                "cache off & <raw>",
                vec![(0.0, 3.0), (0.2, 3.5), (0.4, 4.5)],
            ),
        ]
    }

    #[test]
    fn chart_is_svg_with_series_names_and_labels() {
        let svg = line_chart("Query latency", "p", "p50 (ms)", &sample());
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("cache on"));
        assert!(
            svg.contains("cache off &amp; &lt;raw&gt;"),
            "names are escaped"
        );
        assert!(svg.contains("Query latency") && svg.contains("p50 (ms)"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        // Every opened element is closed or self-closed.
        let opened = svg.matches("<text").count();
        assert_eq!(opened, svg.matches("</text>").count());
        assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
        // Ticks with clean labels.
        assert!(svg.contains(">0.2<") && svg.contains(">0<"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn degenerate_input_still_renders() {
        for series in [vec![], vec![Series::new("one", vec![(1.0, 5.0)])]] {
            let svg = line_chart("t", "x", "y", &series);
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
    }

    #[test]
    fn markers_ticks_and_stacking() {
        let series = sample();
        let mut chart = Chart::new("a", "x", "y", &series);
        chart.markers.push(Marker {
            x: 0.1,
            label: "SIGKILL".into(),
        });
        chart.x_ticks = Some(vec![(0.0, "one".into()), (0.4, "sixty-four".into())]);
        chart.dots = true;
        let svg = chart.render();
        assert!(svg.contains("SIGKILL") && svg.contains("sixty-four"));
        assert_eq!(svg.matches("<circle").count(), 6);
        let both = stack(&[svg.clone(), svg]);
        assert!(both.starts_with("<svg") && both.trim_end().ends_with("</svg>"));
        assert!(both.contains("height=\"800\""), "{}", &both[..200]);
    }

    #[test]
    fn nan_breaks_a_line() {
        let series = [Series::new(
            "gappy",
            vec![
                (0.0, 1.0),
                (1.0, 2.0),
                (2.0, f64::NAN),
                (3.0, 1.0),
                (4.0, 1.5),
            ],
        )];
        let svg = line_chart("t", "x", "y", &series);
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn nice_ticks() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(0.8, 8.0), 0.1);
        let (t, lo, hi) = ticks(0.0, 9.3, 6.0);
        assert_eq!((lo, hi), (0.0, 10.0));
        assert_eq!(t.len(), 6);
    }
}
