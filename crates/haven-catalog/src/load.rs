//! Reading catalog TOML into the model, collecting every problem.
//!
//! Each object is read with a `toml_span::de_helpers::TableHelper`, which
//! records the keys asked for; whatever is left is an unknown key (a typo
//! never passes silently). Problems are collected, not returned early, so
//! one run reports all of them.

use std::str::FromStr;

use haven_model::catalog::analysis::closest;
use haven_model::catalog::schedule::CRON_EXAMPLE;
use haven_model::catalog::watch::MaybeSecret;
use haven_model::catalog::{
    BackupSet, Catalog, Check, CronSchedule, DataClass, EnvVar, Finding, Impact, ImpactPoint,
    IntegrityCheck, Located, Member, Origin, Policy, Regulation, Repository, Retention, SecretRef,
    Service, ServiceId, SetName, StorageTier, Strategy, System, Team, Vendor, Window, Zone,
    parse_duration,
};
use jiff::SignedDuration;
use toml_span::de_helpers::TableHelper;
use toml_span::value::{Value, ValueInner};
use toml_span::{ErrorKind, Span, Spanned};

mod drills;
mod recovery;
mod watch;

/// The kinds of objects a catalog file may hold.
pub const KINDS: &[&str] = &[
    "service",
    "system",
    "policy",
    "repository",
    "team",
    "vendor",
    "regulation",
    "channel",
    "calendar",
    "escalation",
    "maintenance",
    "drill",
    "plan",
];

/// Collects findings for one file.
pub(crate) struct Reader<'a> {
    pub file: usize,
    pub findings: &'a mut Vec<Finding>,
}

