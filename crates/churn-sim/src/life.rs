//! One simulated customer: latent traits, a monthly churn hazard that depends on them,
//! and the rows it leaves behind. Every customer draws from its own random stream
//! (seeded by the run seed and its index), so output does not depend on threading.

use crate::catalog::{Group, CATALOG};
use churn_features::time::{self, Day, Ts, SECONDS_PER_DAY};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal, Poisson};

/// Why a customer leaves (the brief's root causes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Onboarding,
    Support,
    Pricing,
    Features,
    Competition,
}

impl Reason {
    /// The `cancel_reason` the simulated billing system records.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Onboarding => "onboarding",
            Reason::Support => "support",
            Reason::Pricing => "pricing",
            Reason::Features => "features",
            Reason::Competition => "competition",
        }
    }
}

/// Plans with their list prices.
/// Customers grow into their plans (seats, upgrades), so list prices sit below the
/// brief's $130 ARPA of the base.
pub const PLANS: [(&str, [f64; 3]); 3] = [
    ("basic", [27.0, 33.0, 41.0]),
    ("pro", [68.0, 82.0, 96.0]),
    ("enterprise", [137.0, 157.0, 178.0]),
];

pub const COUNTRIES: [&str; 6] = ["US", "GB", "DE", "FR", "CA", "AU"];
pub const INDUSTRIES: [&str; 6] = [
    "software",
    "retail",
    "finance",
    "health",
    "education",
    "media",
];
pub const CHANNELS: [&str; 4] = ["organic", "paid_ads", "referral", "partner"];

/// Monthly churn hazard by month of tenure (1-based), before the customer's multiplier.
/// Shaped so a signup cohort keeps about 75 / 60 / 45 % after months 1 / 3 / 6.
fn base_hazard(tenure_month: u32) -> f64 {
    match tenure_month {
        1 => 0.33,
        2 => 0.12,
        3 => 0.105,
        4..=6 => 0.095,
        7..=9 => 0.085,
        10..=12 => 0.07,
        _ => 0.05,
    }
}

/// No customer is safe: without a floor the best customers would stay for decades and
/// the base would drift towards them for years (churn falling, ARPA rising) instead of
/// being the brief's steady business.
const TENURED_HAZARD_FLOOR: f64 = 0.025;

/// Offset of the logit of falling quiet in a month.
const DORMANT_LOGIT: f64 = 0.85;
/// The monthly chance that a quiet customer uses the product again; with the rate of
/// falling quiet, about 30 % of paying customers are quiet at any time.
const DORMANT_WAKE: f64 = 0.22;
/// The churn hazard of a quiet month, relative to an active one.
const DORMANT_HAZARD: f64 = 1.35;

/// The latent traits of one customer.
#[derive(Debug, Clone)]
pub struct Traits {
    pub plan: usize,
    pub mrr: f64,
    pub has_csm: bool,
    pub country: &'static str,
    pub industry: &'static str,
    pub channel: usize,
    pub seats: u32,
    /// Standard-normal engagement propensity.
    pub engagement: f64,
    /// Days from signup to first value (first feature use).
    pub ttv_days: f64,
    /// Propensity to need support (tickets per month).
    pub ticket_rate: f64,
    /// Per-feature adoption: which catalog features this customer takes up.
    pub adopted: Vec<bool>,
}

/// One subscription row.
#[derive(Debug, Clone, Copy)]
pub struct SubRow {
    pub start: Day,
    pub end: Option<Day>,
    pub mrr: f64,
    pub plan: usize,
    /// Why the customer cancelled, on a row that ends in a churn.
    pub reason: Option<Reason>,
}

/// The customer's life at month granularity: subscriptions, churns and their reasons.
#[derive(Debug, Clone)]
pub struct Life {
    pub signup: Day,
    pub subs: Vec<SubRow>,
    /// Days on which an active period ended (churns), with reason and decline length.
    pub churns: Vec<(Day, Reason, i32)>,
    /// Temporary dips in usage that do not end in churn: (start, end).
    pub dips: Vec<(Day, Day)>,
    /// Quiet months, (start, end): paying without using the product at all. They make
    /// the brief's 70 % monthly active share, and raise the month's churn hazard.
    pub dormant: Vec<(Day, Day)>,
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    Normal::new(0.0, 1.0).expect("valid").sample(rng)
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T], weights: &[f64]) -> T {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (item, w) in items.iter().zip(weights) {
        if x < *w {
            return *item;
        }
        x -= w;
    }
    items[items.len() - 1]
}

