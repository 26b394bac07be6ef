//! The watch part of the catalog: notification channels, business-hours
//! calendars, escalation policies and maintenance windows.

use jiff::civil::{Date, Weekday};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::{ChannelId, CronSchedule, Located, SecretRef, Window, Zone};
use crate::alerts::Severity;

/// A way to reach people.
#[derive(Clone, Debug, Serialize)]
pub struct Channel {
    /// Unique id.
    pub id: Located<ChannelId>,
    /// How it delivers.
    pub kind: ChannelKind,
    /// Retries after a failed delivery before failing over.
    pub retries: u32,
    /// Delay before the first retry (doubles each time).
    pub retry_delay: SignedDuration,
    /// Longest time one delivery attempt may take.
    pub timeout: SignedDuration,
    /// Template of the subject (minijinja), instead of the default.
    pub subject: Option<String>,
    /// Template of the body (minijinja), instead of the default.
    pub body: Option<String>,
}

/// A value that is either written in the catalog or, when it is a secret
/// (a Slack webhook URL carries its token), referred to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum MaybeSecret {
    /// Written as is.
    Plain(String),
    /// Read from the environment or a file when needed.
    Secret(SecretRef),
}

/// How a channel delivers.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChannelKind {
    /// E-mail over SMTP.
    Email {
        /// `host:port` of the mail server.
        smtp: String,
        /// Transport security.
        security: SmtpSecurity,
        /// Login name (when the server wants authentication).
        username: Option<String>,
        /// The login's password, by reference.
        password: Option<SecretRef>,
        /// Sender address.
        from: String,
        /// Recipients.
        to: Vec<String>,
        /// A PEM file of extra CA certificates to trust (a private CA).
        ca_file: Option<String>,
    },
    /// JSON POSTed to a URL, signed with HMAC-SHA256.
    Webhook {
        /// Where.
        url: MaybeSecret,
        /// The signing key, by reference.
        secret: Option<SecretRef>,
    },
    /// A Slack-compatible incoming webhook.
    Slack {
        /// The webhook URL (a secret: it carries the token).
        url: MaybeSecret,
    },
    /// A Microsoft Teams workflow webhook (Adaptive Card).
    Teams {
        /// The workflow URL (a secret: it carries a signature).
        url: MaybeSecret,
    },
    /// A command (an SMS gateway script, a pager tool); the message is on
    /// its standard input and in `HAVEN_*` variables.
    Command {
        /// The command line.
        run: String,
        /// Its environment (credentials by reference).
        env: Vec<super::EnvVar>,
    },
}

impl ChannelKind {
    /// The type as written in the catalog.
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelKind::Email { .. } => "email",
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::Teams { .. } => "teams",
            ChannelKind::Command { .. } => "command",
        }
    }
}

/// SMTP transport security.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required, never skipped).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (a relay on loopback only).
    None,
}

/// Business hours: which days and hours count as working time.
#[derive(Clone, Debug, Serialize)]
pub struct Calendar {
    /// Unique id.
    pub id: Located<String>,
    /// IANA time zone.
    pub timezone: Located<Zone>,
    /// Working days.
    #[serde(serialize_with = "weekday_names")]
    pub days: Vec<Weekday>,
    /// Working hours on those days.
    pub hours: Window,
    /// Days off.
    pub holidays: Vec<Date>,
}

/// When an escalation policy applies, by time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hours {
    /// Always.
    Any,
    /// Inside the calendar's business hours.
    Business,
    /// Outside them (nights, weekends, holidays).
    OffHours,
}

/// Who is told, in which order, until someone acknowledges.
#[derive(Clone, Debug, Serialize)]
pub struct Escalation {
    /// Unique id.
    pub id: Located<String>,
    /// Severities it applies to (empty: all).
    pub severities: Vec<Severity>,
    /// Service tiers it applies to (empty: all, and alerts without a
    /// service).
    pub tiers: Vec<u8>,
    /// Time of day it applies to.
    pub hours: Hours,
    /// The business-hours calendar (`hours` other than `any`).
    pub calendar: Option<Located<String>>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One escalation step.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Channels in failover order: the message goes to the first that
    /// accepts it.
    pub channels: Vec<Located<ChannelId>>,
    /// Time after a notification before the next one.
    pub wait: SignedDuration,
    /// How many more times the step is repeated before the next step.
    pub repeat: u32,
}

/// Planned work during which alerts are recorded but not notified.
#[derive(Clone, Debug, Serialize)]
pub struct Maintenance {
    /// Unique id.
    pub id: Located<String>,
    /// Why (shown with suppressed alerts).
    pub reason: Option<String>,
    /// What it covers.
    pub scope: Scope,
    /// When.
    pub when: MaintenanceTime,
}

/// What a maintenance window covers (all empty: everything).
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(default)]
pub struct Scope {
    /// Services (and the systems they depend on).
    pub services: Vec<String>,
    /// Systems.
    pub systems: Vec<String>,
    /// Repositories.
    pub repositories: Vec<String>,
}

/// When a maintenance window is.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MaintenanceTime {
    /// Once.
    Once {
        /// Start.
        start: Timestamp,
        /// End.
        end: Timestamp,
    },
    /// Every time a cron schedule fires, for a duration.
    Recurring {
        /// Cron expression (local time).
        schedule: CronSchedule,
        /// How long each occurrence lasts.
        duration: SignedDuration,
        /// IANA time zone of the schedule.
        timezone: Zone,
    },
}

/// The catalog spelling of a weekday (`mon` … `sun`).
pub fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "mon",
        Weekday::Tuesday => "tue",
        Weekday::Wednesday => "wed",
        Weekday::Thursday => "thu",
        Weekday::Friday => "fri",
        Weekday::Saturday => "sat",
        Weekday::Sunday => "sun",
    }
}

fn weekday_names<S: serde::Serializer>(days: &[Weekday], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(days.iter().map(|d| weekday_name(*d)))
}
