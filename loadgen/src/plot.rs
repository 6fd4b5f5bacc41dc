//! Line charts, drawn with [plotters](https://docs.rs/plotters) as SVG and PNG: the load
//! client's latency over time (`toystore load`) and the evaluation's figures (`toystore eval`).
//! It lives here, beside [`crate::stats`], because both need it and the evaluation depends on
//! the load client, not the other way round.
//!
//! A chart is plain data ([`Chart`]: a title, axes with units, named series, markers); [`svg`]
//! and [`png`] draw a stack of charts with one function generic over plotters' backends, so both
//! formats always show the same figure. The x axis is linear or a true log₂ axis
//! ([`XAxis::Log2`]), the y axis starts at zero (or below, for negative values) so sizes compare
//! honestly, and every chart has a legend beside the plot, where it never hides a line.
//!
//! Text is laid out with a bundled font (DejaVu Sans, from the `dejavu` crate, through plotters'
//! pure-Rust `ab_glyph` feature), so neither format needs a system font library: the charts
//! render the same on a machine with nothing but Rust installed.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::prelude::*;

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

/// How the x axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    /// Evenly spaced values, ticks at round numbers.
    Linear,
    /// Powers of two evenly spaced (e.g. 1, 8, 64 clients); ticks at powers of two, labelled with
    /// the values themselves. Needs positive x values.
    Log2,
}

/// A line chart: title, labelled axes (say the unit in the label), series, markers.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// Label under the x axis, with its unit.
    pub x_label: String,
    /// Label beside the y axis, with its unit.
    pub y_label: String,
    /// The lines, each named in the legend.
    pub series: Vec<Series>,
    /// Vertical marker lines.
    pub markers: Vec<Marker>,
    /// Linear, or log₂ for values that double (client counts).
    pub x_axis: XAxis,
    /// Draw a dot at every point (sensible for few points).
    pub dots: bool,
}

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing a chart: {0}")]
pub struct PlotError(String);

/// Width in pixels of a chart's plot with its axes (the legend adds to it).
const PLOT_WIDTH: u32 = 720;
/// Height in pixels of one chart.
const CHART_HEIGHT: u32 = 400;
/// The font family every text uses (registered by [`register_font`]).
const FONT: &str = "sans-serif";

const COLORS: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x17, 0xbe, 0xcf),
];
const MARKER_COLOR: RGBColor = RGBColor(0x44, 0x44, 0x44);

/// Makes the bundled font known to plotters (once per process).
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_err()
        {
            unreachable!("the bundled DejaVu Sans is a valid font");
        }
    });
}

/// Charts stacked vertically as one SVG document.
pub fn svg(charts: &[Chart]) -> Result<String, PlotError> {
    register_font();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size(charts)).into_drawing_area();
        draw(&root, charts)?;
    }
    Ok(out)
}

/// Charts stacked vertically, written to `path` as a PNG image.
pub fn png(charts: &[Chart], path: &Path) -> Result<(), PlotError> {
    register_font();
    let root = BitMapBackend::new(path, size(charts)).into_drawing_area();
    draw(&root, charts)
}

/// The image size of a stack: the plot, the widest legend, every chart's height.
fn size(charts: &[Chart]) -> (u32, u32) {
    (
        PLOT_WIDTH + legend_width(charts),
        CHART_HEIGHT * charts.len().max(1) as u32,
    )
}