/// Draws a customer's traits.
pub fn draw_traits(rng: &mut ChaCha8Rng) -> Traits {
    let plan = pick(rng, &[0usize, 1, 2], &[0.5, 0.38, 0.12]);
    let price = PLANS[plan].1[rng.random_range(0..3)];
    let seats = 1 + rng.random_range(0..3u32);
    let csm_share = [0.26, 0.5, 0.78][plan];
    let has_csm = rng.random::<f64>() < csm_share;
    let channel = pick(rng, &[0usize, 1, 2, 3], &[0.4, 0.3, 0.15, 0.15]);
    let engagement = normal(rng) + if has_csm { 0.25 } else { -0.1 };
    let ttv_median = 52.0 * (-0.35 * engagement).exp() * if has_csm { 0.7 } else { 1.1 };
    let ttv_days = LogNormal::new(ttv_median.ln(), 1.05)
        .expect("valid")
        .sample(rng);
    let ticket_rate = LogNormal::new((0.22f64).ln(), 0.7)
        .expect("valid")
        .sample(rng);
    let adoption = 1.0 / (1.0 + (-(0.9 * engagement + if has_csm { 0.3 } else { 0.0 })).exp());
    let adopted = CATALOG
        .iter()
        .map(|(_, g)| {
            let base = match g {
                Group::Core => 0.71,
                Group::Advanced => 0.212,
                Group::Integrations => 0.146,
                Group::Reporting => 0.288,
            };
            rng.random::<f64>() < (base * 2.0 * adoption).min(0.97)
        })
        .collect();
    Traits {
        plan,
        mrr: (price * (1.0 + 0.15 * f64::from(seats - 1)) * 100.0).round() / 100.0,
        has_csm,
        country: COUNTRIES[pick(
            rng,
            &[0usize, 1, 2, 3, 4, 5],
            &[0.45, 0.15, 0.12, 0.1, 0.1, 0.08],
        )],
        industry: INDUSTRIES[rng.random_range(0..INDUSTRIES.len())],
        channel,
        seats,
        engagement,
        ttv_days,
        ticket_rate,
        adopted,
    }
}

/// The customer's multiplier on the base hazard in a given month of tenure.
fn hazard_multiplier(t: &Traits, tenure_month: u32) -> f64 {
    // A slow start shows after the first month: customers still without value by then
    // leave fast (the brief's month-6 retention by time to value: 95 / 85 / 65 / 35 %).
    let ttv_effect = if t.ttv_days < 7.0 {
        -2.2
    } else if t.ttv_days < 21.0 {
        -0.95
    } else if t.ttv_days < 45.0 {
        if tenure_month == 1 {
            -0.3
        } else {
            0.3
        }
    } else if tenure_month == 1 {
        0.3
    } else if tenure_month == 2 {
        0.6
    } else {
        1.1
    };
    // Time to value matters most early on; later the effect fades.
    let ttv_weight = if tenure_month <= 6 { 1.0 } else { 0.25 };
    let x = -0.4 * f64::from(u8::from(t.has_csm)) - 0.35 * t.engagement
        + ttv_weight * ttv_effect
        + [0.25, 0.0, -0.3][t.plan]
        + [0.0, 0.15, -0.2, -0.05][t.channel];
    x.exp() * 0.68
}

fn draw_reason(rng: &mut ChaCha8Rng, t: &Traits, tenure_month: u32) -> Reason {
    let early = tenure_month <= 4;
    let weights = [
        25.0 * if t.ttv_days > 21.0 { 1.6 } else { 0.6 } * if early { 1.5 } else { 0.6 },
        25.0 * (t.ticket_rate / 0.22).clamp(0.4, 2.5),
        20.0 * if t.plan == 0 { 1.4 } else { 0.8 },
        15.0 * if early { 0.6 } else { 1.3 },
        5.0,
    ];
    pick(
        rng,
        &[
            Reason::Onboarding,
            Reason::Support,
            Reason::Pricing,
            Reason::Features,
            Reason::Competition,
        ],
        &weights,
    )
}

