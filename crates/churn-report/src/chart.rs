//! The charts of every page: inline SVG with round ticks, axis titles, legends, a
//! `<title>` and an `aria-label`, built with builders and spliced into pages with maud.
//!
//! Our own module rather than plotters: measured on the KPI page's churn chart,
//! plotters' SVG backend writes 16.8 KB (ours about 3 KB), has no `<title>` or ARIA
//! label, and would still need hand-built heat maps, waterfalls and category axes.

use crate::format::Unit;
use crate::palette;
use crate::scale::Axis;
use maud::{html, Markup, Render};

/// Pixels with one decimal: enough for a screen, short in the file.
fn px(v: f64) -> String {
    let text = format!("{v:.1}");
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_string(),
        None => text,
    }
}

/// Roughly how wide a label of `chars` characters is at font size 10.
fn text_width(chars: usize) -> f64 {
    chars as f64 * 6.0
}

/// The character count of the longest label.
fn longest<'a>(labels: impl IntoIterator<Item = &'a str>) -> usize {
    labels
        .into_iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
}

/// Every how many of `count` evenly spaced positions a label of `chars` characters fits
/// across `width` pixels.
fn label_step(count: usize, chars: usize, width: f64) -> usize {
    let fit = (width / (text_width(chars) + 12.0)).floor().max(1.0) as usize;
    count.div_ceil(fit).max(1)
}

