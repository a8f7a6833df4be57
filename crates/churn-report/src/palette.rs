//! Colours that colour-blind readers can tell apart: the Okabe-Ito palette.

/// Blue, the first series.
pub const BLUE: &str = "#0072B2";
/// Orange, the second series.
pub const ORANGE: &str = "#E69F00";
/// Bluish green: good, healthy, growth.
pub const GREEN: &str = "#009E73";
/// Vermillion: bad, churned, decline.
pub const VERMILLION: &str = "#D55E00";
/// Reddish purple.
pub const PURPLE: &str = "#CC79A7";
/// Sky blue.
pub const SKY: &str = "#56B4E9";
/// Yellow: fills only, too light for lines.
pub const YELLOW: &str = "#F0E442";
/// Grey: totals, "no data", references.
pub const GREY: &str = "#8C8C8C";
/// Near black: text and reference lines.
pub const INK: &str = "#222222";

/// Series colours in the order charts hand them out (all strong enough for lines).
pub const SERIES: [&str; 7] = [BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, GREY];

/// The colour of series number `i`.
pub fn series(i: usize) -> &'static str {
    SERIES[i % SERIES.len()]
}

/// A sequential colour from white (`t` = 0) to the palette's blue (`t` = 1), and the
/// ink that reads on it.
pub fn sequential(t: f64) -> (String, &'static str) {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mix = |to: f64| (255.0 - (255.0 - to) * t).round();
    let fill = format!("rgb({},{},{})", mix(0.0), mix(114.0), mix(178.0));
    (fill, if t > 0.55 { "#fff" } else { INK })
}
