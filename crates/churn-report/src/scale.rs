//! Axes with round ticks: steps of 1, 2 or 5 times a power of ten that cover the data.

/// A linear axis from `min` to `max` with ticks every `step`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Axis {
    /// The axis start (a tick).
    pub min: f64,
    /// The axis end (a tick).
    pub max: f64,
    /// The distance between ticks: 1, 2 or 5 times a power of ten.
    pub step: f64,
}

impl Axis {
    /// Round ticks covering `[lo, hi]`, about `target` intervals. Degenerate ranges
    /// (empty, a single value, not finite) get a unit-wide axis around the value.
    pub fn nice(lo: f64, hi: f64, target: usize) -> Axis {
        let (lo, hi) = match (lo.is_finite(), hi.is_finite()) {
            (true, true) if hi > lo => (lo, hi),
            (true, _) => (lo, lo + 1.0),
            (false, true) => (hi - 1.0, hi),
            (false, false) => (0.0, 1.0),
        };
        // Of the round steps near the raw one, the one whose interval count is closest
        // to the target (fewer on a tie). Snapping forgives float noise so that data
        // ending at 100 ends the axis at 100 rather than one step later.
        let raw = (hi - lo) / target.max(1) as f64;
        let exponent = raw.log10().floor() as i32;
        let snap = |step: f64| {
            let slack = step * 1e-9;
            let min = ((lo + slack) / step).floor() * step;
            let max = ((hi - slack) / step).ceil() * step;
            (min, max, ((max - min) / step).round() as usize)
        };
        let step = (exponent - 1..=exponent + 1)
            .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
            .min_by_key(|&step| {
                let intervals = snap(step).2;
                (intervals.abs_diff(target.max(1)), intervals)
            })
            .unwrap_or(1.0);
        let (min, max, _) = snap(step);
        Axis { min, max, step }
    }

    /// An axis from zero (or from the data's minimum when it is negative) to `hi`.
    pub fn from_zero(lo: f64, hi: f64, target: usize) -> Axis {
        Axis::nice(lo.min(0.0), hi.max(0.0), target)
    }

    /// A fixed axis (the unit square of ROC curves), ticks every `step`.
    pub fn fixed(min: f64, max: f64, step: f64) -> Axis {
        Axis { min, max, step }
    }

    /// The tick values from `min` to `max`, computed from integers so they print round.
    pub fn ticks(&self) -> Vec<f64> {
        let first = (self.min / self.step).round() as i64;
        let last = (self.max / self.step).round() as i64;
        (first..=last).map(|k| k as f64 * self.step).collect()
    }

    /// Where `v` falls between `min` (0) and `max` (1).
    pub fn fraction(&self, v: f64) -> f64 {
        if self.max > self.min {
            (v - self.min) / (self.max - self.min)
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_reports_old_axes_get_round_ticks() {
        // The monthly churn axis that used to read 1.8 / 3.6 / 5.3 / 7.1 %.
        assert_eq!(
            Axis::from_zero(0.0, 6.45, 5).ticks(),
            vec![0.0, 2.0, 4.0, 6.0, 8.0]
        );
        // MRR that used to read 217126 / 289501 $.
        let mrr = Axis::from_zero(0.0, 263_183.0, 5);
        assert_eq!(mrr.step, 50_000.0);
        assert_eq!(mrr.max, 300_000.0);
        // Retention that ends at 100 % ends there, not at 110 %.
        assert_eq!(Axis::from_zero(0.0, 100.0, 5).max, 100.0);
        assert!(Axis::nice(3.0, 3.0, 5).ticks().len() >= 2);
        assert_eq!(Axis::nice(f64::NAN, f64::NAN, 5), Axis::nice(0.0, 1.0, 5));
    }

    proptest! {
        #[test]
        fn ticks_are_round_cover_the_data_and_are_few(
            lo in -1e7f64..1e7, span in 1e-6f64..1e8, target in 3usize..8,
        ) {
            let hi = lo + span;
            let axis = Axis::nice(lo, hi, target);
            let ticks = axis.ticks();
            prop_assert!(axis.min <= lo + span * 1e-6 && axis.max >= hi - span * 1e-6);
            prop_assert!(ticks.len() >= 2 && ticks.len() <= 2 * target + 2, "{ticks:?}");
            let mantissa = axis.step / 10f64.powf(axis.step.log10().floor());
            prop_assert!(
                [1.0, 2.0, 5.0, 10.0].iter().any(|m| (mantissa - m).abs() < 1e-6),
                "step {}", axis.step
            );
        }
    }
}