/// Simulates the customer's subscriptions from `signup` until `horizon_end` (exclusive);
/// anything after that is unknown and left open.
/// [`crate::Drift`] as the simulation applies it (the plan as its index in [`PLANS`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActiveDrift {
    pub from: Day,
    pub session_minutes: f64,
    pub churn: f64,
    pub plan: Option<usize>,
}

impl ActiveDrift {
    /// Checks a drift setting.
    pub fn of(d: &crate::Drift) -> Result<ActiveDrift, crate::SimError> {
        let invalid = |message: String| crate::SimError::Invalid {
            name: "drift",
            message,
        };
        for (what, v) in [("session_minutes", d.session_minutes), ("churn", d.churn)] {
            if !(v.is_finite() && v > 0.0 && v <= 10.0) {
                return Err(invalid(format!(
                    "{what} must be a multiplier above 0 and at most 10, got {v}"
                )));
            }
        }
        let plan = match &d.plan {
            None => None,
            Some(name) => Some(PLANS.iter().position(|(p, _)| p == name).ok_or_else(|| {
                let names: Vec<&str> = PLANS.iter().map(|(p, _)| *p).collect();
                invalid(format!(
                    "unknown plan `{name}`: expected one of {}",
                    names.join(", ")
                ))
            })?),
        };
        Ok(ActiveDrift {
            from: d.from,
            session_minutes: d.session_minutes,
            churn: d.churn,
            plan,
        })
    }

    /// Whether the change applies to a customer on `plan` on `day`.
    pub fn applies(&self, day: Day, plan: usize) -> bool {
        day >= self.from && self.plan.is_none_or(|p| p == plan)
    }
}

pub fn simulate_life(
    rng: &mut ChaCha8Rng,
    t: &mut Traits,
    signup: Day,
    horizon_end: Day,
    drift: Option<ActiveDrift>,
) -> Life {
    let mut life = Life {
        signup,
        subs: Vec::new(),
        churns: Vec::new(),
        dips: Vec::new(),
        dormant: Vec::new(),
    };
    let mut period_start = signup;
    let mut row_start = signup;
    let mut tenure_month = 1u32;
    let mut month_start = signup;
    let mut dormant = false;
    loop {
        let month_end = time::add_months(month_start, 1);
        if month_start >= horizon_end {
            life.subs.push(SubRow {
                start: row_start,
                end: None,
                mrr: t.mrr,
                plan: t.plan,
                reason: None,
            });
            return life;
        }
        // Quiet spells last months: a customer falls quiet (less often when engaged or
        // looked after by a CSM) and wakes up again at a steady rate; never in the first
        // month (a new customer always looks around).
        let fall = 1.0
            / (1.0
                + (DORMANT_LOGIT + 1.1 * t.engagement + if t.has_csm { 0.3 } else { 0.0 }).exp());
        dormant = tenure_month > 1
            && rng.random::<f64>() < if dormant { 1.0 - DORMANT_WAKE } else { fall };
        if dormant {
            life.dormant.push((month_start, month_end));
        }
        let h = (base_hazard(tenure_month)
            * hazard_multiplier(t, tenure_month)
            * if dormant { DORMANT_HAZARD } else { 1.0 }
            * drift
                .filter(|d| d.applies(month_start, t.plan))
                .map_or(1.0, |d| d.churn))
        .clamp(TENURED_HAZARD_FLOOR, 0.9);
        if rng.random::<f64>() < h {
            let churn_day = month_start + rng.random_range(0..(month_end - month_start).max(1));
            let reason = draw_reason(rng, t, tenure_month);
            let decline = rng.random_range(25..75);
            if churn_day >= horizon_end {
                life.subs.push(SubRow {
                    start: row_start,
                    end: None,
                    mrr: t.mrr,
                    plan: t.plan,
                    reason: None,
                });
                // The churn lies beyond the data: its decline may still show.
                life.churns.push((churn_day, reason, decline));
                return life;
            }
            life.subs.push(SubRow {
                start: row_start,
                end: Some(churn_day),
                mrr: t.mrr,
                plan: t.plan,
                reason: Some(reason),
            });
            life.churns.push((churn_day, reason, decline));
            // Some churned customers come back: a few within the grace period (a lapse,
            // not a churn), more after months (a new active period).
            let r = rng.random::<f64>();
            let gap = if r < 0.03 {
                rng.random_range(1..7)
            } else if r < 0.10 {
                rng.random_range(45..300)
            } else {
                return life;
            };
            let back = churn_day + gap;
            if back >= horizon_end {
                return life;
            }
            if gap < 7 {
                // A lapse within the grace period: no churn, no cancellation reason.
                life.churns.pop();
                if let Some(row) = life.subs.last_mut() {
                    row.reason = None;
                }
            } else {
                period_start = back;
                tenure_month = 3; // returning customers know the product
            }
            row_start = back;
            month_start = back;
            let _ = period_start;
            continue;
        }
        // Expansion and contraction: a plan change closes one row and opens the next.
        let r = rng.random::<f64>();
        let change = if r < 0.03 {
            Some(if t.plan < 2 && rng.random::<f64>() < 0.5 {
                t.plan += 1;
                PLANS[t.plan].1[1]
            } else {
                t.mrr * 1.3
            })
        } else if r < 0.035 && t.mrr > 50.0 {
            Some(if t.plan > 0 && rng.random::<f64>() < 0.5 {
                t.plan -= 1;
                PLANS[t.plan].1[1]
            } else {
                t.mrr * 0.8
            })
        } else {
            None
        };
        if let Some(new_mrr) = change {
            let day = month_start + rng.random_range(0..(month_end - month_start).max(1));
            if day > row_start && day < horizon_end {
                life.subs.push(SubRow {
                    start: row_start,
                    end: Some(day),
                    mrr: t.mrr,
                    plan: t.plan,
                    reason: None,
                });
                row_start = day;
            }
            t.mrr = (new_mrr * 100.0).round() / 100.0;
        }
        // A temporary dip (holidays, a busy quarter) that does not end in churn.
        if rng.random::<f64>() < 0.05 {
            let start = month_start + rng.random_range(0..28);
            life.dips.push((start, start + rng.random_range(10..35)));
        }
        tenure_month += 1;
        month_start = month_end;
    }
}