impl Reader<'_> {
    pub(crate) fn origin(&self, span: Span) -> Origin {
        Origin {
            file: self.file,
            start: span.start,
            end: span.end,
        }
    }

    pub(crate) fn located<T>(&self, s: Spanned<T>) -> Located<T> {
        Located::new(s.value, self.origin(s.span))
    }

    /// `timezone` (default UTC), resolved here: an unknown zone is
    /// reported where it was written, and the entry is not loaded.
    pub(crate) fn timezone(&mut self, th: &mut TableHelper<'_>) -> Option<Located<Zone>> {
        let Some(name) = th.optional_s::<String>("timezone") else {
            return Some(Located::new(Zone::utc(), Origin::default()));
        };
        match Zone::parse(&name.value) {
            Ok(zone) => Some(Located::new(zone, self.origin(name.span))),
            Err(e) => {
                self.invalid(
                    name.span,
                    format!("`timezone`: {e}"),
                    "e.g. \"Europe/Berlin\" or \"UTC\"",
                );
                None
            }
        }
    }

    /// A required cron schedule `key`, parsed here: a schedule that does
    /// not parse is reported where it was written, with a valid example,
    /// and the entry is not loaded (it would never run).
    pub(crate) fn cron(
        &mut self,
        th: &mut TableHelper<'_>,
        key: &'static str,
    ) -> Option<Located<CronSchedule>> {
        let text = th.required_s::<String>(key).ok()?;
        match CronSchedule::parse(&text.value) {
            Ok(schedule) => Some(Located::new(schedule, self.origin(text.span))),
            Err(e) => {
                self.invalid(
                    text.span,
                    format!("`{key}`: {e}"),
                    format!(
                        "write 5 fields (minute hour day-of-month month day-of-week), e.g. {CRON_EXAMPLE}"
                    ),
                );
                None
            }
        }
    }

    /// `window` (optional): local hours in which jobs may start.
    pub(crate) fn window(&mut self, th: &mut TableHelper<'_>) -> Option<Located<Window>> {
        let w = th.optional_s::<String>("window")?;
        match parse_window(&w.value) {
            Ok(window) => Some(Located::new(window, self.origin(w.span))),
            Err(e) => {
                self.invalid(
                    w.span,
                    format!("`window`: {e}"),
                    "write the window as \"22:00-06:00\" (local time; may wrap past midnight)",
                );
                None
            }
        }
    }

    /// A list of service tiers, 1 to 4 (optional).
    pub(crate) fn tiers(&mut self, th: &mut TableHelper<'_>, key: &'static str) -> Vec<u8> {
        let mut tiers = Vec::new();
        for t in th
            .optional_s::<Vec<Spanned<i64>>>(key)
            .map(|l| l.value)
            .unwrap_or_default()
        {
            match u8::try_from(t.value) {
                Ok(v) if (1..=4).contains(&v) => tiers.push(v),
                _ => self.invalid(
                    t.span,
                    format!("`{key}`: {} is not a tier (1 to 4)", t.value),
                    format!("e.g. {key} = [1, 2]"),
                ),
            }
        }
        tiers
    }

    pub(crate) fn invalid(&mut self, span: Span, message: String, help: impl Into<String>) {
        let at = self.origin(span);
        self.findings
            .push(Finding::error("HVN-E003", message, help).at(at));
    }

    /// Turn toml-span's errors into findings.
    pub fn report(&mut self, errors: Vec<toml_span::Error>, what: &str) {
        for e in errors {
            let at = self.origin(e.span);
            let finding = match e.kind {
                ErrorKind::MissingField(key) => Finding::error(
                    "HVN-E004",
                    format!("{what}: missing key `{key}`"),
                    format!("add `{key} = …` to this table (see docs/catalog.md)"),
                ),
                ErrorKind::UnexpectedKeys { keys, expected } => {
                    for (key, span) in keys {
                        let hint = closest(&key, expected.iter().map(String::as_str))
                            .map(|c| format!("did you mean `{c}`? "))
                            .unwrap_or_default();
                        self.findings.push(
                            Finding::error(
                                "HVN-E002",
                                format!("{what}: unknown key `{key}`"),
                                format!("{hint}known keys: {}", expected.join(", ")),
                            )
                            .at(self.origin(span)),
                        );
                    }
                    continue;
                }
                ErrorKind::Wanted { expected, found } => Finding::error(
                    "HVN-E003",
                    format!("{what}: expected {expected}, found {found}"),
                    "see docs/catalog.md for the type of each key",
                ),
                other => Finding::error(
                    "HVN-E003",
                    format!("{what}: {other}"),
                    "see docs/catalog.md for the type of each key",
                ),
            };
            self.findings.push(finding.at(at));
        }
    }

    /// Finish a table: unknown keys and accumulated errors become findings.
    pub(crate) fn finish(&mut self, th: TableHelper<'_>, what: &str) {
        if let Err(e) = th.finalize(None) {
            self.report(e.errors, what);
        }
    }

    pub(crate) fn table<'de>(
        &mut self,
        value: &mut Value<'de>,
        what: &str,
    ) -> Option<TableHelper<'de>> {
        match TableHelper::new(value) {
            Ok(th) => Some(th),
            Err(e) => {
                self.report(e.errors, what);
                None
            }
        }
    }

    /// The elements of an array of tables (`[[kind]]`).
    pub(crate) fn tables<'de>(&mut self, value: &mut Value<'de>, key: &str) -> Vec<Value<'de>> {
        let span = value.span;
        match value.take() {
            ValueInner::Array(items) => items,
            other => {
                self.invalid(
                    span,
                    format!(
                        "`{key}` must be an array of tables, found {}",
                        other.type_str()
                    ),
                    format!("write each entry as a `[[{key}]]` table"),
                );
                Vec::new()
            }
        }
    }

    pub(crate) fn duration(
        &mut self,
        th: &mut TableHelper<'_>,
        key: &'static str,
    ) -> Option<Located<SignedDuration>> {
        let text = th.optional_s::<String>(key)?;
        match parse_duration(&text.value) {
            Ok(d) => Some(Located::new(d, self.origin(text.span))),
            Err(e) => {
                self.invalid(
                    text.span,
                    format!("`{key}`: {e}"),
                    "durations look like 15m, 4h, 2d, 1w or 1h 30m",
                );
                None
            }
        }
    }

    fn date(
        &mut self,
        th: &mut TableHelper<'_>,
        key: &'static str,
    ) -> Option<Located<jiff::civil::Date>> {
        let text = th.optional_s::<String>(key)?;
        match text.value.parse() {
            Ok(d) => Some(Located::new(d, self.origin(text.span))),
            Err(_) => {
                self.invalid(
                    text.span,
                    format!("`{key}`: {:?} is not a date", text.value),
                    "write dates as \"YYYY-MM-DD\"",
                );
                None
            }
        }
    }

    pub(crate) fn choice<T: FromStr>(
        &mut self,
        th: &mut TableHelper<'_>,
        key: &'static str,
        allowed: &[&str],
    ) -> Option<T> {
        let text = th.optional_s::<String>(key)?;
        match text.value.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.not_one_of(&text, key, allowed);
                None
            }
        }
    }

    /// Report a value that is not one of `allowed`, with "did you mean".
    pub(crate) fn not_one_of(&mut self, text: &Spanned<String>, key: &str, allowed: &[&str]) {
        let hint = closest(&text.value, allowed.iter().copied())
            .map(|c| format!("did you mean `{c}`? "))
            .unwrap_or_default();
        self.invalid(
            text.span,
            format!(
                "`{key}`: {:?} is not one of {}",
                text.value,
                allowed.join(", ")
            ),
            format!("{hint}use one of: {}", allowed.join(", ")),
        );
    }

    fn rating(&mut self, th: &mut TableHelper<'_>, key: &'static str) -> Option<u8> {
        let v = th.optional_s::<i64>(key)?;
        match u8::try_from(v.value) {
            Ok(r) if (1..=5).contains(&r) => Some(r),
            _ => {
                self.invalid(
                    v.span,
                    format!("`{key}` must be a rating from 1 to 5, found {}", v.value),
                    "1 = negligible … 5 = severe",
                );
                None
            }
        }
    }

    pub(crate) fn count(
        &mut self,
        th: &mut TableHelper<'_>,
        key: &'static str,
    ) -> Option<Located<u32>> {
        let v = th.optional_s::<i64>(key)?;
        match u32::try_from(v.value) {
            Ok(n) => Some(Located::new(n, self.origin(v.span))),
            Err(_) => {
                self.invalid(
                    v.span,
                    format!("`{key}` must be a whole number ≥ 0, found {}", v.value),
                    "e.g. 30",
                );
                None
            }
        }
    }

    /// A list of strings (or of ids: anything made from a string).
    pub(crate) fn strings<T: From<String>>(
        &mut self,
        th: &mut TableHelper<'_>,
        key: &'static str,
    ) -> Vec<Located<T>> {
        th.optional_s::<Vec<Spanned<String>>>(key)
            .map(|list| {
                list.value
                    .into_iter()
                    .map(|s| self.located_into(s))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A string read as `T` (an id), where it was written.
    pub(crate) fn located_into<T: From<String>>(&self, s: Spanned<String>) -> Located<T> {
        Located::new(s.value.into(), self.origin(s.span))
    }

    pub(crate) fn plain_strings(
        &mut self,
        th: &mut TableHelper<'_>,
        key: &'static str,
    ) -> Vec<String> {
        self.strings::<String>(th, key)
            .into_iter()
            .map(|s| s.value)
            .collect()
    }

    /// The entry's `id`, checked and typed (`ServiceId`, `PolicyId`, …).
    pub(crate) fn id<T: From<String>>(
        &mut self,
        th: &mut TableHelper<'_>,
        what: &str,
    ) -> Option<Located<T>> {
        let id = th.required_s::<String>("id").ok()?;
        let valid = !id.value.is_empty()
            && id.value.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || c == '.'
            });
        if !valid {
            self.invalid(
                id.span,
                format!("{what} id {:?} is not valid", id.value),
                "ids use lowercase letters, digits, '-', '_' and '.'",
            );
        }
        Some(self.located_into(id))
    }

    /// Read every `[[kind]]` entry of one file into `catalog`.
    pub fn kind(&mut self, kind: &str, value: &mut Value<'_>, catalog: &mut Catalog) {
        for mut entry in self.tables(value, kind) {
            let Some(mut th) = self.table(&mut entry, kind) else {
                continue;
            };
            let what = kind.to_string();
            match kind {
                "service" => {
                    if let Some(s) = self.service(&mut th) {
                        catalog.services.push(s);
                    }
                }
                "system" => {
                    if let Some(s) = self.system(&mut th) {
                        catalog.systems.push(s);
                    }
                }
                "policy" => {
                    if let Some(p) = self.policy(&mut th) {
                        catalog.policies.push(p);
                    }
                }
                "repository" => {
                    if let Some(r) = self.repository(&mut th) {
                        catalog.repositories.push(r);
                    }
                }
                "team" => {
                    if let Some(t) = self.team(&mut th) {
                        catalog.teams.push(t);
                    }
                }
                "vendor" => {
                    if let Some(v) = self.vendor(&mut th) {
                        catalog.vendors.push(v);
                    }
                }
                "regulation" => {
                    if let Some(r) = self.regulation(&mut th) {
                        catalog.regulations.push(r);
                    }
                }
                "channel" => {
                    if let Some(c) = self.channel(&mut th) {
                        catalog.channels.push(c);
                    }
                }
                "calendar" => {
                    if let Some(c) = self.calendar(&mut th) {
                        catalog.calendars.push(c);
                    }
                }
                "escalation" => {
                    if let Some(e) = self.escalation(&mut th) {
                        catalog.escalations.push(e);
                    }
                }
                "maintenance" => {
                    if let Some(m) = self.maintenance(&mut th) {
                        catalog.maintenance.push(m);
                    }
                }
                "drill" => {
                    if let Some(d) = self.drill(&mut th) {
                        catalog.drills.push(d);
                    }
                }
                "plan" => {
                    if let Some(p) = self.plan(&mut th) {
                        catalog.plans.push(p);
                    }
                }
                _ => {}
            }
            self.finish(th, &what);
        }
    }

    fn service(&mut self, th: &mut TableHelper<'_>) -> Option<Service> {
        let id = self.id(th, "service");
        let name = th.optional::<String>("name");
        let description = th.optional::<String>("description");
        let owner = th
            .optional_s::<String>("owner")
            .map(|s| self.located_into(s));
        let tier = th
            .required_s::<i64>("tier")
            .ok()
            .and_then(|t| match u8::try_from(t.value) {
                Ok(v) if (1..=4).contains(&v) => Some(Located::new(v, self.origin(t.span))),
                _ => {
                    self.invalid(
                        t.span,
                        format!("`tier` must be 1, 2, 3 or 4, found {}", t.value),
                        "tier 1 is the most critical",
                    );
                    None
                }
            });
        let business_functions = self.plain_strings(th, "business_functions");
        let impact = match th.take("impact") {
            Some((_, mut v)) => self.impact(&mut v),
            None => Impact::default(),
        };
        let written: Vec<&'static str> = ["mtd", "rto", "rpo"]
            .into_iter()
            .filter(|k| th.table.keys().any(|key| key.name == *k))
            .collect();
        let mtd = self.duration(th, "mtd");
        let rto = self.duration(th, "rto");
        let restore_estimate = self.duration(th, "restore_estimate");
        let rpo = self.duration(th, "rpo");
        let impact_over_time = self.impact_over_time(th);
        let unreadable = written
            .into_iter()
            .filter(|k| match *k {
                "mtd" => mtd.is_none(),
                "rto" => rto.is_none(),
                _ => rpo.is_none(),
            })
            .collect();
        let data_classification = self
            .choice::<DataClassText>(th, "data_classification", DataClassText::ALLOWED)
            .map(|d| d.0);
        let regulations = self.strings(th, "regulations");
        let strategy = self
            .choice::<StrategyText>(th, "strategy", StrategyText::ALLOWED)
            .map(|s| s.0);
        let recovery_site = th.optional::<String>("recovery_site");
        let depends_on = self.strings(th, "depends_on");
        let review_interval = self.duration(th, "review_interval");
        let last_reviewed = self.date(th, "last_reviewed");
        let recovery = self.recovery_steps(th);
        let id: Located<ServiceId> = id?;
        Some(Service {
            name: name.unwrap_or_else(|| id.value.to_string()),
            id,
            description,
            owner,
            tier: tier?,
            business_functions,
            impact,
            mtd,
            rto,
            rpo,
            data_classification,
            regulations,
            strategy,
            recovery_site,
            depends_on,
            review_interval,
            restore_estimate,
            impact_over_time,
            recovery,
            unreadable,
            last_reviewed,
        })
    }

    /// `impact_over_time = { "1h" = 1000, "8h" = 50000 }`: the loss
    /// accumulated after each downtime, which can only grow.
    fn impact_over_time(&mut self, th: &mut TableHelper<'_>) -> Option<Located<Vec<ImpactPoint>>> {
        let (key, mut value) = th.take("impact_over_time")?;
        let example = "e.g. impact_over_time = { \"1h\" = 1000, \"8h\" = 50000, \"3d\" = 900000 } (the loss accumulated after each downtime)";
        let ValueInner::Table(table) = value.take() else {
            self.invalid(
                value.span,
                "`impact_over_time` must be a table".into(),
                example,
            );
            return None;
        };
        let mut points = Vec::new();
        for (after, mut loss) in table {
            let Ok(duration) = parse_duration(&after.name) else {
                self.invalid(
                    after.span,
                    format!("`impact_over_time`: {:?} is not a duration", after.name),
                    example,
                );
                return None;
            };
            let amount = match loss.take() {
                ValueInner::Integer(i) if i >= 0 => i as f64,
                ValueInner::Float(f) if f >= 0.0 && f.is_finite() => f,
                _ => {
                    self.invalid(
                        loss.span,
                        format!(
                            "`impact_over_time`: the loss after {} must be a number of at least 0",
                            after.name
                        ),
                        example,
                    );
                    return None;
                }
            };
            points.push((
                ImpactPoint {
                    after: duration,
                    loss: amount,
                },
                loss.span,
            ));
        }
        points.sort_by_key(|(p, _)| p.after);
        if let Some(pair) = points.windows(2).find(|w| w[1].0.loss < w[0].0.loss) {
            self.invalid(
                pair[1].1,
                "`impact_over_time`: the accumulated loss goes down with longer downtime".into(),
                "each value is the total lost by then, so it can only stay or grow",
            );
            return None;
        }
        let points = points.into_iter().map(|(p, _)| p).collect();
        Some(Located::new(points, self.origin(key.span)))
    }

    fn impact(&mut self, value: &mut Value<'_>) -> Impact {
        let Some(mut th) = self.table(value, "service.impact") else {
            return Impact::default();
        };
        let per_hour = self.amount(&mut th, "per_hour");
        let tolerable_loss = self.amount(&mut th, "tolerable_loss");
        let impact = Impact {
            per_hour,
            currency: th.optional::<String>("currency"),
            legal: self.rating(&mut th, "legal"),
            reputational: self.rating(&mut th, "reputational"),
            customer: self.rating(&mut th, "customer"),
            operational: self.rating(&mut th, "operational"),
            tolerable_loss,
        };
        self.finish(th, "service.impact");
        impact
    }

    /// An amount of money (`per_hour = 12500` or `12500.0`): a number of
    /// at least 0, integer or not.
    fn amount(&mut self, th: &mut TableHelper<'_>, key: &'static str) -> Option<f64> {
        let (_, mut value) = th.take(key)?;
        match value.take() {
            ValueInner::Integer(i) if i >= 0 => Some(i as f64),
            ValueInner::Float(f) if f >= 0.0 && f.is_finite() => Some(f),
            _ => {
                self.invalid(
                    value.span,
                    format!("service.impact: `{key}` must be a number of at least 0"),
                    format!("e.g. `{key} = 12500`"),
                );
                None
            }
        }
    }

    fn system(&mut self, th: &mut TableHelper<'_>) -> Option<System> {
        let id = self.id(th, "system");
        let host = th.optional::<String>("host");
        let kind = th
            .required_s::<String>("kind")
            .ok()
            .map(|k| self.located(k));
        let owner = th
            .optional_s::<String>("owner")
            .map(|s| self.located_into(s));
        let policy = th
            .optional_s::<String>("policy")
            .map(|s| self.located_into(s));
        let mut backup_sets = Vec::new();
        if let Some((_, mut sets)) = th.take("backup_set") {
            for mut set in self.tables(&mut sets, "system.backup_set") {
                let span = set.span;
                let Some(mut st) = self.table(&mut set, "system.backup_set") else {
                    continue;
                };
                let name: SetName = st
                    .optional::<String>("name")
                    .unwrap_or_else(|| "default".into())
                    .into();
                let paths = self.plain_strings(&mut st, "paths");
                let excludes = self.plain_strings(&mut st, "excludes");
                let command = st.optional::<String>("command");
                let env = self
                    .env(&mut st, "system.backup_set")
                    .map(|e| e.value)
                    .unwrap_or_default();
                let restore_command = st.optional_s::<String>("restore_command");
                let recover_command = st.optional_s::<String>("recover_command");
                let start = st.optional::<String>("start");
                if let Some(r) = &recover_command
                    && command.is_none()
                {
                    self.invalid(
                        r.span,
                        format!("backup set \"{name}\": `recover_command` reads a restored dump, and this set has no `command`"),
                        "a set of paths is recovered as files into its target",
                    );
                }
                if let Some(r) = &restore_command
                    && command.is_none()
                {
                    self.invalid(
                        r.span,
                        format!("backup set \"{name}\": `restore_command` loads a dump, and this set has no `command`"),
                        "a set of paths is restored as files into the sandbox; use `start` to run a service from them",
                    );
                }
                if paths.is_empty() && command.is_none() {
                    self.invalid(
                        span,
                        format!("backup set \"{name}\" has neither `paths` nor `command`"),
                        "give the paths to back up, or a dump command such as `pg_dump -Fc erp`",
                    );
                }
                backup_sets.push(BackupSet {
                    name,
                    paths,
                    excludes,
                    command,
                    env,
                    restore_command: restore_command.map(|r| r.value),
                    recover_command: recover_command.map(|r| r.value),
                    start,
                    at: self.origin(span),
                });
                self.finish(st, "system.backup_set");
            }
        }
        let mut checks = Vec::new();
        if let Some((_, mut list)) = th.take("check") {
            for mut item in self.tables(&mut list, "system.check") {
                if let Some(mut ct) = self.table(&mut item, "system.check") {
                    if let Some(check) = self.check(&mut ct) {
                        checks.push(check);
                    }
                    self.finish(ct, "system.check");
                }
            }
        }
        let recovery_point_query = th.optional::<String>("recovery_point_query");
        let alternatives = self.strings(th, "alternatives");
        let restore_estimate = self.duration(th, "restore_estimate");
        Some(System {
            id: id?,
            host,
            kind: kind?,
            owner,
            backup_sets,
            policy,
            checks,
            alternatives,
            restore_estimate,
            recovery_point_query,
        })
    }

    fn check(&mut self, th: &mut TableHelper<'_>) -> Option<Check> {
        let kind = th.required_s::<String>("type").ok()?;
        match kind.value.as_str() {
            "command" => Some(Check::Command {
                run: th.required("run").ok()?,
                expect_exit: th.optional("expect_exit").unwrap_or(0),
                expect_output: th.optional("expect_output"),
            }),
            "sql" => Some(Check::Sql {
                query: th.required("query").ok()?,
                expect: th.required("expect").ok()?,
            }),
            "http" => Some(Check::Http {
                url: th.required("url").ok()?,
                expect_status: th.optional("expect_status").unwrap_or(200),
            }),
            "tcp" => Some(Check::Tcp {
                address: th.required("address").ok()?,
            }),
            other => {
                self.invalid(
                    kind.span,
                    format!("check type {other:?} is not one of command, sql, http, tcp"),
                    "use type = \"command\", \"sql\", \"http\" or \"tcp\"",
                );
                None
            }
        }
    }

    fn policy(&mut self, th: &mut TableHelper<'_>) -> Option<Policy> {
        let id = self.id(th, "policy");
        let schedule = self.cron(th, "schedule");
        let timezone = self.timezone(th);
        let window = self.window(th);
        let stagger = self.duration(th, "stagger").map(|d| d.value);
        let expected_duration = self.duration(th, "expected_duration").map(|d| d.value);
        let max_duration = self.duration(th, "max_duration");
        let retention = match th.take("retention") {
            Some((_, mut v)) => self.retention(&mut v),
            None => Retention::default(),
        };
        let repository = th
            .required_s::<String>("repository")
            .ok()
            .map(|s| self.located_into(s));
        let copies = self.strings(th, "copies");
        let immutability_days = self.count(th, "immutability_days");
        let integrity_check = match th.take("integrity_check") {
            Some((_, mut v)) => self.integrity(&mut v),
            None => None,
        };
        let pre_hook = th.optional::<String>("pre_hook");
        let post_hook = th.optional::<String>("post_hook");
        let hook_env = self.env(th, "policy").map(|e| e.value).unwrap_or_default();
        let priority = th.optional::<i64>("priority");
        Some(Policy {
            id: id?,
            schedule: schedule?,
            timezone: timezone?,
            window,
            stagger,
            expected_duration,
            max_duration,
            retention,
            repository: repository?,
            copies,
            immutability_days,
            integrity_check,
            pre_hook,
            post_hook,
            hook_env,
            priority,
        })
    }

    fn retention(&mut self, value: &mut Value<'_>) -> Retention {
        let span = value.span;
        let Some(mut th) = self.table(value, "policy.retention") else {
            return Retention::default();
        };
        let mut keep =
            |th: &mut TableHelper<'_>, key: &'static str| self.count(th, key).map(|n| n.value);
        let retention = Retention {
            keep_last: keep(&mut th, "keep_last"),
            keep_hourly: keep(&mut th, "keep_hourly"),
            keep_daily: keep(&mut th, "keep_daily"),
            keep_weekly: keep(&mut th, "keep_weekly"),
            keep_monthly: keep(&mut th, "keep_monthly"),
            keep_yearly: keep(&mut th, "keep_yearly"),
            min_days: self.count(&mut th, "min_days"),
            at: self.origin(span),
        };
        self.finish(th, "policy.retention");
        retention
    }

    fn integrity(&mut self, value: &mut Value<'_>) -> Option<IntegrityCheck> {
        let mut th = self.table(value, "policy.integrity_check")?;
        let schedule = self.cron(&mut th, "schedule");
        let percent = th.optional_s::<f64>("read_data_percent");
        let read_data_percent = match percent {
            Some(p) if (0.0..=100.0).contains(&p.value) => p.value,
            Some(p) => {
                self.invalid(
                    p.span,
                    format!(
                        "`read_data_percent` must be between 0 and 100, found {}",
                        p.value
                    ),
                    "e.g. 5.0",
                );
                0.0
            }
            None => 0.0,
        };
        self.finish(th, "policy.integrity_check");
        Some(IntegrityCheck {
            schedule: schedule?,
            read_data_percent,
        })
    }

    fn repository(&mut self, th: &mut TableHelper<'_>) -> Option<Repository> {
        let id = self.id(th, "repository");
        let url = th.required_s::<String>("url").ok().map(|s| self.located(s));
        let jurisdiction = th
            .optional_s::<String>("jurisdiction")
            .map(|s| self.located(s));
        let region = th.optional::<String>("region");
        let storage_tier = self
            .choice::<TierText>(th, "storage_tier", TierText::ALLOWED)
            .map(|t| t.0);
        let media = th.optional::<String>("media");
        let capacity_bytes =
            th.optional_s::<i64>("capacity_bytes")
                .and_then(|c| match u64::try_from(c.value) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.invalid(
                            c.span,
                            "`capacity_bytes` must not be negative".into(),
                            "e.g. 2_000_000_000_000",
                        );
                        None
                    }
                });
        let password = self.secret(th, "password");
        Some(Repository {
            id: id?,
            url: url?,
            jurisdiction,
            region,
            storage_tier,
            media,
            capacity_bytes,
            password,
        })
    }

    /// A secret by reference (`env:VAR` or `file:PATH`); a secret written
    /// inline is an error (`HVN-E006`) and is dropped.
    pub(crate) fn secret(
        &mut self,
        th: &mut TableHelper<'_>,
        key: &'static str,
    ) -> Option<Located<SecretRef>> {
        let p = th.optional_s::<String>(key)?;
        match SecretRef::parse(&p.value) {
            Some(r) => Some(Located::new(r, self.origin(p.span))),
            None => {
                let at = self.origin(p.span);
                self.findings.push(
                    Finding::error(
                        "HVN-E006",
                        format!("`{key}` is written inline: a catalog must never hold a secret"),
                        format!("refer to it instead: {key} = \"env:HAVEN_SECRET\" or \"file:/etc/haven/secret\"; and remove the secret from version control history"),
                    )
                    .at(at),
                );
                None
            }
        }
    }

    /// A command's environment: `env = { NAME = "env:VAR" | "file:PATH"
    /// | "plain value" }`. A plain value under a secret-looking name is an
    /// inline secret (`HVN-E006`) and is dropped; `HAVEN_*` names are
    /// Haven's own.
    pub(crate) fn env(
        &mut self,
        th: &mut TableHelper<'_>,
        what: &str,
    ) -> Option<Spanned<Vec<EnvVar>>> {
        let (key, mut value) = th.take("env")?;
        let span = value.span;
        let table = match value.take() {
            ValueInner::Table(table) => table,
            other => {
                self.invalid(
                    span,
                    format!("{what}: `env` must be a table, found {}", other.type_str()),
                    "e.g. env = { PGPASSWORD = \"file:/etc/haven/erp.pw\", PGHOST = \"db1\" }",
                );
                return None;
            }
        };
        let vars = table
            .into_iter()
            .filter_map(|(key, mut value)| self.env_var(&key.name, key.span, &mut value, what))
            .collect();
        Some(Spanned::with_span(vars, key.span))
    }

    fn env_var(
        &mut self,
        name: &str,
        span: Span,
        value: &mut Value<'_>,
        what: &str,
    ) -> Option<EnvVar> {
        let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            self.invalid(
                span,
                format!("{what}: `env` name {name:?} is not an environment variable name"),
                "use letters, digits and `_`, not starting with a digit (e.g. PGPASSWORD)",
            );
            return None;
        }
        if name.to_ascii_uppercase().starts_with("HAVEN_") {
            self.invalid(
                span,
                format!(
                    "{what}: `env` name {name:?} is reserved: Haven sets HAVEN_* variables itself"
                ),
                "choose another name",
            );
            return None;
        }
        let value_span = value.span;
        let text = match value.take() {
            ValueInner::String(text) => text.into_owned(),
            other => {
                self.invalid(
                    value_span,
                    format!(
                        "{what}: `env.{name}` must be a string, found {}",
                        other.type_str()
                    ),
                    format!("write {name} = \"env:VAR\", \"file:PATH\" or a quoted value"),
                );
                return None;
            }
        };
        let value = match SecretRef::parse(&text) {
            Some(reference) => MaybeSecret::Secret(reference),
            None if text.starts_with("env:") || text.starts_with("file:") => {
                self.invalid(
                    value_span,
                    format!("{what}: `env.{name}` refers to nothing"),
                    "name the variable or file: \"env:ERP_PASSWORD\", \"file:/etc/haven/erp.pw\"",
                );
                return None;
            }
            None if haven_model::redact::is_secret_name(name) => {
                self.findings.push(
                    Finding::error(
                        "HVN-E006",
                        format!("`env.{name}` is written inline: a catalog must never hold a secret"),
                        format!("refer to it instead: {name} = \"env:{}\" or \"file:/etc/haven/{}\"; and remove the secret from version control history", name.to_ascii_uppercase(), name.to_ascii_lowercase()),
                    )
                    .at(self.origin(value_span)),
                );
                return None;
            }
            None => MaybeSecret::Plain(text),
        };
        Some(EnvVar {
            name: name.to_string(),
            value,
        })
    }

    fn team(&mut self, th: &mut TableHelper<'_>) -> Option<Team> {
        let id = self.id(th, "team");
        let name = th.optional::<String>("name");
        let mut members = Vec::new();
        if let Some((_, mut list)) = th.take("member") {
            for mut m in self.tables(&mut list, "team.member") {
                if let Some(mut mt) = self.table(&mut m, "team.member") {
                    let name = mt.required::<String>("name").ok();
                    let member = Member {
                        name: name.unwrap_or_default(),
                        email: mt.optional("email"),
                        phone: mt.optional("phone"),
                        chat: mt.optional("chat"),
                    };
                    members.push(member);
                    self.finish(mt, "team.member");
                }
            }
        }
        Some(Team {
            id: id?,
            name,
            members,
        })
    }

    fn vendor(&mut self, th: &mut TableHelper<'_>) -> Option<Vendor> {
        let id = self.id(th, "vendor");
        let name = th.optional::<String>("name");
        let sla_response = self.duration(th, "sla_response").map(|d| d.value);
        let sla_rto = self.duration(th, "sla_rto");
        let contract_end = self.date(th, "contract_end");
        let last_evidence = self.date(th, "last_evidence");
        let alternatives = self.strings(th, "alternatives");
        Some(Vendor {
            id: id?,
            name,
            sla_response,
            sla_rto,
            contract_end,
            last_evidence,
            alternatives,
        })
    }

    fn regulation(&mut self, th: &mut TableHelper<'_>) -> Option<Regulation> {
        let id = self.id(th, "regulation");
        let name = th.optional::<String>("name");
        let min_retention_days = self.count(th, "min_retention_days").map(|n| n.value);
        let max_retention_days = self.count(th, "max_retention_days").map(|n| n.value);
        let min_immutability_days = self.count(th, "min_immutability_days").map(|n| n.value);
        let allowed_jurisdictions = self.plain_strings(th, "allowed_jurisdictions");
        Some(Regulation {
            id: id?,
            name,
            min_retention_days,
            max_retention_days,
            min_immutability_days,
            allowed_jurisdictions,
        })
    }
}

