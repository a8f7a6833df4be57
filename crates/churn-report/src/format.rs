//! Numbers as people read them: thousands separators, currency, percentages with a
//! precision that suits the figure, and "n/a" for what could not be measured.

/// A whole number with thousands separators (`-0` printed as `0`).
pub fn thousands(v: f64) -> String {
    grouped(v, 0)
}

/// `v` with `decimals` decimals and thousands separators in the whole part.
pub fn grouped(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let text = format!("{:.decimals$}", v.abs());
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text.as_str(), None),
    };
    let mut out = String::with_capacity(text.len() + whole.len() / 3 + 1);
    // The sign only when the rounded value is not zero: never "-0".
    if v < 0.0 && text.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        out.push('-');
    }
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if let Some(f) = fraction {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// Whole dollars with thousands separators, the sign before the currency (`-$2,594`).
pub fn money(v: f64) -> String {
    money_with(v, 0)
}

/// Dollars with `decimals` decimals (`$81.23`).
pub fn money_with(v: f64, decimals: usize) -> String {
    let text = grouped(v, decimals);
    match text.strip_prefix('-') {
        Some(abs) => format!("-${abs}"),
        None if text == "n/a" => text,
        None => format!("${text}"),
    }
}

/// A value already in percent (`7.25` → `7.3 %` with one decimal).
pub fn percent(v: f64, decimals: usize) -> String {
    format!("{} %", grouped(v, decimals))
}

/// `Some(v)` with `decimals` decimals and separators, `None` as `n/a`.
pub fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".into(), |v| grouped(v, decimals))
}

/// `Some(v)` as a percentage, `None` as `n/a`.
pub fn opt_percent(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".into(), |v| percent(v, decimals))
}

/// Large numbers shortened for axis ticks: `250k`, `1.5M`; small ones as they are.
pub fn compact(v: f64, decimals: usize) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e9 {
        (v / 1e9, "B")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        return grouped(v, decimals);
    };
    // Ticks are round, so the scaled value needs at most two decimals.
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

/// What an axis or a cell measures, which decides how its numbers print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A plain number (counts, scores, rates in [0, 1]).
    Number,
    /// A value already in percent.
    Percent,
    /// Dollars.
    Money,
}

impl Unit {
    /// A tick label for `v` on an axis whose ticks are `step` apart.
    pub fn tick(self, v: f64, step: f64) -> String {
        let decimals = decimals_for(step);
        match self {
            Unit::Number => compact(v, decimals),
            Unit::Percent => format!("{}%", grouped(v, decimals)),
            Unit::Money => {
                let text = compact(v.abs(), decimals);
                if v < 0.0 && v.abs() >= step / 2.0 {
                    format!("-${text}")
                } else {
                    format!("${text}")
                }
            }
        }
    }

    /// A value label (on a bar, in a tooltip) with `decimals` decimals.
    pub fn value(self, v: f64, decimals: usize) -> String {
        match self {
            Unit::Number => grouped(v, decimals),
            Unit::Percent => percent(v, decimals),
            Unit::Money => money_with(v, decimals),
        }
    }
}

/// How many decimals tell ticks `step` apart (0 for whole steps, 1 for 0.5, 2 for 0.25).
pub fn decimals_for(step: f64) -> usize {
    if !step.is_finite() || step <= 0.0 {
        return 0;
    }
    (0..=6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(6) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits_and_never_prints_minus_zero() {
        assert_eq!(thousands(264640.4), "264,640");
        assert_eq!(thousands(-1234567.0), "-1,234,567");
        assert_eq!(thousands(999.5), "1,000");
        assert_eq!(thousands(-0.0), "0");
        assert_eq!(thousands(-0.4), "0");
        assert_eq!(thousands(12.0), "12");
        assert_eq!(grouped(-0.04, 1), "0.0");
        assert_eq!(grouped(1234.567, 2), "1,234.57");
        assert_eq!(grouped(f64::NAN, 2), "n/a");
        assert_eq!(money(-2594.2), "-$2,594");
        assert_eq!(money(-0.2), "$0");
        assert_eq!(money(264640.0), "$264,640");
        assert_eq!(money_with(81.234, 2), "$81.23");
        assert_eq!(percent(7.26, 1), "7.3 %");
        assert_eq!(opt(None, 2), "n/a");
        assert_eq!(opt_percent(Some(45.61), 1), "45.6 %");
    }

    #[test]
    fn ticks_print_short_and_only_the_decimals_their_step_needs() {
        assert_eq!(Unit::Money.tick(250_000.0, 50_000.0), "$250k");
        assert_eq!(Unit::Money.tick(1_500_000.0, 500_000.0), "$1.5M");
        assert_eq!(Unit::Money.tick(5_000.0, 1_000.0), "$5,000");
        assert_eq!(Unit::Money.tick(-20_000.0, 10_000.0), "-$20k");
        assert_eq!(Unit::Percent.tick(2.0, 2.0), "2%");
        assert_eq!(Unit::Percent.tick(2.5, 0.5), "2.5%");
        assert_eq!(Unit::Number.tick(0.2, 0.2), "0.2");
        assert_eq!(Unit::Number.tick(0.25, 0.05), "0.25");
        assert_eq!(Unit::Number.tick(0.30000000000000004, 0.1), "0.3");
        assert_eq!(decimals_for(0.0005), 4);
        assert_eq!(decimals_for(20.0), 0);
    }
}
