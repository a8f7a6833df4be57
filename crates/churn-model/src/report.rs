//! The training report: one self-contained HTML page (inline SVG, no scripts, no
//! network) a person would rather look at than read.

use crate::metrics;
use crate::survival_backtest::{GroupCurve, SurvivalReport, TAU_MONTHS};
use crate::train::{Search, TrainOutcome, MIN_COHORT_CHURNERS, MIN_COHORT_ROWS};
use churn_report::format::{grouped, money, opt, percent};
use churn_report::scale::Axis;
use churn_report::{cells, html, Bars, Histogram, LineChart, Markup, Table, Unit};

/// Facts about the data and run shown at the top of the report.
pub struct ReportContext<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub source: &'a str,
    pub rows: usize,
    pub positives: usize,
    pub features: usize,
    pub horizon_days: i32,
    pub created: &'a str,
}

/// Points of a curve in the unit square.
type Curve = Vec<(f64, f64)>;

fn downsample(points: Curve) -> Curve {
    let step = (points.len() / 300).max(1);
    let last = points.last().copied();
    let mut out: Vec<(f64, f64)> = points.into_iter().step_by(step).collect();
    if let Some(l) = last {
        out.push(l);
    }
    out
}

/// ROC, precision-recall and cumulative-gains points of scores against labels.
pub fn curves(p: &[f64], y: &[u8]) -> (Curve, Curve, Curve) {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let pos = y.iter().filter(|&&v| v == 1).count().max(1) as f64;
    let neg = (y.len() as f64 - pos).max(1.0);
    let (mut tp, mut fp) = (0.0, 0.0);
    let (mut roc, mut pr, mut gains) = (vec![(0.0, 0.0)], Vec::new(), vec![(0.0, 0.0)]);
    for (k, &i) in order.iter().enumerate() {
        if y[i] == 1 {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        roc.push((fp / neg, tp / pos));
        if tp > 0.0 {
            pr.push((tp / pos, tp / (k as f64 + 1.0)));
        }
        gains.push(((k as f64 + 1.0) / y.len() as f64, tp / pos));
    }
    (downsample(roc), downsample(pr), downsample(gains))
}

/// The share (percent) of churners' and of non-churners' probabilities in each bin,
/// over bins with round edges up to the 99th percentile (the last bin takes the rest).
fn score_distribution(p: &[f64], y: &[u8]) -> (Vec<f64>, [Vec<f64>; 2]) {
    let mut sorted: Vec<f64> = p.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let p99 = sorted
        .get((sorted.len() as f64 * 0.99) as usize)
        .or(sorted.last())
        .copied()
        .unwrap_or(1.0);
    let edges = Axis::from_zero(0.0, p99.max(1e-3), 20).ticks();
    let bins = edges.len() - 1;
    let mut counts = [vec![0.0; bins], vec![0.0; bins]];
    for (&p, &label) in p.iter().zip(y) {
        let bin = edges[1..].iter().position(|&e| p < e).unwrap_or(bins - 1);
        counts[usize::from(label == 1)][bin] += 1.0;
    }
    for c in &mut counts {
        let total: f64 = c.iter().sum::<f64>().max(1.0);
        c.iter_mut().for_each(|v| *v *= 100.0 / total);
    }
    (edges, counts)
}

fn f3(v: Option<f64>) -> String {
    opt(v, 3)
}

fn headline(o: &TrainOutcome, ctx: &ReportContext) -> Markup {
    let e = &o.overall;
    let search = match o.search {
        Search::None => "none (fixed settings)",
        Search::Quick => "quick",
        Search::Full => "full",
    };
    let horizon = if ctx.horizon_days > 0 {
        format!("Predicts churn within {} days.", ctx.horizon_days)
    } else {
        "A plain table: no time, no horizon.".to_string()
    };
    html! {
        p class="sub" {
            "Trained " (ctx.created) " from " (ctx.source) ". Chosen: " b { (o.chosen.as_str()) }
            " by the pooled " (o.validation) " log loss; settings search: " (search) ". " (horizon)
        }
        (churn_report::tiles([
            ("ROC AUC", f3(e.roc_auc)),
            ("PR AUC", f3(e.pr_auc)),
            ("top-10% lift", e.lift_top10.map_or("n/a".into(), |v| format!("{v:.2}x"))),
            ("log loss", format!("{:.4}", e.log_loss)),
            ("Brier", format!("{:.4}", e.brier)),
            ("ECE", format!("{:.4}", e.ece)),
            ("precision / recall", format!("{:.2} / {:.2}", e.precision, e.recall)),
        ]))
        p class="sub" {
            "Over " (grouped(e.rows as f64, 0)) " held-out rows (" (grouped(e.positives as f64, 0))
            " churned) of " (o.folds.len()) " folds; threshold " (format!("{:.3}", e.threshold))
            " chosen for F1 on calibration rows."
        }
        @if !o.suspicious.is_empty() {
            div class="warn" {
                b { "Suspicious: possible leakage" }
                ul { @for x in &o.suspicious { li { b { (x.what) } " ROC AUC " (format!("{:.3}", x.roc_auc)) ": " (x.message) } } }
            }
        }
    }
}

fn curves_section(o: &TrainOutcome) -> Markup {
    let (p, y) = &o.pooled;
    let (roc, pr, gains) = curves(p, y);
    let calibration = metrics::calibration_bins(p, y, 10)
        .into_iter()
        .map(|(predicted, observed, _)| (predicted, observed));
    let (edges, [stayed, churned]) = score_distribution(p, y);
    html! {
        h2 { "Curves (held-out rows)" }
        div class="grid" {
            (LineChart::new("ROC curve").unit_square().diagonal()
                .x("false positive rate", Unit::Number).y("true positive rate", Unit::Number).points("model", roc))
            (LineChart::new("Precision-recall").unit_square()
                .x("recall", Unit::Number).y("precision", Unit::Number).points("model", pr))
            (LineChart::new("Calibration (10 bins)").unit_square().diagonal()
                .x("predicted churn", Unit::Number).y("observed churn", Unit::Number).points("model", calibration))
            (LineChart::new("Cumulative gains").unit_square().diagonal()
                .x("share of customers contacted", Unit::Number).y("share of churners reached", Unit::Number).points("model", gains))
        }
        (Histogram::new("Predicted churn probability of customers who stayed and who churned", edges)
            .x("predicted probability of churn", Unit::Number)
            .y("% of the group", Unit::Percent)
            .series("stayed", stayed)
            .series("churned", churned))
    }
}

fn rules_section(o: &TrainOutcome) -> Markup {
    let e = &o.overall;
    let mut table = Table::new(["ranking by", "ROC AUC", "PR AUC", "top-10% lift"]).row(cells![
        format!("model ({})", o.chosen.as_str()),
        f3(e.roc_auc),
        f3(e.pr_auc),
        f3(e.lift_top10)
    ]);
    if let (Some(h), Some(g)) = (&o.rules_health, &o.rules_signals) {
        table = table
            .row(cells![
                "100 - health score",
                f3(h.roc_auc),
                f3(h.pr_auc),
                f3(h.lift_top10)
            ])
            .row(cells![
                "signal count",
                f3(g.roc_auc),
                f3(g.pr_auc),
                f3(g.lift_top10)
            ]);
    }
    html! {
        h2 { "Model vs rules (same held-out rows)" }
        (table)
        @if o.rules_health.is_none() {
            p class="sub" { "The model's features cannot feed the rules (a plain table)." }
        }
        @if let Some((rules, model)) = o.rules_rank_as_well() {
            p class="warn" {
                "The rule-based health score ranks churners as well as or better than the model on these rows (ROC AUC "
                (format!("{rules:.3} vs {model:.3}")) "), and " (e.positives)
                " churners decided it: consider the rules, or more data."
            }
        }
    }
}

fn folds_section(o: &TrainOutcome, ctx: &ReportContext) -> Markup {
    let folds = Table::new([
        "test",
        "fit rows",
        "calibration rows",
        "test rows",
        "model",
        "settings chosen on the calibration date",
        "calibration",
        "ROC AUC",
        "PR AUC",
        "log loss",
        "Brier",
        "ECE",
        "lift",
        "rules ROC AUC",
    ])
    .rows(o.folds.iter().flat_map(|f| {
        f.candidates.iter().map(move |c| {
            let ev = &c.evaluation;
            cells![
                f.name,
                grouped(f.fit_rows as f64, 0),
                grouped(f.calibration_rows as f64, 0),
                grouped(f.test_rows as f64, 0),
                c.kind.as_str(),
                c.settings,
                c.calibration,
                f3(ev.roc_auc),
                f3(ev.pr_auc),
                format!("{:.4}", ev.log_loss),
                format!("{:.4}", ev.brier),
                format!("{:.4}", ev.ece),
                f3(ev.lift_top10),
                f3(f.rules_health.and_then(|h| h.roc_auc))
            ]
        })
    }));
    let candidates = Table::new(["candidate", "pooled log loss", "pooled PR AUC"]).rows(
        o.candidates.iter().map(|c| {
            let chosen = if c.model == o.chosen { " (chosen)" } else { "" };
            cells![
                format!("{}{chosen}", c.model.as_str()),
                format!("{:.4}", c.pooled_log_loss),
                format!("{:.3}", c.pooled_pr_auc)
            ]
        }),
    );
    html! {
        h2 { @if ctx.horizon_days > 0 { "Backtest per fold" } @else { "Cross-validation per fold" } }
        (folds)
        (candidates)
    }
}

/// Predicted against actual churn per signup cohort, a row per cohort in the given
/// order; `actual` names the second series.
pub fn cohort_bars<'a>(
    title: &str,
    actual: &str,
    cohorts: impl Iterator<Item = &'a crate::train::CohortRow>,
) -> Bars {
    cohorts.fold(
        Bars::new(title)
            .values("churn within the horizon", Unit::Percent, 1)
            .series_names(&["predicted", actual]),
        |bars, c| {
            bars.row(
                format!("{} ({} rows)", c.cohort, grouped(c.rows as f64, 0)),
                vec![c.predicted_churn_pct, c.actual_churn_pct],
            )
        },
    )
}

