//! Risk bands: the probability ranges the worklist, the server's metrics and the
//! monitor group customers by.

/// Risk bands, from the model's flag threshold `t` (chosen by F1 on calibration rows):
/// low below t/2, medium below t, high below min(2t, (1+t)/2), critical above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RiskBand {
    Low,
    Medium,
    High,
    Critical,
}

impl RiskBand {
    /// All bands, lowest first.
    pub const ALL: [RiskBand; 4] = [
        RiskBand::Low,
        RiskBand::Medium,
        RiskBand::High,
        RiskBand::Critical,
    ];

    /// The band's name in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskBand::Low => "low",
            RiskBand::Medium => "medium",
            RiskBand::High => "high",
            RiskBand::Critical => "critical",
        }
    }
}

/// The probability cut-offs of the risk bands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskCutoffs {
    pub medium: f64,
    pub high: f64,
    pub critical: f64,
}

impl RiskCutoffs {
    /// Cut-offs derived from the model's flag threshold.
    pub fn from_threshold(t: f64) -> RiskCutoffs {
        RiskCutoffs {
            medium: t / 2.0,
            high: t,
            critical: (2.0 * t).min((1.0 + t) / 2.0),
        }
    }

    /// The band of a probability.
    pub fn band(&self, p: f64) -> RiskBand {
        if p >= self.critical {
            RiskBand::Critical
        } else if p >= self.high {
            RiskBand::High
        } else if p >= self.medium {
            RiskBand::Medium
        } else {
            RiskBand::Low
        }
    }
}
