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

/// Every feature of the simulated product with its group.
pub const CATALOG: [(&str, Group); 20] = [
    ("dashboard", Group::Core),
    ("projects", Group::Core),
    ("tasks", Group::Core),
    ("comments", Group::Core),
    ("search", Group::Core),
    ("calendar", Group::Core),
    ("automation", Group::Advanced),
    ("custom_fields", Group::Advanced),
    ("workflows", Group::Advanced),
    ("permissions", Group::Advanced),
    ("api_access", Group::Advanced),
    ("slack", Group::Integrations),
    ("salesforce", Group::Integrations),
    ("github", Group::Integrations),
    ("google_drive", Group::Integrations),
    ("zapier", Group::Integrations),
    ("reports", Group::Reporting),
    ("exports", Group::Reporting),
    ("scheduled_reports", Group::Reporting),
    ("analytics", Group::Reporting),
];