/// How strongly usage is damped on `day` (1 = normal), and whether the customer is in
/// a decline before churning for `reason`.
pub fn usage_factor(life: &Life, day: Day) -> (f64, Option<Reason>) {
    let mut f = 1.0;
    let mut declining = None;
    for &(churn, reason, decline) in &life.churns {
        if day < churn && day >= churn - decline {
            let progress = f64::from(day - (churn - decline)) / f64::from(decline);
            let floor = match reason {
                Reason::Onboarding => 0.2,
                Reason::Support => 0.6,
                Reason::Pricing => 0.75,
                Reason::Features => 0.35,
                Reason::Competition => {
                    if churn - day < 12 {
                        0.15
                    } else {
                        1.0
                    }
                }
            };
            f *= 1.0 - (1.0 - floor) * progress.sqrt();
            declining = Some(reason);
        }
    }
    for &(s, e) in &life.dips {
        if day >= s && day < e {
            f *= 0.35;
        }
    }
    (f, declining)
}

/// One day's timestamp at a random working hour.
pub fn at_hour(rng: &mut ChaCha8Rng, day: Day) -> Ts {
    time::day_start(day) + rng.random_range(7 * 3600..21 * 3600)
}

/// A Poisson draw (0 for a non-positive rate).
pub fn poisson(rng: &mut ChaCha8Rng, rate: f64) -> u32 {
    if rate <= 0.0 {
        return 0;
    }
    Poisson::new(rate).expect("positive rate").sample(rng) as u32
}

/// Lognormal draw with the given median.
pub fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    LogNormal::new(median.ln(), sigma)
        .expect("valid")
        .sample(rng)
}

/// Hours to seconds.
pub fn hours(h: f64) -> Ts {
    (h * 3600.0).round() as Ts
}

/// Whether a churn's decline includes `day`, for a given reason.
pub fn in_decline(life: &Life, day: Day, reason: Reason) -> bool {
    life.churns
        .iter()
        .any(|&(c, r, d)| r == reason && day < c && day >= c - d)
}

pub const DAY: Ts = SECONDS_PER_DAY;