fn cohort_section(o: &TrainOutcome) -> Markup {
    if o.by_cohort.is_empty() {
        return html! {};
    }
    let chart = cohort_bars(
        "Churn by signup cohort (latest 24)",
        "actual",
        o.by_cohort.iter().rev().take(24),
    );
    let table = Table::new([
        "signup cohort",
        "rows",
        "predicted",
        "actual",
        "ROC AUC",
        "PR AUC",
        "Brier",
        "log loss",
    ])
    .rows(o.by_cohort.iter().rev().map(|c| {
        let m = &c.metrics;
        cells![
            c.cohort,
            grouped(c.rows as f64, 0),
            percent(c.predicted_churn_pct, 1),
            percent(c.actual_churn_pct, 1),
            f3(m.roc_auc),
            f3(m.pr_auc),
            format!("{:.4}", m.brier),
            format!("{:.4}", m.log_loss)
        ]
    }));
    html! {
        h2 { "Predicted vs actual churn by signup cohort" }
        p class="sub" {
            "Predicted and actual churn within the horizon over held-out rows. Signup months with fewer than "
            (MIN_COHORT_ROWS) " rows or " (MIN_COHORT_CHURNERS) " churners are pooled with their neighbours."
        }
        (chart)
        (table)
    }
}

fn importance_section(o: &TrainOutcome) -> Markup {
    let chart = o.importance.iter().take(20).fold(
        Bars::new("Top 20 features").values("mean |contribution| to the log-odds", Unit::Number, 3),
        |bars, (name, v)| bars.row(name.clone(), vec![*v]),
    );
    html! {
        h2 { "Feature importance" }
        p class="sub" { "Mean absolute contribution to the log-odds over the final model's training rows." }
        (chart)
    }
}

