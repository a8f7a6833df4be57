//! The training report: one self-contained HTML page (inline SVG, no scripts, no
//! network) a person would rather look at than read.

use crate::metrics;
use crate::train::{TrainOutcome, MIN_COHORT_CHURNERS, MIN_COHORT_ROWS};
use std::fmt::Write;

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

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn f3(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.3}"))
}

/// A square line chart of series of (x, y) in [0, 1], with an optional diagonal.
fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, &str, Curve)],
    diagonal: bool,
) -> String {
    let (w, h, m) = (320.0, 260.0, 40.0);
    let sx = |x: f64| m + x * (w - 1.5 * m);
    let sy = |y: f64| h - m - y * (h - 1.6 * m);
    let mut s = format!(
        r#"<figure><svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    );
    let _ = write!(
        s,
        r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#fafafa" stroke="#ccc"/>"##,
        sx(0.0),
        sy(1.0),
        sx(1.0) - sx(0.0),
        sy(0.0) - sy(1.0)
    );
    for t in [0.0, 0.5, 1.0] {
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" font-size="10" text-anchor="middle">{t}</text><text x="{}" y="{}" font-size="10" text-anchor="end">{t}</text>"##,
            sx(t),
            sy(0.0) + 14.0,
            sx(0.0) - 4.0,
            sy(t) + 3.0
        );
    }
    if diagonal {
        let _ = write!(
            s,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999" stroke-dasharray="4 3"/>"##,
            sx(0.0),
            sy(0.0),
            sx(1.0),
            sy(1.0)
        );
    }
    for (name, color, pts) in series {
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
            path.join(" "),
            esc(name)
        );
    }
    // A legend only when there is more than one series to tell apart.
    for (i, (name, color, _)) in series.iter().enumerate().filter(|_| series.len() > 1) {
        let y = sy(1.0) + 14.0 + 14.0 * i as f64;
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="10" height="3" fill="{color}"/><text x="{}" y="{}" font-size="10">{}</text>"#,
            sx(0.55),
            y - 4.0,
            sx(0.55) + 14.0,
            y,
            esc(name)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
        (sx(0.0) + sx(1.0)) / 2.0,
        h - 6.0,
        esc(x_label)
    );
    let _ = write!(
        s,
        r#"<text x="12" y="{}" font-size="11" text-anchor="middle" transform="rotate(-90 12 {})">{}</text>"#,
        (sy(0.0) + sy(1.0)) / 2.0,
        (sy(0.0) + sy(1.0)) / 2.0,
        esc(y_label)
    );
    let _ = write!(s, "</svg><figcaption>{}</figcaption></figure>", esc(title));
    s
}

/// Horizontal bars: (label, value, optional second value) scaled to the largest value.
/// With second values, `legend` names the two series.
fn bar_chart(
    title: &str,
    rows: &[(String, f64, Option<f64>)],
    unit: &str,
    legend: Option<[&str; 2]>,
) -> String {
    let row_h = 18.0;
    // Wide enough for the longest label at font size 11 (about 6.5 px a character).
    let longest = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let label_w = (longest as f64 * 6.5 + 12.0).max(120.0);
    let w = label_w + 330.0;
    let legend_h = if legend.is_some() { 20.0 } else { 0.0 };
    let h = 30.0 + legend_h + row_h * rows.len() as f64;
    let max = rows
        .iter()
        .map(|r| r.1.max(r.2.unwrap_or(0.0)))
        .fold(1e-12, f64::max);
    let bar = |v: f64| (w - label_w - 70.0) * v / max;
    let mut s = format!(
        r#"<figure><svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    );
    if let Some(names) = legend {
        for (k, (name, color)) in names.iter().zip(["#3b6ea8", "#e0803a"]).enumerate() {
            let x = label_w + 130.0 * k as f64;
            let _ = write!(
                s,
                r#"<rect x="{x}" y="4" width="10" height="10" fill="{color}"/><text x="{}" y="13" font-size="11">{}</text>"#,
                x + 14.0,
                esc(name)
            );
        }
    }
    for (i, (label, v, second)) in rows.iter().enumerate() {
        let y = 10.0 + legend_h + row_h * i as f64;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>"#,
            label_w - 6.0,
            y + 11.0,
            esc(label)
        );
        let thick = if second.is_some() { 7.0 } else { 13.0 };
        let _ = write!(
            s,
            r##"<rect x="{label_w}" y="{y}" width="{:.1}" height="{thick}" fill="#3b6ea8"><title>{v:.3}</title></rect>"##,
            bar(*v)
        );
        if let Some(b) = second {
            let _ = write!(
                s,
                r##"<rect x="{label_w}" y="{}" width="{:.1}" height="{thick}" fill="#e0803a"><title>{b:.3}</title></rect>"##,
                y + thick,
                bar(*b)
            );
        }
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="10">{v:.2}{unit}</text>"#,
            label_w + bar(v.max(second.unwrap_or(0.0))) + 4.0,
            y + 11.0
        );
    }
    let _ = write!(s, "</svg><figcaption>{}</figcaption></figure>", esc(title));
    s
}

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

