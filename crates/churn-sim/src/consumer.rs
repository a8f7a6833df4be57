//! The consumer-app preset: a business shaped nothing like the default one, to test the
//! product on data it was not designed around. A streaming app with one price and one
//! plan, billed monthly from the signup day (one subscription row per billing month, as
//! invoice exports give them), about 2 % monthly churn decided at renewals, eight product
//! event types (about 250 events per account-month) with known effects, and no tickets,
//! payments or surveys. `customers` accounts sign up evenly over the window (but its last
//! month), and each history is complete from its signup.
//!
//! What drives churn (the "truth" a model should find):
//! - a latent engagement level sets every event rate and the churn hazard (engaged
//!   accounts stay);
//! - half the churners fade first: over the 20 to 50 days before the renewal they do
//!   not renew, the positive events (`song_play`, `like`, `share`, `playlist_add`) fall
//!   to about half, and the negative ones (`playback_error`, `help_view`,
//!   `cancel_page_view`) rise two- to sixfold; the rest leave without warning;
//! - new accounts (first two renewals), web users and paid-ads signups churn more;
//! - accounts that stay have dips too (two weeks of half the positive events).

use crate::emit::{TableRows, Window};
use crate::{SimConfig, SimError, SimStats};
use churn_features::contract;
use churn_features::time::{self, Day, SECONDS_PER_DAY};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};
use std::path::Path;

/// The event types: name, mean events per active day at average engagement, and how a
/// fading churner's rate moves (the factor reached on the last day before churn).
pub const EVENT_TYPES: [(&str, f64, f64); 8] = [
    ("song_play", 5.2, 0.6),
    ("search", 1.4, 0.9),
    ("like", 0.8, 0.55),
    ("playlist_add", 0.4, 0.5),
    ("share", 0.2, 0.6),
    ("playback_error", 0.12, 2.0),
    ("help_view", 0.05, 2.5),
    ("cancel_page_view", 0.01, 6.0),
];

/// The attribute columns of the preset's `customers` table.
pub const ATTRIBUTES: [&str; 3] = ["platform", "country", "acquisition"];

const PLATFORMS: [(&str, f64, f64); 3] = [
    ("ios", 0.45, 0.9),
    ("android", 0.4, 1.0),
    ("web", 0.15, 1.35),
];
const COUNTRIES: [(&str, f64); 5] = [
    ("US", 0.4),
    ("GB", 0.15),
    ("DE", 0.15),
    ("BR", 0.15),
    ("IN", 0.15),
];
const ACQUISITION: [(&str, f64, f64); 3] = [
    ("organic", 0.55, 0.85),
    ("referral", 0.15, 0.8),
    ("paid_ads", 0.3, 1.35),
];

/// The monthly price, the same for everyone.
const PRICE: f64 = 9.99;
/// Mean monthly churn the hazard is scaled to.
const MONTHLY_CHURN: f64 = 0.02;

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T], weight: impl Fn(&T) -> f64) -> &'a T {
    let total: f64 = items.iter().map(&weight).sum();
    let mut x = rng.random::<f64>() * total;
    for item in items {
        x -= weight(item);
        if x <= 0.0 {
            return item;
        }
    }
    items.last().expect("non-empty")
}

/// One account's life: its billing rows and how it ends.
struct Account {
    signup: Day,
    /// First day no longer subscribed; `None` while still subscribed at the window's end.
    churn: Option<Day>,
    /// Days over which usage fades before the churn (0: leaves without warning).
    fade_days: i32,
    engagement: f64,
    /// Start days of two-week dips.
    dips: Vec<Day>,
    platform: &'static str,
    country: &'static str,
    acquisition: &'static str,
}

fn simulate(rng: &mut ChaCha8Rng, signup: Day, end: Day) -> Account {
    let z: f64 = Normal::new(0.0, 1.0).expect("valid").sample(rng);
    let platform = pick(rng, &PLATFORMS, |p| p.1);
    let country = pick(rng, &COUNTRIES, |c| c.1).0;
    let acquisition = pick(rng, &ACQUISITION, |a| a.1);
    // E[exp(-0.6 z)] = exp(0.18): the hazard averages MONTHLY_CHURN over engagement;
    // the platform, channel and tenure factors then shift it around that.
    let base = MONTHLY_CHURN * (-0.6 * z).exp() / (0.18f64).exp() * platform.2 * acquisition.2;
    let mut churn = None;
    let mut dips = Vec::new();
    let mut k = 1;
    loop {
        let renewal = time::add_months(signup, k);
        if renewal >= end {
            break;
        }
        let tenure = if k <= 2 { 1.7 } else { 1.0 };
        if rng.random::<f64>() < (base * tenure).min(0.9) {
            churn = Some(renewal);
            break;
        }
        if rng.random::<f64>() < 0.08 {
            dips.push(renewal - rng.random_range(0..28));
        }
        k += 1;
    }
    let fade_days = if churn.is_some() && rng.random::<f64>() < 0.5 {
        rng.random_range(20..=50)
    } else {
        0
    };
    Account {
        signup,
        churn,
        fade_days,
        engagement: (0.55 * z).exp(),
        dips,
        platform: platform.0,
        country,
        acquisition: acquisition.0,
    }
}