/// Width of the legend column of a stack, so that the plots of a stack line up.
fn legend_width(charts: &[Chart]) -> u32 {
    charts.iter().map(Chart::legend_width).max().unwrap_or(0)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    charts: &[Chart],
) -> Result<(), PlotError> {
    let fail = |e: DrawingAreaErrorKind<DB::ErrorType>| PlotError(e.to_string());
    root.fill(&WHITE).map_err(fail)?;
    let legend = legend_width(charts);
    for (area, chart) in root
        .split_evenly((charts.len().max(1), 1))
        .iter()
        .zip(charts)
    {
        chart.draw_on(area, legend).map_err(fail)?;
    }
    root.present().map_err(fail)
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

/// Formats a tick value without noise (`0.2`, not `0.20000000000000004`; `64`, not `64.0`).
fn tick_label(v: f64) -> String {
    let r = (v * 1e6).round() / 1e6;
    if r == r.trunc() && r.abs() < 1e15 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

/// The finite runs of a series: a non-finite point ends one line and starts the next.
fn pieces(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for &(x, y) in points {
        if x.is_finite() && y.is_finite() {
            out.last_mut().expect("never empty").push((x, y));
        } else if !out.last().expect("never empty").is_empty() {
            out.push(Vec::new());
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

impl Chart {
    /// A chart with a linear x axis, no markers and no dots.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        series: Vec<Series>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series,
            markers: Vec::new(),
            x_axis: XAxis::Linear,
            dots: false,
        }
    }

    /// This chart alone as an SVG document.
    pub fn svg(&self) -> Result<String, PlotError> {
        svg(std::slice::from_ref(self))
    }

    /// Width of the legend beside the plot, in pixels.
    fn legend_width(&self) -> u32 {
        let longest = self
            .series
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0) as u32;
        if self.series.is_empty() {
            0
        } else {
            40 + longest * 7
        }
    }

    /// The x range (linear or log) and the y range with its ticks: x spans the points, markers
    /// and nothing else; y spans zero and the points, widened 5 % and to round ticks.
    fn ranges(&self) -> ((f64, f64), (Vec<f64>, f64, f64)) {
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        let usable = |x: &f64| x.is_finite() && (self.x_axis == XAxis::Linear || *x > 0.0);
        let xs: Vec<f64> = points()
            .map(|p| p.0)
            .chain(self.markers.iter().map(|m| m.x))
            .filter(usable)
            .collect();
        let ys: Vec<f64> = points().map(|p| p.1).filter(|y| y.is_finite()).collect();
        let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (mut x_lo, mut x_hi) = match (xs.is_empty(), self.x_axis) {
            (true, XAxis::Linear) => (0.0, 1.0),
            (true, XAxis::Log2) => (1.0, 2.0),
            (false, _) => (min(&xs), max(&xs)),
        };
        if x_hi <= x_lo {
            (x_lo, x_hi) = match self.x_axis {
                XAxis::Linear => (x_lo - 0.5, x_hi + 0.5),
                XAxis::Log2 => (x_lo / 2.0, x_hi * 2.0),
            };
        }
        let (y_lo, y_hi) = if ys.is_empty() {
            (0.0, 1.0)
        } else {
            (min(&ys).min(0.0), max(&ys).max(0.0))
        };
        let y_hi = if y_hi <= y_lo {
            y_lo + 1.0
        } else {
            y_hi * 1.05
        };
        ((x_lo, x_hi), ticks(y_lo, y_hi, 6.0))
    }

    /// Draws the chart on `area`: the plot on the left, the legend in the `legend_width` pixels
    /// on the right.
    fn draw_on<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        legend_width: u32,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let (width, _) = area.dim_in_pixel();
        let (plot, legend) = area.split_horizontally(width.saturating_sub(legend_width));
        let ((x_lo, x_hi), (y_ticks, y_lo, y_hi)) = self.ranges();
        // plotters picks round ticks itself; the counts ask for ours, which end on the range's
        // ends.
        let y_labels = y_ticks.len();
        let mut builder = ChartBuilder::on(&plot);
        builder
            .caption(&self.title, (FONT, 17))
            .margin(10)
            .x_label_area_size(45)
            .y_label_area_size(60);
        match self.x_axis {
            XAxis::Linear => {
                let (x_ticks, x_lo, x_hi) = ticks(x_lo, x_hi, 8.0);
                let mut chart = builder.build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)?;
                self.plot(&mut chart, (x_ticks.len(), y_labels), (y_lo, y_hi))?;
            }
            XAxis::Log2 => {
                let x = (x_lo..x_hi).log_scale().base(2.0);
                let mut chart = builder.build_cartesian_2d(x, y_lo..y_hi)?;
                let x_labels = (x_hi / x_lo).log2().ceil() as usize + 1;
                self.plot(&mut chart, (x_labels, y_labels), (y_lo, y_hi))?;
            }
        }
        self.legend(&legend)
    }

    /// Axes, grid, markers, lines and dots, whatever the x axis's type.
    fn plot<DB, X, Y>(
        &self,
        chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
        (x_labels, y_labels): (usize, usize),
        (y_lo, y_hi): (f64, f64),
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
    where
        DB: DrawingBackend,
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let label = |v: &f64| tick_label(*v);
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_labels(x_labels)
            .y_labels(y_labels)
            .x_label_formatter(&label)
            .y_label_formatter(&label)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.1))
            .draw()?;
        let marker_font = (FONT, 12).into_font().color(&MARKER_COLOR);
        for m in &self.markers {
            chart.draw_series(DashedLineSeries::new(
                [(m.x, y_lo), (m.x, y_hi)],
                6,
                4,
                MARKER_COLOR.stroke_width(1),
            ))?;
            chart.draw_series(std::iter::once(
                EmptyElement::at((m.x, y_hi)) + Text::new(m.label.clone(), (4, 4), &marker_font),
            ))?;
        }
        for (i, s) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            for piece in pieces(&s.points) {
                if self.dots {
                    chart.draw_series(piece.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
                }
                chart.draw_series(LineSeries::new(piece, color.stroke_width(2)))?;
            }
        }
        Ok(())
    }

    /// The legend: a framed list of colour swatches and series names.
    fn legend<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        if self.series.is_empty() {
            return Ok(());
        }
        let (width, _) = area.dim_in_pixel();
        let top = 40;
        let height = 8 + 18 * self.series.len() as i32;
        area.draw(&Rectangle::new(
            [(0, top), (width as i32 - 10, top + height)],
            RGBColor(0xcc, 0xcc, 0xcc).stroke_width(1),
        ))?;
        for (i, s) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let y = top + 13 + 18 * i as i32;
            area.draw(&Rectangle::new([(6, y - 2), (24, y + 2)], color.filled()))?;
            area.draw(&Text::new(
                s.name.as_str(),
                (30, y - 7),
                (FONT, 12).into_font(),
            ))?;
        }
        Ok(())
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

    fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
        Chart::new(title, x_label, y_label, series.to_vec())
            .svg()
            .unwrap()
    }

    /// The data lines (2 px wide; axes and ticks are 1 px).
    fn data_lines(svg: &str) -> usize {
        svg.lines()
            .filter(|l| l.starts_with("<polyline") && l.contains("stroke-width=\"2\""))
            .count()
    }

    /// Every text of the document with its x position.
    fn texts(svg: &str) -> Vec<(f64, String)> {
        svg.split("<text")
            .skip(1)
            .map(|t| {
                let x = &t[t.find("x=\"").unwrap() + 3..];
                let x = x[..x.find('"').unwrap()].parse().unwrap();
                let body = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
                (x, body.trim().to_string())
            })
            .collect()
    }

    fn has_text(svg: &str, text: &str) -> bool {
        texts(svg).iter().any(|(_, t)| t == text)
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
        assert_eq!(data_lines(&svg), 2);
        // Every opened element is closed or self-closed.
        let opened = svg.matches("<text").count();
        assert_eq!(opened, svg.matches("</text>").count());
        assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
        // Ticks with clean labels.
        assert!(
            has_text(&svg, "0.2") && has_text(&svg, "0"),
            "{:?}",
            texts(&svg)
        );
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
    fn markers_log2_axis_and_stacking() {
        let mut chart = Chart::new("a", "x", "y", sample());
        chart.markers.push(Marker {
            x: 0.1,
            label: "SIGKILL".into(),
        });
        chart.dots = true;
        let svg = chart.svg().unwrap();
        assert!(svg.contains("SIGKILL"));
        assert_eq!(svg.matches("<circle").count(), 6);
        let both = super::svg(&[chart.clone(), chart]).unwrap();
        assert!(both.starts_with("<svg") && both.trim_end().ends_with("</svg>"));
        assert!(both.contains("height=\"800\""), "{}", &both[..200]);

        // A log2 axis of client counts: ticks at powers of two, labelled with the counts.
        let clients = vec![Series::new(
            "orders/s",
            vec![(1.0, 200.0), (8.0, 700.0), (64.0, 1000.0)],
        )];
        let mut chart = Chart::new("scaling", "concurrent clients", "per second", clients);
        chart.x_axis = XAxis::Log2;
        let svg = chart.svg().unwrap();
        for label in ["1", "2", "8", "64"] {
            assert!(has_text(&svg, label), "{label} missing: {:?}", texts(&svg));
        }
        // Evenly spaced: 1→8 and 8→64 take the same width.
        let x_of = |label: &str| texts(&svg).into_iter().find(|(_, t)| t == label).unwrap().0;
        let (one, eight, sixty_four) = (x_of("1"), x_of("8"), x_of("64"));
        assert!(
            ((eight - one) - (sixty_four - eight)).abs() < 2.0,
            "{one} {eight} {sixty_four}"
        );
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
        assert_eq!(data_lines(&svg), 2, "{svg}");
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn png_has_the_chart_size() {
        let dir = std::env::temp_dir().join(format!("plot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chart.png");
        let chart = Chart::new("Query latency", "p", "latency (ms)", sample());
        png(&[chart.clone(), chart.clone()], &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!(
            (be(16), be(20)),
            (PLOT_WIDTH + chart.legend_width(), 800),
            "IHDR width and height"
        );
        std::fs::remove_dir_all(dir).unwrap();
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