/// Splits `label` at spaces into lines of at most `max_chars` (a word longer than that
/// keeps its own line).
fn wrap(label: &str, max_chars: usize) -> Vec<String> {
    // A sign or symbol (`+`, `-`, `&`) stays with the word after it.
    let mut words: Vec<String> = Vec::new();
    let mut pending = String::new();
    for word in label.split_whitespace() {
        if !word.chars().any(char::is_alphanumeric) {
            pending.push_str(word);
            pending.push(' ');
        } else {
            words.push(format!("{pending}{word}"));
            pending.clear();
        }
    }
    if !pending.is_empty() {
        words.push(pending.trim_end().to_string());
    }
    let mut lines: Vec<String> = Vec::new();
    for word in &words {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= max_chars => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// The outer `<figure>`: the SVG with its title for screen readers and tooltips, and a
/// caption under it.
fn figure(title: &str, width: f64, height: f64, body: Markup) -> Markup {
    html! {
        figure {
            svg class="chart" viewBox=(format!("0 0 {} {}", px(width), px(height)))
                width=(px(width)) height=(px(height)) role="img" aria-label=(title) {
                title { (title) }
                (body)
            }
            figcaption { (title) }
        }
    }
}

/// The rectangle the data is drawn in.
#[derive(Clone, Copy)]
struct Plot {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

impl Plot {
    /// The plot of a `width` x `height` chart with the value axis on the left, its
    /// category or value labels below and `side` pixels on the right (legends).
    fn beside_legend(width: f64, height: f64, side: f64) -> Plot {
        Plot {
            left: 58.0,
            top: 12.0,
            width: width - 58.0 - side,
            height: height - 12.0 - 44.0,
        }
    }

    fn x(&self, fraction: f64) -> f64 {
        self.left + fraction * self.width
    }
    fn y(&self, fraction: f64) -> f64 {
        self.top + (1.0 - fraction) * self.height
    }
    fn bottom(&self) -> f64 {
        self.top + self.height
    }
    fn right(&self) -> f64 {
        self.left + self.width
    }

    fn frame(&self) -> Markup {
        html! {
            rect x=(px(self.left)) y=(px(self.top)) width=(px(self.width)) height=(px(self.height))
                fill="#fcfcfc" stroke="#ccc" {}
        }
    }

    /// A value axis on the left: ticks, grid lines and the title, rotated.
    fn y_axis(&self, axis: &Axis, unit: Unit, title: &str) -> Markup {
        let middle = self.top + self.height / 2.0;
        html! {
            g class="axis y" {
                @for t in axis.ticks() {
                    @let y = self.y(axis.fraction(t));
                    line x1=(px(self.left)) x2=(px(self.right())) y1=(px(y)) y2=(px(y)) stroke="#e6e6e6" {}
                    text class="tick" x=(px(self.left - 5.0)) y=(px(y + 3.5)) font-size="10" text-anchor="end" {
                        (unit.tick(t, axis.step))
                    }
                }
                text class="axis-title" x="12" y=(px(middle)) font-size="11" text-anchor="middle"
                    transform=(format!("rotate(-90 12 {})", px(middle))) { (title) }
            }
        }
    }

    /// A numeric axis along the bottom.
    fn x_axis(&self, axis: &Axis, unit: Unit, title: &str, total_height: f64) -> Markup {
        html! {
            g class="axis x" {
                @for t in axis.ticks() {
                    @let x = self.x(axis.fraction(t));
                    line x1=(px(x)) x2=(px(x)) y1=(px(self.top)) y2=(px(self.bottom())) stroke="#e6e6e6" {}
                    text class="tick" x=(px(x)) y=(px(self.bottom() + 14.0)) font-size="10" text-anchor="middle" {
                        (unit.tick(t, axis.step))
                    }
                }
                (self.x_title(title, total_height))
            }
        }
    }

    /// Category labels along the bottom, thinned so that they never overlap.
    fn category_axis(&self, labels: &[String], title: &str, total_height: f64) -> Markup {
        let n = labels.len();
        let step = label_step(n, longest(labels.iter().map(String::as_str)), self.width);
        let position = |i: usize| {
            if n > 1 {
                self.x(i as f64 / (n - 1) as f64)
            } else {
                self.x(0.5)
            }
        };
        html! {
            g class="axis x" {
                @for (i, label) in labels.iter().enumerate().step_by(step) {
                    text class="tick" x=(px(position(i))) y=(px(self.bottom() + 14.0)) font-size="10" text-anchor="middle" {
                        (label)
                    }
                }
                (self.x_title(title, total_height))
            }
        }
    }

    fn x_title(&self, title: &str, total_height: f64) -> Markup {
        html! {
            text class="axis-title" x=(px(self.left + self.width / 2.0)) y=(px(total_height - 6.0))
                font-size="11" text-anchor="middle" { (title) }
        }
    }
}

/// Legend entries for series named `names`, each in its palette colour.
fn series_entries<'a>(names: impl Iterator<Item = &'a str>) -> Vec<(&'a str, &'static str)> {
    names
        .enumerate()
        .map(|(i, n)| (n, palette::series(i)))
        .collect()
}

/// One legend entry per series, stacked from (`x`, `y`).
fn legend(x: f64, y: f64, entries: &[(&str, &str)]) -> Markup {
    html! {
        g class="legend" {
            @for (i, (name, color)) in entries.iter().enumerate() {
                @let row = y + 15.0 * i as f64;
                rect x=(px(x)) y=(px(row - 8.0)) width="10" height="10" fill=(color) {}
                text x=(px(x + 14.0)) y=(px(row + 1.0)) font-size="10" { (name) }
            }
        }
    }
}

/// How the x axis of a line chart is laid out.
enum XScale {
    /// Evenly spaced labelled positions (months, tenure); points' x is the index.
    Categories(Vec<String>),
    /// A numeric axis, fixed or fitted to the points.
    Numeric(Unit, Option<Axis>),
}

/// An (x, y) point of a line; a missing y leaves a gap.
type Point = (f64, Option<f64>);

/// Lines over categories or numbers, with gaps for missing values, dashed reference
/// lines (goal, baseline) and an optional diagonal (ROC, calibration, gains).
pub struct LineChart {
    title: String,
    x: XScale,
    x_title: String,
    y_title: String,
    y_unit: Unit,
    y_fixed: Option<Axis>,
    series: Vec<(String, Vec<Point>)>,
    references: Vec<(String, f64)>,
    diagonal: bool,
    size: (f64, f64),
}

impl LineChart {
    /// A chart titled `title` (the caption, the SVG `<title>` and its ARIA label).
    pub fn new(title: impl Into<String>) -> Self {
        LineChart {
            title: title.into(),
            x: XScale::Numeric(Unit::Number, None),
            x_title: String::new(),
            y_title: String::new(),
            y_unit: Unit::Number,
            y_fixed: None,
            series: Vec::new(),
            references: Vec::new(),
            diagonal: false,
            size: (660.0, 300.0),
        }
    }

    /// Labelled, evenly spaced x positions; series values are given per position.
    pub fn categories(mut self, labels: Vec<String>, title: impl Into<String>) -> Self {
        self.x = XScale::Categories(labels);
        self.x_title = title.into();
        self
    }

    /// A numeric x axis fitted to the points (one [`LineChart::unit_square`] fixed
    /// stays fixed, whichever is called first).
    pub fn x(mut self, title: impl Into<String>, unit: Unit) -> Self {
        let fixed = match self.x {
            XScale::Numeric(_, fixed) => fixed,
            XScale::Categories(_) => None,
        };
        self.x = XScale::Numeric(unit, fixed);
        self.x_title = title.into();
        self
    }

    /// The y axis: its title and what its numbers are.
    pub fn y(mut self, title: impl Into<String>, unit: Unit) -> Self {
        self.y_title = title.into();
        self.y_unit = unit;
        self
    }

    /// Both axes fixed from 0 to 1 in steps of 0.2, drawn square: for rates and curves.
    pub fn unit_square(mut self) -> Self {
        let unit = Axis::fixed(0.0, 1.0, 0.2);
        self.x = XScale::Numeric(Unit::Number, Some(unit));
        self.y_fixed = Some(unit);
        // Four side by side fit a page 1,120 px wide.
        self.size = (262.0, 250.0);
        self
    }

    /// The chart's width in pixels (default 660), so that two fit side by side.
    pub fn width(mut self, width: f64) -> Self {
        self.size.0 = width;
        self
    }

    /// The dashed line y = x.
    pub fn diagonal(mut self) -> Self {
        self.diagonal = true;
        self
    }

    /// A series with a value per category; `None` leaves a gap.
    pub fn series(
        mut self,
        name: impl Into<String>,
        values: impl IntoIterator<Item = Option<f64>>,
    ) -> Self {
        let points = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i as f64, v.filter(|v| v.is_finite())))
            .collect();
        self.series.push((name.into(), points));
        self
    }

    /// A series of (x, y) points on a numeric x axis.
    pub fn points(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64)>,
    ) -> Self {
        let points = points
            .into_iter()
            .filter(|(x, _)| x.is_finite())
            .map(|(x, y)| (x, Some(y).filter(|y| y.is_finite())))
            .collect();
        self.series.push((name.into(), points));
        self
    }

    /// A horizontal dashed line at `value`, labelled with `name` and the value.
    pub fn reference(mut self, name: impl Into<String>, value: f64) -> Self {
        if value.is_finite() {
            self.references.push((name.into(), value));
        }
        self
    }

    fn x_range(&self) -> (f64, f64) {
        let xs = self.series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
        let lo = xs.clone().fold(f64::INFINITY, f64::min);
        let hi = xs.fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    }
}

