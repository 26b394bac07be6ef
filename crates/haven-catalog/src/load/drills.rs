//! `[[drill]]`: when the server drills which services.

use haven_model::catalog::drills::DrillSchedule;
use toml_span::de_helpers::TableHelper;

use super::Reader;

impl Reader<'_> {
    pub(super) fn drill(&mut self, th: &mut TableHelper<'_>) -> Option<DrillSchedule> {
        let id = self.id(th, "drill");
        let services = self.strings(th, "services");
        let tiers = self.tiers(th, "tiers");
        let schedule = self.cron(th, "schedule");
        let timezone = self.timezone(th);
        let window = self.window(th);
        let interval = self.duration(th, "interval");
        if let Some(i) = &interval
            && !i.value.is_positive()
        {
            let span = toml_span::Span::new(i.at.start, i.at.end);
            self.invalid(
                span,
                "`interval` must be positive".into(),
                "how long a passing drill proves a service, e.g. interval = \"30d\"",
            );
            return None;
        }
        Some(DrillSchedule {
            id: id?,
            services,
            tiers,
            schedule: schedule?,
            timezone: timezone?,
            window,
            interval,
        })
    }
}
