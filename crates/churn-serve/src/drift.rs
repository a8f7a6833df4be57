//! Live drift: the inputs and scores of the traffic a model version served over a
//! sliding window, binned as its reference profile bins them, so that `/metrics` can
//! give the PSI of each input and of the scores against the training data.
//!
//! The window is a ring of six slots, each a sixth of the window long; a slot older
//! than the window is cleared when its turn comes again. Observing a prediction bins
//! each profiled input (a search among at most nine edges, or a look-up among at most
//! fifty categories) and adds one to a count under a mutex held for that alone.

use churn_model::artifact::Artifact;
use churn_model::preprocess::Cell;
use churn_model::profile::{self, Bins, Profile};
use churn_scoring::Scorer;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Slots of the ring.
const SLOTS: usize = 6;

/// One profiled input: where the scorer finds it and how it is binned.
#[derive(Debug)]
struct Input {
    name: String,
    /// Position in the scorer's schema.
    position: usize,
    bins: Bins,
    reference: Vec<u64>,
    /// Where its counts start in a slot's flat counts.
    offset: usize,
}

#[derive(Debug, Clone)]
struct Slot {
    /// Which slot-length period since the start it counts (`u64::MAX`: none yet).
    epoch: u64,
    rows: u64,
    counts: Vec<u64>,
}

/// The drift of the traffic one model version served.
#[derive(Debug)]
pub struct LiveDrift {
    inputs: Vec<Input>,
    scores: Bins,
    score_reference: Vec<u64>,
    score_offset: usize,
    slot_length: Duration,
    started: Instant,
    slots: Mutex<Vec<Slot>>,
}

/// The window's figures at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftSnapshot {
    /// Predictions in the window.
    pub rows: u64,
    /// The window's length.
    pub window: Duration,
    /// PSI per profiled input, in the profile's order.
    pub inputs: Vec<(String, f64)>,
    pub scores: f64,
}

impl LiveDrift {
    /// Drift over a sliding `window` for the model `scorer` serves; `None` when its
    /// artifact has no profile (saved before format 4) or the window is zero.
    pub fn new(scorer: &Scorer, window: Duration) -> Option<LiveDrift> {
        let artifact: &Artifact = scorer.artifact();
        let profile = artifact.profile.as_ref()?;
        LiveDrift::from_profile(profile, |name| scorer.position(name), window)
    }

    /// Drift against `profile`, its inputs found at `position(name)` in a row.
    pub fn from_profile(
        profile: &Profile,
        position: impl Fn(&str) -> Option<usize>,
        window: Duration,
    ) -> Option<LiveDrift> {
        if window.is_zero() {
            return None;
        }
        let mut offset = 0;
        let inputs: Vec<Input> = profile
            .inputs
            .iter()
            .filter_map(|i| {
                let position = position(&i.name)?;
                let input = Input {
                    name: i.name.clone(),
                    position,
                    bins: i.reference.bins.clone(),
                    reference: i.reference.counts.clone(),
                    offset,
                };
                offset += input.bins.len();
                Some(input)
            })
            .collect();
        let score_offset = offset;
        let width = offset + profile.scores.bins.len();
        let slot_length = (window / SLOTS as u32).max(Duration::from_millis(1));
        Some(LiveDrift {
            inputs,
            scores: profile.scores.bins.clone(),
            score_reference: profile.scores.counts.clone(),
            score_offset,
            slot_length,
            started: Instant::now(),
            slots: Mutex::new(vec![
                Slot {
                    epoch: u64::MAX,
                    rows: 0,
                    counts: vec![0; width],
                };
                SLOTS
            ]),
        })
    }

    fn epoch(&self) -> u64 {
        (self.started.elapsed().as_nanos() / self.slot_length.as_nanos().max(1)) as u64
    }

