//! The business impact analysis table: one row per service.

use jiff::SignedDuration;
use serde::Serialize;

use super::duration::format_duration;
use super::{Catalog, Finding};

/// How services are scored and ranked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scoring {
    /// By financial impact per hour of downtime.
    #[default]
    Quantitative,
    /// By the mean of the 1–5 ratings (legal, reputational, customer,
    /// operational), scaled to 0–100.
    Qualitative,
}

/// One service in the BIA.
#[derive(Clone, Debug, Serialize)]
pub struct BiaRow {
    /// Service id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Tier 1–4.
    pub tier: u8,
    /// Financial impact per hour.
    pub impact_per_hour: Option<f64>,
    /// Currency of the impact.
    pub currency: Option<String>,
    /// Qualitative score 0–100 (mean rating, scaled), when rated.
    pub qualitative_score: Option<u32>,
    /// The score the table is ranked by (impact per hour, or the
    /// qualitative score).
    pub score: f64,
    /// Maximum tolerable downtime.
    pub mtd: Option<String>,
    /// Recovery time objective.
    pub rto: Option<String>,
    /// Recovery point objective.
    pub rpo: Option<String>,
    /// Continuity strategy.
    pub strategy: Option<String>,
    /// What it depends on.
    pub depends_on: Vec<String>,
    /// Codes of the findings about this service.
    pub findings: Vec<String>,
}

/// The BIA rows, highest score first (then tier, then id).
pub fn bia(catalog: &Catalog, findings: &[Finding], scoring: Scoring) -> Vec<BiaRow> {
    let text =
        |d: &Option<super::Located<SignedDuration>>| d.as_ref().map(|d| format_duration(d.value));
    let mut rows: Vec<BiaRow> = catalog
        .services
        .iter()
        .map(|s| {
            let ratings: Vec<u8> = [
                s.impact.legal,
                s.impact.reputational,
                s.impact.customer,
                s.impact.operational,
            ]
            .into_iter()
            .flatten()
            .collect();
            let qualitative_score = (!ratings.is_empty()).then(|| {
                let mean =
                    ratings.iter().map(|r| f64::from(*r)).sum::<f64>() / ratings.len() as f64;
                ((mean - 1.0) / 4.0 * 100.0).round() as u32
            });
            let score = match scoring {
                Scoring::Quantitative => s.impact.per_hour.unwrap_or(0.0),
                Scoring::Qualitative => f64::from(qualitative_score.unwrap_or(0)),
            };
            let mut codes: Vec<String> = findings
                .iter()
                .filter(|f| {
                    f.objects
                        .iter()
                        .any(|o| o.kind == "service" && s.id.value == o.id)
                })
                .map(|f| f.code.to_string())
                .collect();
            codes.sort();
            codes.dedup();
            BiaRow {
                id: s.id.value.to_string(),
                name: s.name.clone(),
                tier: s.tier.value,
                impact_per_hour: s.impact.per_hour,
                currency: s.impact.currency.clone(),
                qualitative_score,
                score,
                mtd: text(&s.mtd),
                rto: text(&s.rto),
                rpo: text(&s.rpo),
                strategy: s.strategy.map(|st| st.as_str().to_string()),
                depends_on: s.depends_on.iter().map(|d| d.value.clone()).collect(),
                findings: codes,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.tier.cmp(&b.tier))
            .then(a.id.cmp(&b.id))
    });
    rows
}