fn data_section(o: &TrainOutcome, ctx: &ReportContext) -> Markup {
    let share = 100.0 * ctx.positives as f64 / ctx.rows.max(1) as f64;
    let table = Table::new(["", ""])
        .row(cells!["source", ctx.source])
        .row(cells!["labelled examples", grouped(ctx.rows as f64, 0)])
        .row(cells![
            "churned within the horizon",
            format!(
                "{} ({})",
                grouped(ctx.positives as f64, 0),
                percent(share, 1)
            )
        ])
        .row(cells!["features", ctx.features])
        .row(cells![
            "final model fitted on / calibrated on",
            format!(
                "{} / {} rows",
                grouped(o.final_fit_rows as f64, 0),
                grouped(o.final_calibration_rows as f64, 0)
            )
        ]);
    html! { h2 { "Data" } (table) }
}

/// Mean predicted and Kaplan-Meier survival per group, one chart.
fn group_curves(title: &str, groups: &[GroupCurve]) -> LineChart {
    let months: Vec<String> = (1..=TAU_MONTHS).map(|k| k.to_string()).collect();
    groups.iter().fold(
        LineChart::new(title)
            .categories(months, "months after the date")
            .y("share still a customer", Unit::Number)
            .width(540.0),
        |chart, g| {
            chart
                .series(
                    format!("{} predicted", g.group),
                    g.predicted.iter().map(|&v| Some(v)),
                )
                .series(
                    format!("{} realised ({} rows)", g.group, g.rows),
                    g.realised.iter().map(|&v| Some(v)),
                )
        },
    )
}