impl Render for LineChart {
    fn render(&self) -> Markup {
        let (width, height) = self.size;
        let legend_entries = if self.series.len() > 1 {
            series_entries(self.series.iter().map(|s| s.0.as_str()))
        } else {
            Vec::new()
        };
        let side = legend_entries
            .iter()
            .map(|e| e.0.chars().count())
            .chain(self.references.iter().map(|r| r.0.chars().count() + 8))
            .max()
            .map_or(16.0, |chars| text_width(chars) + 30.0);
        let plot = Plot::beside_legend(width, height, side);
        let values = self
            .series
            .iter()
            .flat_map(|s| s.1.iter().filter_map(|p| p.1))
            .chain(self.references.iter().map(|r| r.1));
        let lo = values.clone().fold(f64::INFINITY, f64::min);
        let hi = values.fold(f64::NEG_INFINITY, f64::max);
        let y_axis = self.y_fixed.unwrap_or_else(|| Axis::from_zero(lo, hi, 5));
        let (x_fraction, x_axis): (Box<dyn Fn(f64) -> f64>, Markup) = match &self.x {
            XScale::Categories(labels) => {
                let n = labels.len();
                (
                    Box::new(move |i| if n > 1 { i / (n - 1) as f64 } else { 0.5 }),
                    plot.category_axis(labels, &self.x_title, height),
                )
            }
            XScale::Numeric(unit, fixed) => {
                let (lo, hi) = self.x_range();
                let axis = fixed.unwrap_or_else(|| Axis::nice(lo, hi, 6));
                (
                    Box::new(move |x| axis.fraction(x)),
                    plot.x_axis(&axis, *unit, &self.x_title, height),
                )
            }
        };
        let to_xy = |x: f64, y: f64| {
            format!(
                "{},{}",
                px(plot.x(x_fraction(x))),
                px(plot.y(y_axis.fraction(y)))
            )
        };
        // Runs of present values become polylines; a lone value becomes a dot.
        let runs: Vec<(usize, Vec<(f64, f64)>)> = self
            .series
            .iter()
            .enumerate()
            .flat_map(|(k, (_, points))| {
                points
                    .split(|p| p.1.is_none())
                    .filter(|run| !run.is_empty())
                    .map(move |run| (k, run.iter().map(|p| (p.0, p.1.unwrap_or(0.0))).collect()))
            })
            .collect();
        let body = html! {
            (plot.frame())
            (plot.y_axis(&y_axis, self.y_unit, &self.y_title))
            (x_axis)
            @if self.diagonal {
                line x1=(px(plot.x(0.0))) y1=(px(plot.y(0.0))) x2=(px(plot.x(1.0))) y2=(px(plot.y(1.0)))
                    stroke=(palette::GREY) stroke-dasharray="4 3" {}
            }
            @for (i, (name, value)) in self.references.iter().enumerate() {
                @let y = plot.y(y_axis.fraction(*value));
                @let color = if i == 0 { palette::INK } else { palette::GREY };
                @let label = format!("{name} {}", self.y_unit.value(*value, 2));
                g class="reference" {
                    line x1=(px(plot.left)) x2=(px(plot.right())) y1=(px(y)) y2=(px(y)) stroke=(color) stroke-dasharray="6 4" {
                        title { (label) }
                    }
                    text x=(px(plot.right() + 4.0)) y=(px(y + 3.5)) font-size="10" fill=(color) { (label) }
                }
            }
            @for (k, run) in &runs {
                @let color = palette::series(*k);
                @let name = &self.series[*k].0;
                @if run.len() > 1 {
                    polyline class="series" fill="none" stroke=(color) stroke-width="2"
                        points=(run.iter().map(|(x, y)| to_xy(*x, *y)).collect::<Vec<_>>().join(" ")) {
                        title { (name) }
                    }
                } @else {
                    @let (x, y) = run[0];
                    circle cx=(px(plot.x(x_fraction(x)))) cy=(px(plot.y(y_axis.fraction(y)))) r="2.5" fill=(color) {
                        title { (name) }
                    }
                }
            }
            @if !legend_entries.is_empty() {
                (legend(plot.right() + 10.0, plot.top + 10.0 + 15.0 * self.references.len() as f64 + 6.0, &legend_entries))
            }
        };
        figure(&self.title, width, height, body)
    }
}

