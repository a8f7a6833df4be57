//! The report kit: the page shell and stylesheet, headline figures, tables, number
//! formatting and the charts every churn HTML page is built from.
//!
//! Pages are single self-contained files: inline CSS and SVG, no scripts, no network.
//! HTML is written with [maud], which escapes every spliced value by construction and
//! checks the markup at compile time; charts are this crate's own ([chart] says why).

pub mod audit;
pub mod chart;
pub mod format;
pub mod page;
pub mod palette;
pub mod scale;

pub use audit::audit;
pub use chart::{Bars, HeatMap, Histogram, LineChart, StackedBars, Waterfall};
pub use format::Unit;
pub use maud;
pub use maud::{html, Markup, PreEscaped, Render};
pub use page::{page, tiles, Table};
