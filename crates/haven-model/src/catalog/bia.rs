//! The business impact analysis table: one row per service.
//!
//! As practitioners write it: a service carries its own impact and the
//! impact of every service that stops without it (ranked by the total),
//! and an impact-over-time curve shows when losses become intolerable,
//! which is the MTD it suggests.

use jiff::SignedDuration;
use serde::Serialize;

use std::collections::{BTreeSet, HashMap};

use super::{Catalog, Finding, ImpactPoint};

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
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct BiaRow {
    /// Service id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Tier 1–4.
    pub tier: u8,
    /// Its own financial impact per hour.
    pub impact_per_hour: Option<f64>,
    /// Its own impact plus that of every service that stops without it
    /// (each once): what an hour without it costs.
    pub inherited_impact_per_hour: Option<f64>,
    /// The services that stop without it (directly or through others).
    pub carried_for: Vec<String>,
    /// Currency of the impact.
    pub currency: Option<String>,
    /// Qualitative score 0–100 (mean rating, scaled), when rated.
    pub qualitative_score: Option<u32>,
    /// The score the table is ranked by (impact per hour, or the
    /// qualitative score).
    pub score: f64,
    /// Maximum tolerable downtime.
    pub mtd: Option<SignedDuration>,
    /// The loss accumulated after growing downtimes (declared).
    pub impact_over_time: Vec<ImpactPoint>,
    /// When the accumulated loss passes the tolerable loss: the MTD the
    /// curve suggests.
    pub intolerable_after: Option<SignedDuration>,
    /// Recovery time objective.
    pub rto: Option<SignedDuration>,
    /// Recovery point objective.
    pub rpo: Option<SignedDuration>,
    /// Continuity strategy.
    pub strategy: Option<String>,
    /// What it depends on.
    pub depends_on: Vec<String>,
    /// Codes of the findings about this service.
    pub findings: Vec<String>,
}

/// The services that stop without each service: those depending on it,
/// directly or through other services.
pub fn dependents(catalog: &Catalog) -> HashMap<&str, BTreeSet<&str>> {
    let mut direct: HashMap<&str, Vec<&str>> = HashMap::new();
    for s in &catalog.services {
        for d in &s.depends_on {
            if catalog.service(&d.value).is_some() {
                direct
                    .entry(d.value.as_str())
                    .or_default()
                    .push(s.id.value.as_str());
            }
        }
    }
    let mut out = HashMap::new();
    for s in &catalog.services {
        let id = s.id.value.as_str();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut stack: Vec<&str> = direct.get(id).cloned().unwrap_or_default();
        while let Some(n) = stack.pop() {
            if n != id && seen.insert(n) {
                stack.extend(direct.get(n).into_iter().flatten().copied());
            }
        }
        out.insert(id, seen);
    }
    out
}

/// When the accumulated loss of `curve` passes `tolerable` (linear between
/// the declared points, from no loss at no downtime); `None` when it
/// never does within the curve.
pub fn intolerable_after(curve: &[ImpactPoint], tolerable: f64) -> Option<SignedDuration> {
    let mut before = ImpactPoint {
        after: SignedDuration::ZERO,
        loss: 0.0,
    };
    for point in curve {
        if point.loss > tolerable {
            let share = (tolerable - before.loss) / (point.loss - before.loss);
            let span = (point.after - before.after).as_secs_f64();
            let at = before.after.as_secs_f64() + share.clamp(0.0, 1.0) * span;
            // An MTD is set in whole hours (whole minutes below one hour),
            // rounded down: the suggestion must stay tolerable.
            let minutes = (at / 60.0).floor() as i64;
            let rounded = if minutes >= 60 {
                minutes / 60 * 60
            } else {
                minutes
            };
            return Some(SignedDuration::from_mins(rounded));
        }
        before = *point;
    }
    None
}

/// The BIA rows, highest score first (then tier, then id).
pub fn bia(catalog: &Catalog, findings: &[Finding], scoring: Scoring) -> Vec<BiaRow> {
    let dependents = dependents(catalog);
    let text = |d: &Option<super::Located<SignedDuration>>| d.as_ref().map(|d| d.value);
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
            let carried: Vec<&str> = dependents
                .get(s.id.value.as_str())
                .map(|d| d.iter().copied().collect())
                .unwrap_or_default();
            let inherited: f64 = carried
                .iter()
                .filter_map(|d| catalog.service(d).and_then(|d| d.impact.per_hour))
                .sum();
            let inherited_impact_per_hour = (s.impact.per_hour.is_some() || inherited > 0.0)
                .then(|| s.impact.per_hour.unwrap_or(0.0) + inherited);
            let curve: Vec<ImpactPoint> = s
                .impact_over_time
                .as_ref()
                .map(|c| c.value.clone())
                .unwrap_or_default();
            let intolerable = s
                .impact
                .tolerable_loss
                .and_then(|t| intolerable_after(&curve, t));
            let score = match scoring {
                Scoring::Quantitative => inherited_impact_per_hour.unwrap_or(0.0),
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
                inherited_impact_per_hour,
                carried_for: carried.iter().map(|c| c.to_string()).collect(),
                currency: s.impact.currency.clone(),
                qualitative_score,
                score,
                mtd: text(&s.mtd),
                impact_over_time: curve,
                intolerable_after: intolerable,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(points: &[(i64, f64)]) -> Vec<ImpactPoint> {
        points
            .iter()
            .map(|(hours, loss)| ImpactPoint {
                after: SignedDuration::from_hours(*hours),
                loss: *loss,
            })
            .collect()
    }

    #[test]
    fn the_curve_says_when_losses_become_intolerable() {
        let c = curve(&[(1, 1000.0), (8, 50000.0), (72, 900000.0)]);
        let h = |h: i64| Some(SignedDuration::from_hours(h));
        for (tolerable, expected) in [
            // Inside the first hour, from no loss at no downtime: 30 min.
            (500.0, Some(SignedDuration::from_mins(30))),
            // Exactly at a point: still tolerable there.
            (50000.0, h(8)),
            // Between 8h (50k) and 3d (900k), rounded down to the hour.
            (100000.0, h(11)),
            // Never passed within the curve: no suggestion.
            (1e9, None),
        ] {
            assert_eq!(intolerable_after(&c, tolerable), expected, "{tolerable}");
        }
        assert_eq!(intolerable_after(&[], 1.0), None);
    }
}