/// Horizontal bars, one row per label, one bar per series in each row, with a value
/// axis from zero and the value printed after each row.
pub struct Bars {
    title: String,
    value_title: String,
    unit: Unit,
    decimals: usize,
    series: Vec<String>,
    rows: Vec<(String, Vec<f64>)>,
}

impl Bars {
    /// A bar chart titled `title`.
    pub fn new(title: impl Into<String>) -> Self {
        Bars {
            title: title.into(),
            value_title: String::new(),
            unit: Unit::Number,
            decimals: 2,
            series: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// The value axis: its title, unit and the decimals of the printed values.
    pub fn values(mut self, title: impl Into<String>, unit: Unit, decimals: usize) -> Self {
        self.value_title = title.into();
        self.unit = unit;
        self.decimals = decimals;
        self
    }

    /// Names of the series when rows have more than one value (shown as a legend).
    pub fn series_names(mut self, names: &[&str]) -> Self {
        self.series = names.iter().map(|n| n.to_string()).collect();
        self
    }

    /// A row: its label and a value per series.
    pub fn row(mut self, label: impl Into<String>, values: Vec<f64>) -> Self {
        self.rows.push((label.into(), values));
        self
    }
}

impl Render for Bars {
    fn render(&self) -> Markup {
        let per_row = self
            .rows
            .iter()
            .map(|r| r.1.len())
            .max()
            .unwrap_or(1)
            .max(1);
        let row_height = if per_row > 1 { 20.0 } else { 18.0 };
        let label_width =
            (text_width(longest(self.rows.iter().map(|r| r.0.as_str()))) + 14.0).max(90.0);
        let legend_height = if self.series.len() > 1 { 22.0 } else { 6.0 };
        let plot = Plot {
            left: label_width,
            top: legend_height,
            width: 360.0,
            height: row_height * self.rows.len().max(1) as f64,
        };
        let width = plot.right() + 70.0;
        let height = plot.bottom() + 40.0;
        let values = self
            .rows
            .iter()
            .flat_map(|r| r.1.iter().copied())
            .filter(|v| v.is_finite());
        let lo = values.clone().fold(0.0, f64::min);
        let hi = values.fold(0.0, f64::max);
        let axis = Axis::from_zero(lo, hi, 5);
        let zero = plot.x(axis.fraction(0.0));
        let thickness = (row_height - 4.0) / per_row as f64;
        let entries = series_entries(self.series.iter().map(String::as_str));
        let body = html! {
            (plot.x_axis(&axis, self.unit, &self.value_title, height))
            @for (i, (label, values)) in self.rows.iter().enumerate() {
                @let y = plot.top + row_height * i as f64 + 2.0;
                @let end = values.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
                text class="tick" x=(px(plot.left - 6.0)) y=(px(y + row_height / 2.0 + 1.5)) font-size="10" text-anchor="end" { (label) }
                @for (k, v) in values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
                    @let x = plot.x(axis.fraction(*v));
                    rect x=(px(x.min(zero))) y=(px(y + thickness * k as f64)) width=(px((x - zero).abs().max(0.5)))
                        height=(px(thickness)) fill=(palette::series(k)) {
                        title { (label) ": " (self.unit.value(*v, self.decimals)) }
                    }
                }
                text class="value" x=(px(plot.x(axis.fraction(end)) + 4.0)) y=(px(y + row_height / 2.0 + 1.5)) font-size="10" {
                    (values.iter().map(|v| self.unit.value(*v, self.decimals)).collect::<Vec<_>>().join(" / "))
                }
            }
            @if entries.len() > 1 {
                (legend(plot.left, 12.0, &entries[..1]))
                (legend(plot.left + 120.0, 12.0, &entries[1..]))
            }
        };
        figure(&self.title, width, height, body)
    }
}

/// Vertical columns per category, each split into stacked layers (shares of a whole).
pub struct StackedBars {
    title: String,
    categories: Vec<String>,
    x_title: String,
    y_title: String,
    unit: Unit,
    layers: Vec<(String, String, Vec<f64>)>,
    width: f64,
}

impl StackedBars {
    /// A stacked bar chart titled `title` over `categories`.
    pub fn new(title: impl Into<String>, categories: Vec<String>, x_title: &str) -> Self {
        StackedBars {
            title: title.into(),
            categories,
            x_title: x_title.into(),
            y_title: String::new(),
            unit: Unit::Percent,
            layers: Vec::new(),
            width: 660.0,
        }
    }