fn survival_section(r: &SurvivalReport) -> Markup {
    let calibration = r.calibration.iter().map(|c| {
        LineChart::new(format!("S({}) by risk decile", c.months))
            .unit_square()
            .diagonal()
            .x("predicted", Unit::Number)
            .y("Kaplan-Meier", Unit::Number)
            .points(
                "deciles",
                c.deciles.iter().map(|d| (d.predicted, d.realised)),
            )
    });
    let candidates = Table::new([
        "L2 strength",
        "features' effect",
        "concordance (12 months)",
        "integrated Brier 1-12",
        "",
    ])
    .rows(r.candidates.iter().map(|c| {
        cells![
            format!("{:e}", c.lambda),
            if c.decaying {
                "changes with months ahead"
            } else {
                "constant"
            },
            opt(c.concordance, 3),
            format!("{:.4}", c.integrated_brier),
            if (c.lambda, c.decaying) == (r.lambda, r.decaying) {
                "chosen"
            } else {
                ""
            }
        ]
    }));
    let calibration_table = Table::new([
        "horizon",
        "predicted S",
        "Kaplan-Meier S",
        "mean |error| per decile",
    ])
    .rows(r.calibration.iter().map(|c| {
        cells![
            format!("{} months", c.months),
            format!("{:.3}", c.predicted),
            format!("{:.3}", c.realised),
            format!("{:.3}", c.mean_abs_error)
        ]
    }));
    html! {
        h2 { "Time to churn (survival model)" }
        p class="sub" {
            "Backtest: fitted on the examples before each test date (" (r.test_dates.join(", "))
            ") with their futures censored at that date, judged on the " (grouped(r.rows as f64, 0))
            " customers active on the test dates (" (grouped(r.churns as f64, 0)) " churned within 12 months; later months censored where the data ends). "
            "The survival model gives each customer's chance of still being a customer month by month; lifetime and CLV follow from it. "
            "Past month " (r.follow_up_months) ", the last its data observed, every customer counts as an average survivor: the data never saw how much today's features tell beyond it."
        }
        (churn_report::tiles([
            ("concordance (Harrell, 12 months)", opt(r.concordance, 3)),
            ("integrated Brier score, months 1-12", format!("{:.4}", r.integrated_brier)),
            ("same, one Kaplan-Meier curve for all", format!("{:.4}", r.reference_integrated_brier)),
        ]))
        (candidates)
        h3 { "Calibration against Kaplan-Meier" }
        div class="grid" { @for chart in calibration { (chart) } }
        (calibration_table)
        h3 { "Survival by risk band and plan" }
        p class="sub" { "Risk band of 1 - S(1) with the classifier's cut-offs; predicted curves are the band's mean, realised ones its Kaplan-Meier." }
        div class="grid" {
            (group_curves("Survival by risk band", &r.by_band))
            @if !r.by_plan.is_empty() { (group_curves("Survival by plan", &r.by_plan)) }
        }
        @for v in r.value_12m.iter().chain(&r.value_24m) {
            h3 { "Revenue of the first " (v.months) " months: predicted vs paid" }
            p class="sub" {
                (grouped(v.rows as f64, 0)) " test customers seen through " (v.months) " months (or churned before): MRR at the date times the months the curve expects them to be billed, against the months they were."
            }
            (Table::new(["customers by predicted value", "predicted", "realised", "realised / predicted"])
                .rows(v.quintiles.iter().enumerate().map(|(q, (p, a))| cells![
                    format!("quintile {}", q + 1), money(*p), money(*a), format!("{:.3}", a / p.max(1e-9))
                ]))
                .row(cells!["all", money(v.predicted), money(v.realised), format!("{:.3}", v.realised / v.predicted.max(1e-9))]))
        }
        @if let Some(a) = &r.agreement {
            h3 { "Agreement with the 30-day classifier" }
            p class="sub" {
                "On the latest date's " (grouped(a.rows as f64, 0)) " customers: the risk bands use the classifier's probability; 1 - S(1) is the survival model's chance of churning in the first month."
            }
            (Table::new(["classifier mean", "1 - S(1) mean", "correlation", "same risk band"])
                .row(cells![percent(100.0 * a.classifier_mean, 2), percent(100.0 * a.survival_mean, 2), format!("{:.3}", a.correlation), percent(100.0 * a.same_band, 1)]))
        }
    }
}

/// Renders the report (with the survival model's backtest when there is one).
pub fn html(o: &TrainOutcome, survival: Option<&SurvivalReport>, ctx: &ReportContext) -> String {
    churn_report::page(
        &format!("Churn model {} version {}", ctx.name, ctx.version),
        html! {},
        html! {
            (headline(o, ctx))
            (curves_section(o))
            (rules_section(o))
            (folds_section(o, ctx))
            (cohort_section(o))
            @if let Some(r) = survival { (survival_section(r)) }
            (importance_section(o))
            (data_section(o, ctx))
        },
    )
}
