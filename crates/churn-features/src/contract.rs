//! The input data contract: which tables a data directory holds, their columns, types
//! and meaning. The README's data contract section is generated from the same text
//! (`churn-train contract`), so the documentation cannot drift from the readers.

use arrow_schema::{DataType, Field, Schema, TimeUnit};
use std::sync::Arc;

/// The time zone of every timestamp the writers produce.
pub const TIMEZONE: &str = "UTC";

/// Timestamps are written in microseconds: Parquet has no seconds unit, and a TIMESTAMP
/// logical type (UTC-adjusted) is what pyarrow, pandas, DuckDB and Spark read as time.
pub const MICROS_PER_SECOND: i64 = 1_000_000;

/// The logical type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Free text or a category.
    Text,
    /// An ISO `YYYY-MM-DD` date.
    Date,
    /// An RFC 3339 timestamp (UTC when no offset is given).
    Timestamp,
    /// A number.
    Number,
}

impl ColumnType {
    /// How the contract names the type.
    pub fn describe(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Date => "date (YYYY-MM-DD)",
            ColumnType::Timestamp => "timestamp (RFC 3339)",
            ColumnType::Number => "number",
        }
    }

    /// The Arrow type the writers use for this column.
    pub fn arrow_type(self) -> DataType {
        match self {
            ColumnType::Text => DataType::Utf8,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(TIMEZONE.into()))
            }
            ColumnType::Number => DataType::Float64,
        }
    }
}

/// Whether a column must be present and filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The column must exist and every value must be filled.
    Required,
    /// The column must exist; values may be empty.
    Nullable,
    /// The column may be absent (then every value is missing).
    Optional,
}

/// One column of a table.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub ty: ColumnType,
    pub presence: Presence,
    pub description: &'static str,
}

/// One table of the contract.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    pub name: &'static str,
    /// A data directory without this table is refused.
    pub required: bool,
    /// Extra columns are read as attributes (only `customers`).
    pub open: bool,
    pub description: &'static str,
    pub columns: &'static [ColumnSpec],
}

impl TableSpec {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The Arrow schema the writers use (every listed column, in order).
    pub fn arrow_schema(&self) -> Arc<Schema> {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.ty.arrow_type(), c.presence != Presence::Required))
                .collect::<Vec<_>>(),
        ))
    }
}

const fn col(
    name: &'static str,
    ty: ColumnType,
    presence: Presence,
    description: &'static str,
) -> ColumnSpec {
    ColumnSpec {
        name,
        ty,
        presence,
        description,
    }
}

use ColumnType::*;
use Presence::*;

/// Subscription periods; the only required table. It defines the customers.
pub const SUBSCRIPTIONS: TableSpec = TableSpec {
    name: "subscriptions",
    required: true,
    open: false,
    description: "One row per subscription period. A customer's active periods are its subscriptions merged, joining gaps of at most the grace period (default 7 days); a churn is the end of an active period.",
    columns: &[
        col("customer_id", Text, Required, "the customer"),
        col("start_date", Date, Required, "first day of the subscription"),
        col("end_date", Date, Nullable, "first day no longer covered; empty while ongoing; not before start_date"),
        col("mrr", Number, Required, "monthly recurring revenue in the period, >= 0"),
        col("plan", Text, Required, "plan name"),
        col("cancel_reason", Text, Optional, "why the customer cancelled, on a row whose end is a churn (billing systems' cancellation reason or exit survey); only the KPI report's root-cause shares read it, never the features"),
    ],
};

/// Static customer attributes.
pub const CUSTOMERS: TableSpec = TableSpec {
    name: "customers",
    required: false,
    open: true,
    description: "One row per customer with static attributes. Every column besides customer_id is an attribute: numeric when all its values are numbers (true/false count as 1/0), otherwise categorical.",
    columns: &[col("customer_id", Text, Required, "the customer")],
};

