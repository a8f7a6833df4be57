//! The simulated product's feature catalog.

/// Feature groups named by the brief.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Core,
    Advanced,
    Integrations,
    Reporting,
}

impl Group {
    /// The group's name in the `catalog` table.
    pub fn name(self) -> &'static str {
        match self {
            Group::Core => "core",
            Group::Advanced => "advanced",
            Group::Integrations => "integrations",
            Group::Reporting => "reporting",
        }
    }
}

/// Every feature of the simulated product with its group. The mix (8 core, 4 advanced,
/// 3 integrations, 5 reporting) makes the brief's per-group adoption (68 / 23 / 15 / 31 %)
/// add up to its 42 % overall.
pub const CATALOG: [(&str, Group); 20] = [
    ("dashboard", Group::Core),
    ("projects", Group::Core),
    ("tasks", Group::Core),
    ("comments", Group::Core),
    ("search", Group::Core),
    ("calendar", Group::Core),
    ("files", Group::Core),
    ("notifications", Group::Core),
    ("automation", Group::Advanced),
    ("custom_fields", Group::Advanced),
    ("workflows", Group::Advanced),
    ("permissions", Group::Advanced),
    ("slack", Group::Integrations),
    ("salesforce", Group::Integrations),
    ("github", Group::Integrations),
    ("reports", Group::Reporting),
    ("exports", Group::Reporting),
    ("scheduled_reports", Group::Reporting),
    ("analytics", Group::Reporting),
    ("goals", Group::Reporting),
];