    /// The value axis.
    pub fn y(mut self, title: impl Into<String>, unit: Unit) -> Self {
        self.y_title = title.into();
        self.unit = unit;
        self
    }

    /// The chart's width in pixels (default 660).
    pub fn width(mut self, width: f64) -> Self {
        self.width = width;
        self
    }

    /// A layer, stacked on the previous ones, with a value per category.
    pub fn layer(mut self, name: &str, color: &str, values: Vec<f64>) -> Self {
        self.layers.push((name.into(), color.into(), values));
        self
    }
}

impl StackedBars {
    /// Each layer's base and height in category `i` (missing values count as zero).
    fn stack(&self, i: usize) -> Vec<(f64, f64)> {
        let mut base = 0.0;
        self.layers
            .iter()
            .map(|l| {
                let v = l.2.get(i).copied().filter(|v| v.is_finite()).unwrap_or(0.0);
                base += v;
                (base - v, v)
            })
            .collect()
    }
}

impl Render for StackedBars {
    fn render(&self) -> Markup {
        let (width, height) = (self.width, 280.0);
        let names = longest(self.layers.iter().map(|l| l.0.as_str()));
        let plot = Plot::beside_legend(width, height, text_width(names) + 40.0);
        let n = self.categories.len().max(1);
        let highest = (0..n)
            .flat_map(|i| self.stack(i).last().map(|(base, v)| base + v))
            .fold(0.0, f64::max);
        let axis = Axis::from_zero(0.0, highest, 5);
        let band = plot.width / n as f64;
        let step = label_step(
            n,
            longest(self.categories.iter().map(String::as_str)),
            plot.width,
        );
        let entries: Vec<(&str, &str)> = self
            .layers
            .iter()
            .rev()
            .map(|l| (l.0.as_str(), l.1.as_str()))
            .collect();
        let body = html! {
            (plot.y_axis(&axis, self.unit, &self.y_title))
            @for (i, category) in self.categories.iter().enumerate() {
                @let x = plot.left + band * i as f64 + 1.0;
                @for ((name, color, _), (base, v)) in self.layers.iter().zip(self.stack(i)) {
                    @let (y0, y1) = (plot.y(axis.fraction(base)), plot.y(axis.fraction(base + v)));
                    rect x=(px(x)) y=(px(y1)) width=(px((band - 2.0).max(1.0))) height=(px(y0 - y1)) fill=(color) {
                        title { (category) " " (name) ": " (self.unit.value(v, 1)) }
                    }
                }
                @if i % step == 0 {
                    text class="tick" x=(px(x + band / 2.0)) y=(px(plot.bottom() + 14.0)) font-size="10" text-anchor="middle" { (category) }
                }
            }
            (plot.x_title(&self.x_title, height))
            (legend(plot.right() + 12.0, plot.top + 10.0, &entries))
        };
        figure(&self.title, width, height, body)
    }
}

/// A grid of cells coloured by value (white to blue over `domain`), the value printed
/// in each: cohort retention by months since signup.
pub struct HeatMap {
    title: String,
    columns: Vec<String>,
    column_title: String,
    row_title: String,
    unit: Unit,
    domain: (f64, f64),
    rows: Vec<(String, Vec<Option<f64>>)>,
}

impl HeatMap {
    /// A heat map titled `title` with labelled columns.
    pub fn new(title: impl Into<String>, columns: Vec<String>, column_title: &str) -> Self {
        HeatMap {
            title: title.into(),
            columns,
            column_title: column_title.into(),
            row_title: String::new(),
            unit: Unit::Percent,
            domain: (0.0, 100.0),
            rows: Vec::new(),
        }
    }