/// Product usage events; the large table.
pub const EVENTS: TableSpec = TableSpec {
    name: "events",
    required: false,
    open: false,
    description: "Product usage, one row per event, in any order. `login` is a sign-in, `session` a working session whose value is its length in minutes, `feature_use` the use of the product feature named in `feature`; any other event type is counted generically.",
    columns: &[
        col("customer_id", Text, Required, "the customer"),
        col("timestamp", Timestamp, Required, "when it happened"),
        col("event_type", Text, Required, "login, session, feature_use or any other name"),
        col("value", Number, Optional, "a number that goes with the event (session minutes)"),
        col("feature", Text, Optional, "product feature name, for feature_use"),
    ],
};

/// Support tickets.
pub const TICKETS: TableSpec = TableSpec {
    name: "tickets",
    required: false,
    open: false,
    description: "Support tickets, one row each.",
    columns: &[
        col("customer_id", Text, Required, "the customer"),
        col(
            "opened_at",
            Timestamp,
            Required,
            "when the ticket was opened",
        ),
        col(
            "closed_at",
            Timestamp,
            Optional,
            "when it was closed; empty while open; not before opened_at",
        ),
        col(
            "first_response_at",
            Timestamp,
            Optional,
            "first answer from support; not before opened_at",
        ),
        col("priority", Text, Optional, "e.g. low, normal, high, urgent"),
        col(
            "satisfaction",
            Number,
            Optional,
            "rating 1-5 given at closing",
        ),
    ],
};

/// Invoices and their outcome.
pub const PAYMENTS: TableSpec = TableSpec {
    name: "payments",
    required: false,
    open: false,
    description: "Invoices, one row each.",
    columns: &[
        col("customer_id", Text, Required, "the customer"),
        col("due_date", Date, Required, "when payment was due"),
        col(
            "paid_at",
            Timestamp,
            Optional,
            "when it was paid; empty if unpaid",
        ),
        col("amount", Number, Optional, "invoice amount"),
        col("status", Text, Required, "paid, late, failed or refunded"),
    ],
};

/// Survey answers.
pub const SURVEYS: TableSpec = TableSpec {
    name: "surveys",
    required: false,
    open: false,
    description: "Survey answers, one row each.",
    columns: &[
        col("customer_id", Text, Required, "the customer"),
        col(
            "answered_at",
            Timestamp,
            Required,
            "when the survey was answered",
        ),
        col("nps", Number, Optional, "likelihood to recommend, 0-10"),
        col("csat", Number, Optional, "satisfaction, 1-10"),
    ],
};

/// The product feature catalog (an extension of the six tables).
pub const CATALOG: TableSpec = TableSpec {
    name: "catalog",
    required: false,
    open: false,
    description: "The product's feature catalog with each feature's group (core, advanced, ...). Without it the catalog is every feature seen in events before the as-of time, with no groups.",
    columns: &[
        col("feature", Text, Required, "feature name as used in events.feature"),
        col("group", Text, Required, "feature group"),
    ],
};

/// Every table of the contract, in documentation order.
pub const TABLES: [&TableSpec; 7] = [
    &SUBSCRIPTIONS,
    &CUSTOMERS,
    &EVENTS,
    &TICKETS,
    &PAYMENTS,
    &SURVEYS,
    &CATALOG,
];

/// The contract as Markdown, for the README and `churn-train contract`.
pub fn markdown() -> String {
    let mut out = String::new();
    for t in TABLES {
        let req = if t.required { "required" } else { "optional" };
        out.push_str(&format!(
            "### `{}` ({req})\n\n{}\n\n",
            t.name, t.description
        ));
        out.push_str("| column | type | presence | meaning |\n|---|---|---|---|\n");
        for c in t.columns {
            let presence = match c.presence {
                Required => "required",
                Nullable => "required, may be empty",
                Optional => "optional",
            };
            out.push_str(&format!(
                "| `{}` | {} | {presence} | {} |\n",
                c.name,
                c.ty.describe(),
                c.description
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_documented_contract_is_the_one_the_readers_use() {
        let doc = include_str!("../../../docs/data-contract.md");
        assert!(
            doc.contains(&super::markdown()),
            "docs/data-contract.md is stale: regenerate its tables with `churn-train contract`"
        );
    }
}