    /// Counts one prediction: the row's cells (by schema position) and its probability.
    pub fn observe<'a>(&self, row: impl Fn(usize) -> Cell<'a>, probability: f64) {
        let epoch = self.epoch();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut slots[(epoch % SLOTS as u64) as usize];
        if slot.epoch != epoch {
            slot.epoch = epoch;
            slot.rows = 0;
            slot.counts.iter_mut().for_each(|c| *c = 0);
        }
        slot.rows += 1;
        for input in &self.inputs {
            let bin = input.bins.of_cell(row(input.position));
            slot.counts[input.offset + bin] += 1;
        }
        slot.counts[self.score_offset + self.scores.of_number(Some(probability))] += 1;
    }

    /// The window's PSI per input and of the scores.
    pub fn snapshot(&self) -> DriftSnapshot {
        let epoch = self.epoch();
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let live: Vec<&Slot> = slots
            .iter()
            .filter(|s| s.epoch != u64::MAX && s.epoch + SLOTS as u64 > epoch)
            .collect();
        let sum = |from: usize, len: usize| -> Vec<u64> {
            (from..from + len)
                .map(|k| live.iter().map(|s| s.counts[k]).sum())
                .collect()
        };
        DriftSnapshot {
            rows: live.iter().map(|s| s.rows).sum(),
            window: self.slot_length * SLOTS as u32,
            inputs: self
                .inputs
                .iter()
                .map(|i| {
                    let now = sum(i.offset, i.bins.len());
                    (i.name.clone(), profile::psi(&i.reference, &now))
                })
                .collect(),
            scores: profile::psi(
                &self.score_reference,
                &sum(self.score_offset, self.scores.len()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use churn_model::profile::{BacktestFigures, Distribution, InputProfile};

    fn profile() -> Profile {
        let numeric = |edges: Vec<f64>, counts: Vec<u64>| Distribution {
            bins: Bins::Numeric { edges },
            counts,
        };
        Profile {
            rows: 100,
            first_as_of: None,
            last_as_of: None,
            inputs: vec![InputProfile {
                name: "x".into(),
                importance: 1.0,
                reference: numeric(vec![1.0, 2.0], vec![50, 30, 20, 0]),
            }],
            scores: numeric(vec![0.5], vec![80, 20, 0]),
            mean_score: 0.26,
            base_rate: 0.2,
            bands: Vec::new(),
            cohorts: Vec::new(),
            backtest: BacktestFigures {
                rows: 100,
                positives: 20,
                roc_auc: None,
                roc_auc_low: None,
                pr_auc: None,
                lift_top10: None,
                predicted_churn_pct: 20.0,
                actual_churn_pct: 20.0,
            },
        }
    }

    #[test]
    fn traffic_like_the_reference_has_no_drift_and_old_traffic_leaves_the_window() {
        let window = Duration::from_millis(120);
        let d = LiveDrift::from_profile(&profile(), |n| (n == "x").then_some(0), window).unwrap();
        // 50 / 30 / 20 over the bins, scores 80 / 20: the reference's own shares.
        for k in 0..100 {
            let x = if k < 50 {
                0.5
            } else if k < 80 {
                1.5
            } else {
                3.0
            };
            let p = if k % 5 == 0 { 0.9 } else { 0.1 };
            d.observe(|_| Cell::Number(x), p);
        }
        let now = d.snapshot();
        assert_eq!(now.rows, 100);
        assert_eq!(now.inputs, vec![("x".to_string(), 0.0)]);
        assert_eq!(now.scores, 0.0);
        // Every value missing: the missing bin, empty in training, takes every row.
        d.observe(|_| Cell::Missing, 0.1);
        assert!(d.snapshot().inputs[0].1 > 0.0);
        // A window later, the ring has turned past every slot written.
        std::thread::sleep(window * 2);
        let later = d.snapshot();
        assert_eq!((later.rows, later.inputs[0].1), (0, 0.0));
        assert!(LiveDrift::from_profile(&profile(), |_| Some(0), Duration::ZERO).is_none());
    }
}