    /// The rows' title and the values' unit and colour domain.
    pub fn values(mut self, row_title: &str, unit: Unit, domain: (f64, f64)) -> Self {
        self.row_title = row_title.into();
        self.unit = unit;
        self.domain = domain;
        self
    }

    /// A row: its label and a value per column (`None`: no cell).
    pub fn row(mut self, label: impl Into<String>, values: Vec<Option<f64>>) -> Self {
        self.rows.push((label.into(), values));
        self
    }
}

impl Render for HeatMap {
    fn render(&self) -> Markup {
        let (cell_w, cell_h) = (32.0, 18.0);
        let left = 32.0 + text_width(longest(self.rows.iter().map(|r| r.0.as_str())));
        let top = 40.0;
        let width = left + cell_w * self.columns.len().max(1) as f64 + 10.0;
        let height = top + cell_h * self.rows.len() as f64 + 40.0;
        let (lo, hi) = self.domain;
        let t = |v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
        let middle = top + cell_h * self.rows.len() as f64 / 2.0;
        let key: Vec<f64> = (0..=4).map(|k| lo + (hi - lo) * k as f64 / 4.0).collect();
        let body = html! {
            text class="axis-title" x=(px(left + cell_w * self.columns.len() as f64 / 2.0)) y="12" font-size="11" text-anchor="middle" { (self.column_title) }
            @for (k, column) in self.columns.iter().enumerate() {
                text class="tick" x=(px(left + cell_w * (k as f64 + 0.5))) y="32" font-size="10" text-anchor="middle" { (column) }
            }
            text class="axis-title" x="12" y=(px(middle)) font-size="11" text-anchor="middle"
                transform=(format!("rotate(-90 12 {})", px(middle))) { (self.row_title) }
            @for (i, (label, values)) in self.rows.iter().enumerate() {
                @let y = top + cell_h * i as f64;
                text class="tick" x=(px(left - 5.0)) y=(px(y + 13.0)) font-size="10" text-anchor="end" { (label) }
                @for (k, v) in values.iter().enumerate() {
                    @if let Some(v) = v.filter(|v| v.is_finite()) {
                        @let (fill, ink) = palette::sequential(t(v));
                        rect x=(px(left + cell_w * k as f64)) y=(px(y)) width=(px(cell_w)) height=(px(cell_h)) fill=(fill) stroke="#fff" {
                            title { (label) ", " (self.columns.get(k).map_or("", |c| c.as_str())) ": " (self.unit.value(v, 1)) }
                        }
                        text x=(px(left + cell_w * (k as f64 + 0.5))) y=(px(y + 12.5)) font-size="9" text-anchor="middle" fill=(ink) {
                            (format!("{v:.0}"))
                        }
                    }
                }
            }
            g class="legend" {
                @for (k, v) in key.iter().enumerate() {
                    @let x = left + 44.0 * k as f64;
                    @let (fill, _) = palette::sequential(t(*v));
                    rect x=(px(x)) y=(px(height - 26.0)) width="14" height="10" fill=(fill) stroke="#ccc" {}
                    text x=(px(x + 17.0)) y=(px(height - 17.0)) font-size="10" { (self.unit.tick(*v, (hi - lo) / 4.0)) }
                }
            }
        };
        figure(&self.title, width, height, body)
    }
}

/// Counts or shares over bins of a numeric value, one bar per series in each bin.
pub struct Histogram {
    title: String,
    edges: Vec<f64>,
    x_title: String,
    x_unit: Unit,
    y_title: String,
    y_unit: Unit,
    series: Vec<(String, Vec<f64>)>,
}

impl Histogram {
    /// A histogram over bins with these edges (one more edge than bins).
    pub fn new(title: impl Into<String>, edges: Vec<f64>) -> Self {
        Histogram {
            title: title.into(),
            edges,
            x_title: String::new(),
            x_unit: Unit::Number,
            y_title: String::new(),
            y_unit: Unit::Number,
            series: Vec::new(),
        }
    }

    /// The binned value's axis.
    pub fn x(mut self, title: &str, unit: Unit) -> Self {
        self.x_title = title.into();
        self.x_unit = unit;
        self
    }