impl Account {
    /// The multiplier of event type `k`'s rate on `day`.
    fn factor(&self, k: usize, day: Day) -> f64 {
        let (_, _, fade_to) = EVENT_TYPES[k];
        let mut f = 1.0;
        if let Some(c) = self.churn {
            if self.fade_days > 0 && day >= c - self.fade_days {
                let progress = f64::from(day - (c - self.fade_days)) / f64::from(self.fade_days);
                f *= 1.0 + (fade_to - 1.0) * progress;
            }
        }
        if fade_to < 1.0 && self.dips.iter().any(|&d| (d..d + 14).contains(&day)) {
            f *= 0.5;
        }
        // The first week is exploratory: more of everything.
        if day - self.signup < 7 {
            f *= 1.4;
        }
        f
    }
}

/// Writes the preset's tables into `out`.
pub fn generate(
    cfg: &SimConfig,
    out: &Path,
    progress: impl Fn(u64, u64),
) -> Result<SimStats, SimError> {
    let window = Window {
        start: cfg.start,
        end: time::add_months(cfg.start, cfg.months as i32),
        drift: None,
    };
    // Every account signs up inside the window (the app's first year, or an export of
    // the accounts created in it), so each history is complete from its signup; the
    // last month has no signups, so every account can reach a first renewal.
    let first_signup = cfg.start;
    let span = i64::from(time::add_months(window.end, -1) - first_signup).max(1);
    let (small, big) = crate::extensions(cfg.format);
    let customers_schema = crate::with_text_columns(&contract::CUSTOMERS, &ATTRIBUTES);
    let mut subs_w = crate::writer(
        out,
        &contract::SUBSCRIPTIONS,
        small,
        contract::SUBSCRIPTIONS.arrow_schema(),
    )?;
    let mut customers_w = crate::writer(out, &contract::CUSTOMERS, small, customers_schema)?;
    let mut events_w = crate::writer(out, &contract::EVENTS, big, contract::EVENTS.arrow_schema())?;
    let mut subs = TableRows::new(&contract::SUBSCRIPTIONS, &[]);
    let mut customers = TableRows::new(&contract::CUSTOMERS, &ATTRIBUTES);
    let mut events = TableRows::new(&contract::EVENTS, &[]);
    let mut stats = SimStats::default();
    let total = cfg.customers;
    let width = total.to_string().len().max(6);
    for i in 0..total {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let signup = first_signup + ((i as i64 * span) / total as i64) as Day;
        let a = simulate(&mut rng, signup, window.end);
        let id = format!("A{i:0width$}");
        stats.customers += 1;
        // One row per billing month, the last one ending at the churn.
        let mut k = 0;
        loop {
            let from = time::add_months(a.signup, k);
            if from >= window.end || a.churn.is_some_and(|c| from >= c) {
                break;
            }
            let to = time::add_months(a.signup, k + 1);
            let ends = if a.churn.is_none() && to >= window.end {
                None // the current period, still running
            } else {
                Some(to)
            };
            subs.text(0, Some(&id));
            subs.date(1, Some(from));
            subs.date(2, ends);
            subs.number(3, Some(PRICE));
            subs.text(4, Some("premium"));
            subs.text(5, None);
            subs.rows += 1;
            k += 1;
        }
        customers.text(0, Some(&id));
        customers.text(1, Some(a.platform));
        customers.text(2, Some(a.country));
        customers.text(3, Some(a.acquisition));
        customers.rows += 1;
        let from = a.signup.max(window.start);
        let to = a.churn.unwrap_or(window.end).min(window.end);
        let mut day_events: Vec<(i64, usize)> = Vec::new();
        for day in from..to {
            day_events.clear();
            for (k, (_, rate, _)) in EVENT_TYPES.iter().enumerate() {
                let mean = rate * a.engagement * a.factor(k, day);
                if mean <= 0.0 {
                    continue;
                }
                let n = Poisson::new(mean).expect("positive mean").sample(&mut rng) as u32;
                for _ in 0..n {
                    day_events.push((rng.random_range(0..SECONDS_PER_DAY), k));
                }
            }
            day_events.sort_unstable();
            for &(second, k) in &day_events {
                events.text(0, Some(&id));
                events.time(1, Some(time::day_start(day) + second));
                events.text(2, Some(EVENT_TYPES[k].0));
                events.number(3, None);
                events.text(4, None);
                events.rows += 1;
            }
        }
        if events.rows >= 1 << 16 {
            stats.events += crate::flush(&mut events, &mut events_w)?;
        }
        if i % 256 == 255 {
            progress(i + 1, total);
        }
    }
    stats.subscriptions += crate::flush(&mut subs, &mut subs_w)?;
    crate::flush(&mut customers, &mut customers_w)?;
    stats.events += crate::flush(&mut events, &mut events_w)?;
    for w in [subs_w, customers_w, events_w] {
        w.finish()?;
    }
    progress(total, total);
    Ok(stats)
}
