//! When the server drills by itself: `[[drill]]` entries, by service or
//! tier, with a schedule, a window and the interval within which a drill
//! must have passed. Services no entry covers are drilled on demand only;
//! their readiness still follows the default interval of their tier.

use jiff::SignedDuration;
use serde::Serialize;

use super::{Catalog, CronSchedule, Located, Window, Zone};
use crate::drills::drill_interval;

/// A `[[drill]]` entry.
#[derive(Clone, Debug, Serialize)]
pub struct DrillSchedule {
    /// Unique id.
    pub id: Located<String>,
    /// Services covered (their systems are drilled).
    pub services: Vec<Located<String>>,
    /// Tiers covered (neither services nor tiers: every service).
    pub tiers: Vec<u8>,
    /// When drills start (cron, 5 fields).
    pub schedule: Located<CronSchedule>,
    /// Time zone of the schedule and window.
    pub timezone: Located<Zone>,
    /// Local hours in which a drill may start.
    pub window: Option<Located<Window>>,
    /// How long a pass proves a service (default by tier).
    pub interval: Option<Located<SignedDuration>>,
}

impl DrillSchedule {
    /// Does this entry cover `service` (of `tier`)? By name first.
    pub fn covers(&self, service: &str, tier: u8) -> bool {
        if !self.services.is_empty() {
            return self.services.iter().any(|s| s.value == service);
        }
        self.tiers.is_empty() || self.tiers.contains(&tier)
    }
}

impl Catalog {
    /// The drill entry of a service: the first naming it, else the first
    /// covering its tier.
    pub fn drill_schedule_of_service(&self, service: &str) -> Option<&DrillSchedule> {
        let tier = self.service(service)?.tier.value;
        self.drills
            .iter()
            .find(|d| d.services.iter().any(|s| s.value == service))
            .or_else(|| {
                self.drills
                    .iter()
                    .find(|d| d.services.is_empty() && d.covers(service, tier))
            })
    }

    /// The services that need a system directly, most critical first.
    pub fn services_needing(&self, system: &str) -> Vec<&super::Service> {
        let mut services: Vec<&super::Service> = self
            .services
            .iter()
            .filter(|s| s.depends_on.iter().any(|d| d.value == system))
            .collect();
        services.sort_by_key(|s| (s.tier.value, s.id.value.as_str().to_string()));
        services
    }

    /// A system's drill schedule: that of the most critical service
    /// needing it which has one (the shortest interval wins a tie).
    pub fn drill_schedule_of_system(&self, system: &str) -> Option<&DrillSchedule> {
        self.services_needing(system)
            .into_iter()
            .filter_map(|s| {
                let entry = self.drill_schedule_of_service(&s.id.value)?;
                Some((s.tier.value, self.interval_for(entry, s.tier.value), entry))
            })
            .min_by_key(|(tier, interval, _)| (*tier, *interval))
            .map(|(_, _, entry)| entry)
    }

    /// How long a pass proves a system: the shortest interval among the
    /// services needing it (their entry's, else their tier's default).
    pub fn drill_interval_of_system(&self, system: &str) -> SignedDuration {
        self.services_needing(system)
            .into_iter()
            .map(|s| match self.drill_schedule_of_service(&s.id.value) {
                Some(entry) => self.interval_for(entry, s.tier.value),
                None => drill_interval(s.tier.value),
            })
            .min()
            .unwrap_or_else(|| drill_interval(4))
    }

    /// The most critical tier needing a system (4 when none does).
    pub fn tier_of_system(&self, system: &str) -> u8 {
        self.services_needing(system)
            .first()
            .map_or(4, |s| s.tier.value)
    }

    fn interval_for(&self, entry: &DrillSchedule, tier: u8) -> SignedDuration {
        entry
            .interval
            .as_ref()
            .map_or_else(|| drill_interval(tier), |i| i.value)
    }
}