    /// The heights' axis.
    pub fn y(mut self, title: &str, unit: Unit) -> Self {
        self.y_title = title.into();
        self.y_unit = unit;
        self
    }

    /// A series: a height per bin.
    pub fn series(mut self, name: &str, heights: Vec<f64>) -> Self {
        self.series.push((name.into(), heights));
        self
    }
}

impl Render for Histogram {
    fn render(&self) -> Markup {
        let (width, height) = (660.0, 280.0);
        let entries = series_entries(self.series.iter().map(|s| s.0.as_str()));
        let names = longest(entries.iter().map(|e| e.0));
        let plot = Plot::beside_legend(width, height, text_width(names) + 40.0);
        let first = self.edges.first().copied().unwrap_or(0.0);
        let last = self.edges.last().copied().unwrap_or(1.0);
        let x_axis = Axis::nice(first, last, 6);
        let hi = self
            .series
            .iter()
            .flat_map(|s| s.1.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let y_axis = Axis::from_zero(0.0, hi, 5);
        let count = self.series.len().max(1) as f64;
        let body = html! {
            (plot.y_axis(&y_axis, self.y_unit, &self.y_title))
            (plot.x_axis(&x_axis, self.x_unit, &self.x_title, height))
            @for (k, (name, heights)) in self.series.iter().enumerate() {
                @for (b, h) in heights.iter().enumerate().filter(|(_, h)| h.is_finite()) {
                    @if let (Some(a), Some(z)) = (self.edges.get(b), self.edges.get(b + 1)) {
                        @let (x0, x1) = (plot.x(x_axis.fraction(*a)), plot.x(x_axis.fraction(*z)));
                        @let bar = (x1 - x0 - 2.0).max(1.0) / count;
                        @let y = plot.y(y_axis.fraction(*h));
                        rect x=(px(x0 + 1.0 + bar * k as f64)) y=(px(y)) width=(px(bar)) height=(px(plot.bottom() - y)) fill=(palette::series(k)) {
                            title { (name) " " (self.x_unit.value(*a, 2)) "-" (self.x_unit.value(*z, 2)) ": " (self.y_unit.value(*h, 1)) }
                        }
                    }
                }
            }
            @if entries.len() > 1 {
                (legend(plot.right() + 12.0, plot.top + 10.0, &entries))
            }
        };
        figure(&self.title, width, height, body)
    }
}

/// A waterfall: totals from zero and the steps between them floating on a running sum
/// (increases green, decreases vermillion).
pub struct Waterfall {
    title: String,
    y_title: String,
    unit: Unit,
    bars: Vec<(String, f64, bool)>,
    width: f64,
}

impl Waterfall {
    /// A waterfall titled `title`, its values in `unit`.
    pub fn new(title: impl Into<String>, y_title: &str, unit: Unit) -> Self {
        Waterfall {
            title: title.into(),
            y_title: y_title.into(),
            unit,
            bars: Vec::new(),
            width: 660.0,
        }
    }

    /// The chart's width in pixels (default 660).
    pub fn width(mut self, width: f64) -> Self {
        self.width = width;
        self
    }

    /// A total drawn from zero; the running sum continues from it.
    pub fn total(mut self, label: &str, value: f64) -> Self {
        self.bars.push((label.into(), value, true));
        self
    }

    /// A change from the running sum.
    pub fn step(mut self, label: &str, delta: f64) -> Self {
        self.bars.push((label.into(), delta, false));
        self
    }