/// `22:00-06:00` → a window.
pub(crate) fn parse_window(text: &str) -> Result<Window, String> {
    let (start, end) = text
        .split_once('-')
        .ok_or_else(|| format!("{text:?} is not a window (start-end)"))?;
    let time = |t: &str| {
        t.trim()
            .parse::<jiff::civil::Time>()
            .map_err(|_| format!("{:?} is not a time of day (HH:MM)", t.trim()))
    };
    let window = Window {
        start: time(start)?,
        end: time(end)?,
    };
    if window.start == window.end {
        return Err("the window is empty (start equals end)".into());
    }
    Ok(window)
}

macro_rules! text_enum {
    ($name:ident, $target:ty, { $($text:literal => $value:expr),+ $(,)? }) => {
        struct $name($target);
        impl $name {
            const ALLOWED: &'static [&'static str] = &[$($text),+];
        }
        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s {
                    $($text => Ok($name($value)),)+
                    _ => Err(()),
                }
            }
        }
    };
}

text_enum!(DataClassText, DataClass, {
    "public" => DataClass::Public,
    "internal" => DataClass::Internal,
    "confidential" => DataClass::Confidential,
    "regulated" => DataClass::Regulated,
});

text_enum!(StrategyText, Strategy, {
    "active-active" => Strategy::ActiveActive,
    "active-passive" => Strategy::ActivePassive,
    "warm-standby" => Strategy::WarmStandby,
    "cold-standby" => Strategy::ColdStandby,
    "backup-restore" => Strategy::BackupRestore,
});

text_enum!(TierText, StorageTier, {
    "hot" => StorageTier::Hot,
    "cold" => StorageTier::Cold,
    "archive" => StorageTier::Archive,
});