/// Renders the report.
pub fn html(o: &TrainOutcome, ctx: &ReportContext) -> String {
    let (p, y) = &o.pooled;
    let (roc, pr, gains) = curves(p, y);
    let calib: Vec<(f64, f64)> = metrics::calibration_bins(p, y, 10)
        .into_iter()
        .map(|(a, b, _)| (a, b))
        .collect();
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>churn model {name} {version}</title><style>
body{{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1100px;color:#222}}
h1{{font-size:22px;margin-bottom:4px}} h2{{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}}
table{{border-collapse:collapse;font-size:13px;margin:8px 0}} td,th{{border:1px solid #ddd;padding:4px 8px;text-align:right}} th{{background:#f3f3f3}} td:first-child,th:first-child{{text-align:left;white-space:nowrap}}
.grid{{display:flex;flex-wrap:wrap;gap:12px}} figure{{margin:0}} figcaption{{font-size:12px;color:#555;text-align:center}}
.kpi{{display:inline-block;margin:6px 18px 6px 0}} .kpi b{{display:block;font-size:22px}} .warn{{background:#fff3cd;border:1px solid #e0c060;padding:8px 12px}} .muted{{color:#666;font-size:13px}}
</style></head><body>"#,
        name = esc(ctx.name),
        version = esc(ctx.version)
    );
    let _ = write!(
        s,
        "<h1>Churn model <code>{}</code> version <code>{}</code></h1>",
        esc(ctx.name),
        esc(ctx.version)
    );
    let _ = write!(
        s,
        r#"<p class="muted">Trained {} from {}. Chosen: <b>{}</b> by the pooled {} log loss; settings search: {}. {}</p>"#,
        esc(ctx.created),
        esc(ctx.source),
        o.chosen.as_str(),
        o.validation,
        match o.search {
            crate::train::Search::None => "none (fixed settings)",
            crate::train::Search::Quick => "quick",
            crate::train::Search::Full => "full",
        },
        if ctx.horizon_days > 0 {
            format!("Predicts churn within {} days.", ctx.horizon_days)
        } else {
            "A plain table: no time, no horizon.".to_string()
        }
    );
    let e = &o.overall;
    for (label, v) in [
        ("ROC AUC", f3(e.roc_auc)),
        ("PR AUC", f3(e.pr_auc)),
        (
            "top-10% lift",
            e.lift_top10.map_or("n/a".into(), |v| format!("{v:.2}x")),
        ),
        ("log loss", format!("{:.4}", e.log_loss)),
        ("Brier", format!("{:.4}", e.brier)),
        ("ECE", format!("{:.4}", e.ece)),
        (
            "precision / recall",
            format!("{:.2} / {:.2}", e.precision, e.recall),
        ),
    ] {
        let _ = write!(s, r#"<span class="kpi">{label}<b>{v}</b></span>"#);
    }
    let _ = write!(
        s,
        r#"<p class="muted">Over {} held-out rows ({} churned) of {} folds; threshold {:.3} chosen for F1 on calibration rows.</p>"#,
        e.rows,
        e.positives,
        o.folds.len(),
        e.threshold
    );
    if !o.suspicious.is_empty() {
        s.push_str(r#"<div class="warn"><b>Suspicious: possible leakage</b><ul>"#);
        for x in &o.suspicious {
            let _ = write!(
                s,
                "<li><b>{}</b> ROC AUC {:.3}: {}</li>",
                esc(&x.what),
                x.roc_auc,
                esc(&x.message)
            );
        }
        s.push_str("</ul></div>");
    }
    s.push_str("<h2>Curves (held-out rows)</h2><div class=\"grid\">");
    s.push_str(&line_chart(
        "ROC curve",
        "false positive rate",
        "true positive rate",
        &[("model", "#3b6ea8", roc)],
        true,
    ));
    s.push_str(&line_chart(
        "Precision-recall",
        "recall",
        "precision",
        &[("model", "#3b6ea8", pr)],
        false,
    ));
    s.push_str(&line_chart(
        "Calibration (10 bins)",
        "predicted churn",
        "observed churn",
        &[("model", "#3b6ea8", calib)],
        true,
    ));
    s.push_str(&line_chart(
        "Cumulative gains",
        "share of customers contacted",
        "share of churners reached",
        &[("model", "#3b6ea8", gains)],
        true,
    ));
    s.push_str("</div>");

    s.push_str("<h2>Model vs rules (same held-out rows)</h2><table><tr><th>ranking by</th><th>ROC AUC</th><th>PR AUC</th><th>top-10% lift</th></tr>");
    let _ = write!(
        s,
        "<tr><td>model ({})</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        o.chosen.as_str(),
        f3(e.roc_auc),
        f3(e.pr_auc),
        f3(e.lift_top10)
    );
    match (&o.rules_health, &o.rules_signals) {
        (Some(h), Some(g)) => {
            let _ = write!(s, "<tr><td>100 - health score</td><td>{}</td><td>{}</td><td>{}</td></tr>", f3(h.roc_auc), f3(h.pr_auc), f3(h.lift_top10));
            let _ = write!(s, "<tr><td>signal count</td><td>{}</td><td>{}</td><td>{}</td></tr>", f3(g.roc_auc), f3(g.pr_auc), f3(g.lift_top10));
        }
        _ => s.push_str("<tr><td colspan=4>the model's features cannot feed the rules (a plain table)</td></tr>"),
    }
    s.push_str("</table>");
    if let Some((rules, model)) = o.rules_rank_as_well() {
        let _ = write!(
            s,
            r#"<p class="warn">The rule-based health score ranks churners as well as or better than the model on these rows (ROC AUC {rules:.3} vs {model:.3}), and {} churners decided it: consider the rules, or more data.</p>"#,
            e.positives
        );
    }

    let _ = write!(
        s,
        "<h2>{} per fold</h2>",
        if ctx.horizon_days > 0 {
            "Backtest"
        } else {
            "Cross-validation"
        }
    );
    s.push_str("<table><tr><th>test</th><th>fit rows</th><th>calibration rows</th><th>test rows</th><th>model</th><th>settings chosen on the calibration date</th><th>calibration</th><th>ROC AUC</th><th>PR AUC</th><th>log loss</th><th>Brier</th><th>ECE</th><th>lift</th><th>rules ROC AUC</th></tr>");
    for f in &o.folds {
        for c in &f.candidates {
            let ev = &c.evaluation;
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.name), f.fit_rows, f.calibration_rows, f.test_rows, c.kind.as_str(),
                esc(&c.settings),
                c.calibration,
                f3(ev.roc_auc), f3(ev.pr_auc), ev.log_loss, ev.brier, ev.ece, f3(ev.lift_top10),
                f3(f.rules_health.and_then(|h| h.roc_auc))
            );
        }
    }
    s.push_str("</table>");
    s.push_str("<table><tr><th>candidate</th><th>pooled log loss</th><th>pooled PR AUC</th></tr>");
    for c in &o.candidates {
        let _ = write!(
            s,
            "<tr><td>{}{}</td><td>{:.4}</td><td>{:.3}</td></tr>",
            c.model.as_str(),
            if c.model == o.chosen { " (chosen)" } else { "" },
            c.pooled_log_loss,
            c.pooled_pr_auc
        );
    }
    s.push_str("</table>");

    if !o.by_cohort.is_empty() {
        let _ = write!(
            s,
            "<h2>Predicted vs actual churn by signup cohort</h2><p class=\"muted\">Predicted and actual churn within the horizon, in percent, over held-out rows. Signup months with fewer than {MIN_COHORT_ROWS} rows or {MIN_COHORT_CHURNERS} churners are pooled with their neighbours.</p>"
        );
        let rows: Vec<(String, f64, Option<f64>)> = o
            .by_cohort
            .iter()
            .rev()
            .take(24)
            .map(|c| {
                (
                    format!("{} ({} rows)", c.cohort, c.rows),
                    c.predicted_churn_pct,
                    Some(c.actual_churn_pct),
                )
            })
            .collect();
        s.push_str(&bar_chart(
            "Churn by signup cohort (latest 24)",
            &rows,
            "%",
            Some(["predicted", "actual"]),
        ));
        s.push_str("<table><tr><th>signup cohort</th><th>rows</th><th>predicted %</th><th>actual %</th><th>ROC AUC</th><th>PR AUC</th><th>Brier</th><th>log loss</th></tr>");
        for c in o.by_cohort.iter().rev() {
            let m = &c.metrics;
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td></tr>",
                esc(&c.cohort), c.rows, c.predicted_churn_pct, c.actual_churn_pct, f3(m.roc_auc), f3(m.pr_auc), m.brier, m.log_loss
            );
        }
        s.push_str("</table>");
    }
    s.push_str("<h2>Feature importance</h2><p class=\"muted\">Mean absolute contribution to the log-odds over the final model's training rows.</p>");
    let imp: Vec<(String, f64, Option<f64>)> = o
        .importance
        .iter()
        .take(20)
        .map(|(n, v)| (n.clone(), *v, None))
        .collect();
    s.push_str(&bar_chart("Top 20 features", &imp, "", None));
    let _ = write!(
        s,
        "<h2>Data</h2><table><tr><td>source</td><td>{}</td></tr><tr><td>labelled examples</td><td>{}</td></tr><tr><td>churned within the horizon</td><td>{} ({:.1} %)</td></tr><tr><td>features</td><td>{}</td></tr><tr><td>final model fitted on / calibrated on</td><td>{} / {} rows</td></tr></table>",
        esc(ctx.source), ctx.rows, ctx.positives, 100.0 * ctx.positives as f64 / ctx.rows.max(1) as f64, ctx.features, o.final_fit_rows, o.final_calibration_rows
    );
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_labels_get_the_room_they_need_and_two_series_a_legend() {
        let long = "events_feature_use_pct_change_28d".to_string();
        let svg = bar_chart(
            "t",
            &[
                (long.clone(), 1.0, Some(2.0)),
                ("mrr".into(), 0.5, Some(0.4)),
            ],
            "%",
            Some(["predicted", "actual"]),
        );
        // Labels end 6 px left of where the bars start, which leaves room for the
        // longest one at about 6.5 px a character.
        let bars_at: f64 = svg
            .split(r#"<rect x=""#)
            .filter_map(|r| r.split('"').next()?.parse().ok())
            .filter(|&x: &f64| x > 0.0)
            .fold(f64::MAX, f64::min);
        assert!(
            bars_at - 6.0 >= long.len() as f64 * 6.5,
            "bars start at {bars_at}"
        );
        assert!(svg.contains(">predicted</text>") && svg.contains(">actual</text>"));
        let single = bar_chart("t", &[("mrr".into(), 0.5, None)], "", None);
        assert!(!single.contains("predicted"));
    }
}
