//! The page shell every report shares: one self-contained HTML file (inline CSS and
//! SVG, no scripts, no network) that reads well on screen and prints well.

use maud::{html, Markup, Render, DOCTYPE};

/// The stylesheet of every page, screen and print.
const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1120px;padding:0 16px;color:#222;line-height:1.4}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px} h3{font-size:14px;margin:18px 0 6px}
.sub{color:#555;font-size:13px;margin:4px 0 12px}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.tile{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:140px}
.tile b{display:block;font-size:20px;font-variant-numeric:tabular-nums} .tile span{color:#555;font-size:12px}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0;font-variant-numeric:tabular-nums}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:right} th{background:#f3f3f3;font-weight:600}
td:first-child,th:first-child{text-align:left;white-space:nowrap} td.text{text-align:left}
.wide{overflow-x:auto}
.grid{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:10px 0} figcaption{font-size:12px;color:#555;max-width:660px}
svg.chart{max-width:100%;height:auto;font-family:inherit}
.warn{background:#fff3cd;border:1px solid #e0c060;padding:8px 12px;border-radius:4px}
.good{color:#007a5a;font-weight:600} .watch{color:#8a6d00;font-weight:600} .bad{color:#b3470a;font-weight:600}
footer{color:#555;font-size:12px;margin-top:32px}
@media print{
 body{margin:0;max-width:none;font-size:11px}
 h2,h3{break-after:avoid} figure,.tiles,.warn,tr{break-inside:avoid}
 .wide{overflow:visible} table{font-size:10px} td.text{min-width:16ch}
 a{color:inherit;text-decoration:none}
}
"#;

/// A whole page: `title` in the tab and as the heading, `subtitle` under it.
pub fn page(title: &str, subtitle: Markup, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                main {
                    h1 { (title) }
                    p class="sub" { (subtitle) }
                    (body)
                }
            }
        }
    }
    .into_string()
}

/// Headline figures: the value large, what it is under it.
pub fn tiles<'a>(figures: impl IntoIterator<Item = (&'a str, String)>) -> Markup {
    html! {
        div class="tiles" {
            @for (label, value) in figures {
                div class="tile" { b { (value) } span { (label) } }
            }
        }
    }
}

/// A table: a header row and rows of cells (text is escaped, `Markup` is kept).
pub struct Table {
    head: Vec<String>,
    rows: Vec<Vec<Markup>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new<S: AsRef<str>>(head: impl IntoIterator<Item = S>) -> Self {
        Table {
            head: head.into_iter().map(|h| h.as_ref().to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; `cells!` builds one from values of different types.
    pub fn row(mut self, cells: Vec<Markup>) -> Self {
        self.rows.push(cells);
        self
    }

    /// Adds rows.
    pub fn rows(mut self, rows: impl IntoIterator<Item = Vec<Markup>>) -> Self {
        self.rows.extend(rows);
        self
    }
}

impl Render for Table {
    fn render(&self) -> Markup {
        html! {
            div class="wide" {
                table {
                    // A header in `thead` repeats on every printed page of a long table.
                    thead { tr { @for h in &self.head { th { (h) } } } }
                    tbody {
                        @for row in &self.rows {
                            tr {
                                @for cell in row {
                                    @if looks_numeric(&cell.0) { td { (cell) } } @else { td class="text" { (cell) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Whether a cell holds a figure (right-aligned so digits line up) rather than words.
fn looks_numeric(cell: &str) -> bool {
    let text = cell.trim();
    text == "n/a"
        || (text.contains(|c: char| c.is_ascii_digit())
            && !text.contains(|c: char| c.is_alphabetic() || c == '<'))
}

/// A table row from values of any `Render` type: `cells![name, count, markup]`.
#[macro_export]
macro_rules! cells {
    ($($cell:expr),* $(,)?) => {
        vec![$($crate::Render::render(&$cell)),*]
    };
}

#[cfg(test)]
mod tests {
    use super::looks_numeric;

    #[test]
    fn figures_align_right_and_words_left() {
        for figure in ["1,704", "-$2,594", "6.5 %", "1,704 (6.5 %)", "n/a", "0.919"] {
            assert!(looks_numeric(figure), "{figure}");
        }
        for words in [
            "219 trees, depth 4",
            "2024-05 (246 rows)",
            "logistic",
            "<b>x</b>",
        ] {
            assert!(!looks_numeric(words), "{words}");
        }
    }
}