    /// Each bar's low and high end.
    fn spans(&self) -> Vec<(f64, f64)> {
        let mut running = 0.0;
        self.bars
            .iter()
            .map(|(_, v, total)| {
                let (from, to) = if *total {
                    (0.0, *v)
                } else {
                    (running, running + v)
                };
                running = to;
                (from.min(to), from.max(to))
            })
            .collect()
    }
}

impl Render for Waterfall {
    fn render(&self) -> Markup {
        let (width, height) = (self.width, 300.0);
        let plot = Plot {
            left: 62.0,
            top: 22.0,
            width: width - 62.0 - 16.0,
            height: height - 22.0 - 56.0,
        };
        let spans = self.spans();
        let lo = spans.iter().map(|s| s.0).fold(0.0, f64::min);
        let hi = spans.iter().map(|s| s.1).fold(0.0, f64::max);
        let axis = Axis::from_zero(lo, hi, 5);
        let band = plot.width / self.bars.len().max(1) as f64;
        let chars = ((band - 8.0) / 6.0).floor().max(4.0) as usize;
        let body = html! {
            (plot.y_axis(&axis, self.unit, &self.y_title))
            @for (i, ((label, v, total), (low, high))) in self.bars.iter().zip(&spans).enumerate() {
                @let x = plot.left + band * i as f64 + 8.0;
                @let (y_high, y_low) = (plot.y(axis.fraction(*high)), plot.y(axis.fraction(*low)));
                @let color = if *total { palette::GREY } else if *v >= 0.0 { palette::GREEN } else { palette::VERMILLION };
                @let value = if *total || *v < 0.0 { self.unit.value(*v, 0) } else { format!("+{}", self.unit.value(*v, 0)) };
                rect x=(px(x)) y=(px(y_high)) width=(px(band - 16.0)) height=(px((y_low - y_high).max(1.0))) fill=(color) {
                    title { (label) ": " (value) }
                }
                text class="value" x=(px(x + band / 2.0 - 8.0)) y=(px(y_high - 4.0)) font-size="10" text-anchor="middle" { (value) }
                text class="tick" x=(px(x + band / 2.0 - 8.0)) y=(px(plot.bottom() + 14.0)) font-size="10" text-anchor="middle" {
                    @for (k, line) in wrap(label, chars).iter().enumerate() {
                        tspan x=(px(x + band / 2.0 - 8.0)) dy=(if k == 0 { "0" } else { "12" }) { (line) }
                    }
                }
            }
        };
        figure(&self.title, width, height, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_labels_never_overlap() {
        for count in [6, 12, 24, 60] {
            let step = label_step(count, 7, 442.0);
            let shown = count.div_ceil(step);
            let spacing = 442.0 / (count as f64 - 1.0) * step as f64;
            assert!(
                spacing >= text_width(7),
                "{count} labels: every {step}, {spacing} px apart"
            );
            assert!(shown >= 2, "{count} labels: only {shown} shown");
        }
        assert_eq!(label_step(5, 2, 442.0), 1);
    }

    #[test]
    fn labels_wrap_at_spaces() {
        assert_eq!(
            wrap("+ new & reactivated", 12),
            vec!["+ new", "& reactivated"]
        );
        assert_eq!(wrap("- contraction", 11), vec!["- contraction"]);
        assert_eq!(wrap("start MRR", 12), vec!["start MRR"]);
        assert_eq!(wrap("a -", 12), vec!["a -"]);
    }

    #[test]
    fn bar_labels_get_the_room_they_need_and_two_series_a_legend() {
        let long = "events_feature_use_pct_change_28d";
        let svg = Bars::new("t")
            .values("v", Unit::Percent, 1)
            .series_names(&["predicted", "actual"])
            .row(long, vec![1.0, 2.0])
            .row("mrr", vec![0.5, 0.4])
            .render()
            .into_string();
        let bars_at: f64 = svg
            .split("<rect x=\"")
            .skip(1)
            .filter_map(|r| r.split('"').next()?.parse().ok())
            .fold(f64::MAX, f64::min);
        assert!(
            bars_at - 6.0 >= text_width(long.len()),
            "bars start at {bars_at}"
        );
        assert!(svg.contains(">predicted</text>") && svg.contains(">actual</text>"));
        let single = Bars::new("t").row("mrr", vec![0.5]).render().into_string();
        assert!(!single.contains("class=\"legend\""));
    }

    #[test]
    fn values_and_labels_are_escaped_by_construction() {
        let svg = LineChart::new("a <b> & \"c\"")
            .categories(vec!["<x>".into()], "months")
            .series("<script>", [Some(1.0)])
            .render()
            .into_string();
        assert!(!svg.contains("<script>") && !svg.contains("<x>") && !svg.contains("<b>"));
        assert!(svg.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
    }

    #[test]
    fn gaps_split_lines_and_lone_values_are_dots() {
        let svg = LineChart::new("t")
            .categories((0..5).map(|i| i.to_string()).collect(), "k")
            .series("s", [Some(1.0), Some(2.0), None, Some(3.0), None])
            .render()
            .into_string();
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
    }

    #[test]
    fn waterfall_steps_float_on_the_running_sum() {
        let w = Waterfall::new("t", "$", Unit::Money)
            .total("start", 100.0)
            .step("+ new", 30.0)
            .step("- churned", -50.0)
            .total("end", 80.0);
        assert_eq!(
            w.spans(),
            vec![(0.0, 100.0), (100.0, 130.0), (80.0, 130.0), (0.0, 80.0)]
        );
        let svg = w.render().into_string();
        assert!(
            svg.contains(">+$30</text>") && svg.contains(">-$50</text>"),
            "{svg}"
        );
    }
}
