//! Reading the watch tables: `[[channel]]`, `[[calendar]]`,
//! `[[escalation]]` and `[[maintenance]]`.

use haven_model::alerts::Severity;
use haven_model::catalog::SecretRef;
use haven_model::catalog::watch::{
    Calendar, Channel, ChannelKind, Escalation, Hours, Maintenance, MaintenanceTime, MaybeSecret,
    Scope, SmtpSecurity, Step,
};
use haven_model::catalog::{CronSchedule, Zone};
use jiff::civil::{DateTime, Weekday};
use jiff::{SignedDuration, Timestamp};
use toml_span::Spanned;
use toml_span::de_helpers::TableHelper;

use super::{Reader, parse_window};

/// Keys that only some channel types read.
const TYPE_KEYS: &[(&str, &[&str])] = &[
    (
        "email",
        &[
            "smtp", "security", "username", "password", "from", "to", "ca_file",
        ],
    ),
    ("webhook", &["url", "secret"]),
    ("slack", &["url"]),
    ("teams", &["url"]),
    ("command", &["run", "env"]),
];

const CHANNEL_TYPES: &[&str] = &["email", "webhook", "slack", "teams", "command"];

/// A channel's type-specific keys as given.
struct ChannelKeys {
    smtp: Option<Spanned<String>>,
    security: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    from: Option<Spanned<String>>,
    to: Option<Spanned<Vec<String>>>,
    ca_file: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    secret: Option<Spanned<String>>,
    run: Option<Spanned<String>>,
    env: Option<Spanned<Vec<haven_model::catalog::EnvVar>>>,
    /// Every key given, with where.
    given: Vec<(&'static str, toml_span::Span)>,
}

impl Reader<'_> {
    fn one_of<'s>(
        &mut self,
        text: &Spanned<String>,
        key: &str,
        allowed: &[&'s str],
    ) -> Option<&'s str> {
        if let Some(found) = allowed.iter().find(|a| **a == text.value) {
            return Some(found);
        }
        self.not_one_of(text, key, allowed);
        None
    }

    pub(super) fn channel(&mut self, th: &mut TableHelper<'_>) -> Option<Channel> {
        let id = self.id(th, "channel");
        let kind_text = th.required_s::<String>("type").ok();
        let kind = kind_text
            .as_ref()
            .and_then(|k| self.one_of(k, "type", CHANNEL_TYPES));
        // Every key is read, so unknown keys are reported with the full
        // list; keys of another type are reported below.
        let keys = self.channel_keys(th);
        let retries = self.count(th, "retries").map_or(2, |n| n.value);
        let retry_delay = self
            .duration(th, "retry_delay")
            .map_or(SignedDuration::from_secs(30), |d| d.value);
        let timeout = self
            .duration(th, "timeout")
            .map_or(SignedDuration::from_secs(30), |d| d.value);
        let subject = th.optional::<String>("subject");
        let body = th.optional::<String>("body");
        let kind = kind?;
        self.keys_of_other_types(kind, &keys.given);
        let span = kind_text.as_ref().map(|k| k.span).unwrap_or_default();
        let kind = self.channel_kind(kind, keys, span)?;
        Some(Channel {
            id: id?,
            kind,
            retries,
            retry_delay,
            timeout,
            subject,
            body,
        })
    }

    /// The keys some channel type reads, with where each was given.
    fn channel_keys(&mut self, th: &mut TableHelper<'_>) -> ChannelKeys {
        let mut given: Vec<(&'static str, toml_span::Span)> = Vec::new();
        let mut text = |th: &mut TableHelper<'_>, key: &'static str| {
            let v = th.optional_s::<String>(key);
            if let Some(v) = &v {
                given.push((key, v.span));
            }
            v
        };
        let mut keys = ChannelKeys {
            smtp: text(th, "smtp"),
            security: text(th, "security"),
            username: text(th, "username"),
            password: text(th, "password"),
            from: text(th, "from"),
            to: None,
            ca_file: text(th, "ca_file"),
            url: text(th, "url"),
            secret: text(th, "secret"),
            run: text(th, "run"),
            env: None,
            given,
        };
        keys.to = th.optional_s::<Vec<String>>("to");
        if let Some(t) = &keys.to {
            keys.given.push(("to", t.span));
        }
        keys.env = self.env(th, "channel");
        if let Some(e) = &keys.env {
            keys.given.push(("env", e.span));
        }
        keys
    }

    /// HVN-E002 for keys that belong to another type of channel.
    fn keys_of_other_types(&mut self, kind: &str, given: &[(&'static str, toml_span::Span)]) {
        let own = TYPE_KEYS
            .iter()
            .find(|(t, _)| *t == kind)
            .map_or(&[][..], |(_, keys)| *keys);
        for (key, span) in given {
            if !own.contains(key) {
                self.findings.push(
                    haven_model::catalog::Finding::error(
                        "HVN-E002",
                        format!("channel: `{key}` does not apply to a channel of type {kind}"),
                        format!("a {kind} channel reads: {}", own.join(", ")),
                    )
                    .at(self.origin(*span)),
                );
            }
        }
    }

    /// A key the channel's type requires (HVN-E004 where it is missing).
    fn required(
        &mut self,
        kind: &str,
        span: toml_span::Span,
        v: Option<Spanned<String>>,
        key: &str,
    ) -> Option<String> {
        if v.is_none() {
            self.findings.push(
                haven_model::catalog::Finding::error(
                    "HVN-E004",
                    format!("channel: a {kind} channel needs `{key}`"),
                    format!("add `{key} = …` to this channel (see docs/alerts.md)"),
                )
                .at(self.origin(span)),
            );
        }
        v.map(|v| v.value)
    }

    /// A secret by reference (HVN-E006 when written inline).
    fn channel_secret(&mut self, v: Option<Spanned<String>>, key: &str) -> Option<SecretRef> {
        let v = v?;
        let r = SecretRef::parse(&v.value);
        if r.is_none() {
            self.findings.push(
                haven_model::catalog::Finding::error(
                    "HVN-E006",
                    format!("`{key}` is written inline: a catalog must never hold a secret"),
                    format!("refer to it instead: {key} = \"env:HAVEN_SECRET\" or \"file:/etc/haven/secret\"; and remove the secret from version control history"),
                )
                .at(self.origin(v.span)),
            );
        }
        r
    }

    fn channel_kind(
        &mut self,
        kind: &str,
        keys: ChannelKeys,
        span: toml_span::Span,
    ) -> Option<ChannelKind> {
        let url_of = |this: &mut Self, url: Option<Spanned<String>>| -> Option<MaybeSecret> {
            let url = this.required(kind, span, url, "url")?;
            Some(match SecretRef::parse(&url) {
                Some(r) => MaybeSecret::Secret(r),
                None => MaybeSecret::Plain(url),
            })
        };
        Some(match kind {
            "email" => {
                let security = match &keys.security {
                    Some(s) => match self.one_of(s, "security", &["starttls", "tls", "none"]) {
                        Some("tls") => SmtpSecurity::Tls,
                        Some("none") => SmtpSecurity::None,
                        _ => SmtpSecurity::Starttls,
                    },
                    None => SmtpSecurity::Starttls,
                };
                let password = self.channel_secret(keys.password, "password");
                let to = match keys.to {
                    Some(t) if !t.value.is_empty() => t.value,
                    _ => {
                        self.required(kind, span, None, "to");
                        Vec::new()
                    }
                };
                ChannelKind::Email {
                    smtp: self.required(kind, span, keys.smtp, "smtp")?,
                    security,
                    username: keys.username.map(|u| u.value),
                    password,
                    from: self.required(kind, span, keys.from, "from")?,
                    to,
                    ca_file: keys.ca_file.map(|c| c.value),
                }
            }
            "webhook" => ChannelKind::Webhook {
                url: url_of(self, keys.url)?,
                secret: self.channel_secret(keys.secret, "secret"),
            },
            "slack" => ChannelKind::Slack {
                url: url_of(self, keys.url)?,
            },
            "teams" => ChannelKind::Teams {
                url: url_of(self, keys.url)?,
            },
            _ => ChannelKind::Command {
                run: self.required(kind, span, keys.run, "run")?,
                env: keys.env.map(|e| e.value).unwrap_or_default(),
            },
        })
    }

    pub(super) fn calendar(&mut self, th: &mut TableHelper<'_>) -> Option<Calendar> {
        let id = self.id(th, "calendar");
        let timezone = self.timezone(th);
        let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let days = match th.optional_s::<Vec<Spanned<String>>>("days") {
            Some(list) => list
                .value
                .iter()
                .filter_map(|d| match self.one_of(d, "days", &names)? {
                    "mon" => Some(Weekday::Monday),
                    "tue" => Some(Weekday::Tuesday),
                    "wed" => Some(Weekday::Wednesday),
                    "thu" => Some(Weekday::Thursday),
                    "fri" => Some(Weekday::Friday),
                    "sat" => Some(Weekday::Saturday),
                    _ => Some(Weekday::Sunday),
                })
                .collect(),
            None => vec![
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ],
        };
        let hours =
            th.required_s::<String>("hours")
                .ok()
                .and_then(|h| match parse_window(&h.value) {
                    Ok(w) => Some(w),
                    Err(e) => {
                        self.invalid(
                            h.span,
                            format!("`hours`: {e}"),
                            "write working hours as \"08:00-18:00\" (local time)",
                        );
                        None
                    }
                });
        let mut holidays = Vec::new();
        for day in th
            .optional_s::<Vec<Spanned<String>>>("holidays")
            .map(|l| l.value)
            .unwrap_or_default()
        {
            match day.value.parse() {
                Ok(d) => holidays.push(d),
                Err(_) => self.invalid(
                    day.span,
                    format!("`holidays`: {:?} is not a date", day.value),
                    "write dates as \"YYYY-MM-DD\"",
                ),
            }
        }
        Some(Calendar {
            id: id?,
            timezone: timezone?,
            days,
            hours: hours?,
            holidays,
        })
    }

    pub(super) fn escalation(&mut self, th: &mut TableHelper<'_>) -> Option<Escalation> {
        let id = self.id(th, "escalation");
        let severity_names: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
        let severities = th
            .optional_s::<Vec<Spanned<String>>>("severities")
            .map(|l| l.value)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| {
                self.one_of(s, "severities", &severity_names)
                    .and_then(Severity::parse)
            })
            .collect();
        let tiers = self.tiers(th, "tiers");
        let hours_text = th.optional_s::<String>("hours");
        let hours = match &hours_text {
            Some(h) => match self.one_of(h, "hours", &["any", "business", "off-hours"]) {
                Some("business") => Hours::Business,
                Some("off-hours") => Hours::OffHours,
                _ => Hours::Any,
            },
            None => Hours::Any,
        };
        let calendar = th.optional_s::<String>("calendar").map(|c| self.located(c));
        if hours != Hours::Any
            && calendar.is_none()
            && let Some(h) = &hours_text
        {
            self.invalid(
                h.span,
                format!("`hours = \"{}\"` needs a business-hours calendar", h.value),
                "add `calendar = \"office\"` naming a [[calendar]]",
            );
        }
        let mut steps = Vec::new();
        if let Some((_, mut list)) = th.take("step") {
            for mut item in self.tables(&mut list, "escalation.step") {
                let Some(mut st) = self.table(&mut item, "escalation.step") else {
                    continue;
                };
                let channels = self.strings(&mut st, "channels");
                let wait = self
                    .duration(&mut st, "wait")
                    .map_or(SignedDuration::from_mins(15), |d| d.value);
                let repeat = self.count(&mut st, "repeat").map_or(0, |n| n.value);
                if channels.is_empty() {
                    self.invalid(
                        item.span,
                        "escalation step without channels".into(),
                        "add `channels = [\"ops-mail\"]` (tried in order: the first that accepts the message gets it)",
                    );
                }
                steps.push(Step {
                    channels,
                    wait,
                    repeat,
                });
                self.finish(st, "escalation.step");
            }
        }
        let id = id?;
        if steps.is_empty() {
            self.invalid(
                toml_span::Span::new(id.at.start, id.at.end),
                format!("escalation {} has no steps", id.value),
                "add at least one [[escalation.step]] with `channels`",
            );
        }
        Some(Escalation {
            id,
            severities,
            tiers,
            hours,
            calendar,
            steps,
        })
    }

    pub(super) fn maintenance(&mut self, th: &mut TableHelper<'_>) -> Option<Maintenance> {
        let id = self.id(th, "maintenance");
        let reason = th.optional::<String>("reason");
        let scope = Scope {
            services: self.plain_strings(th, "services"),
            systems: self.plain_strings(th, "systems"),
            repositories: self.plain_strings(th, "repositories"),
        };
        let start = th.optional_s::<String>("start");
        let end = th.optional_s::<String>("end");
        let schedule = th.optional_s::<String>("schedule");
        let duration = self.duration(th, "duration");
        let timezone = self.timezone(th);
        let id = id?;
        let at = toml_span::Span::new(id.at.start, id.at.end);
        let when = match (start, end, schedule) {
            (Some(start), Some(end), None) => {
                let timezone = timezone?;
                let start = self.instant(&start, &timezone.value)?;
                let end_at = self.instant(&end, &timezone.value)?;
                if end_at <= start {
                    self.invalid(
                        end.span,
                        "`end` is not after `start`".into(),
                        "a maintenance window ends after it starts",
                    );
                    return None;
                }
                MaintenanceTime::Once { start, end: end_at }
            }
            (None, None, Some(schedule)) => {
                let cron = match CronSchedule::parse(&schedule.value) {
                    Ok(cron) => cron,
                    Err(e) => {
                        self.invalid(
                            schedule.span,
                            format!("`schedule`: {e}"),
                            "e.g. \"0 1 * * 0\" (Sundays at 01:00)",
                        );
                        return None;
                    }
                };
                let Some(duration) = duration.filter(|d| d.value.is_positive()) else {
                    self.invalid(
                        schedule.span,
                        "a recurring maintenance window needs a positive `duration`".into(),
                        "e.g. duration = \"4h\"",
                    );
                    return None;
                };
                MaintenanceTime::Recurring {
                    schedule: cron,
                    duration: duration.value,
                    timezone: timezone?.value,
                }
            }
            _ => {
                self.invalid(
                    at,
                    format!("maintenance {}: give either `start` and `end`, or `schedule` and `duration`", id.value),
                    "one-off: start = \"2026-12-05 22:00\", end = \"2026-12-06 02:00\"; recurring: schedule = \"0 1 * * 0\", duration = \"4h\"",
                );
                return None;
            }
        };
        Some(Maintenance {
            id,
            reason,
            scope,
            when,
        })
    }

    /// An RFC 3339 instant, or a local date and time in `timezone`.
    fn instant(&mut self, text: &Spanned<String>, timezone: &Zone) -> Option<Timestamp> {
        if let Ok(t) = text.value.parse::<Timestamp>() {
            return Some(t);
        }
        let civil = text.value.replacen(' ', "T", 1).parse::<DateTime>();
        match civil
            .ok()
            .and_then(|c| c.to_zoned(timezone.tz().clone()).ok())
        {
            Some(z) => Some(z.timestamp()),
            None => {
                self.invalid(
                    text.span,
                    format!("{:?} is not a date and time", text.value),
                    "write \"2026-12-05 22:00\" (in `timezone`) or \"2026-12-05T21:00:00Z\"",
                );
                None
            }
        }
    }
}
