//! The continuity catalog: services, systems, policies, repositories,
//! teams, vendors and regulations, as loaded from the TOML catalog
//! (`haven-catalog`) and analysed here without I/O.
//!
//! Every object and every value a finding may point at carries an
//! [`Origin`]: the file it came from and its byte range, which the loader
//! turns into `file:line:col` and a snippet.

pub mod analysis;
pub mod bia;
pub mod drills;
pub mod duration;
pub mod finding;
pub mod graph;
pub mod ids;
pub mod plan;
pub mod recovery;
pub mod schedule;
pub mod watch;

use jiff::SignedDuration;
use jiff::civil::Date;
use serde::Serialize;

pub use ids::{ChannelId, PolicyId, RepositoryId, ServiceId, SetName, SystemId, TeamId};
pub use schedule::{CronSchedule, Zone};

pub use duration::parse_duration;
pub use finding::{Finding, ObjectRef, Severity};

/// Where something was written: a file of the catalog (by index) and a
/// byte range in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// Index of the file in the loaded catalog.
    pub file: usize,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    #[serde(skip)]
    pub at: Origin,
}

impl<T> Located<T> {
    /// A value with its origin.
    pub fn new(value: T, at: Origin) -> Self {
        Located { value, at }
    }
}

/// The whole catalog.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Catalog {
    /// Business services.
    pub services: Vec<Service>,
    /// Technical systems (hosts, databases, SaaS, network…).
    pub systems: Vec<System>,
    /// Protection policies.
    pub policies: Vec<Policy>,
    /// Backup repositories.
    pub repositories: Vec<Repository>,
    /// Teams.
    pub teams: Vec<Team>,
    /// Vendors.
    pub vendors: Vec<Vendor>,
    /// Regulations.
    pub regulations: Vec<Regulation>,
    /// Notification channels.
    pub channels: Vec<watch::Channel>,
    /// Business-hours calendars.
    pub calendars: Vec<watch::Calendar>,
    /// Escalation policies, in the order they are tried.
    pub escalations: Vec<watch::Escalation>,
    /// Maintenance windows.
    pub maintenance: Vec<watch::Maintenance>,
    /// When the server drills which services.
    pub drills: Vec<drills::DrillSchedule>,
    /// Recovery plans.
    pub plans: Vec<recovery::RecoveryPlan>,
    /// Services, systems and vendors by id ([`Catalog::index_ids`]).
    #[serde(skip)]
    pub(crate) ids: Option<std::sync::Arc<IdIndex>>,
}

/// Where each service, system and vendor sits in its list, by id: the
/// loader builds it once the catalog is read, so that lookups in a
/// catalog of thousands of systems do not scan it each time (analyses
/// look ids up inside loops). It holds while the lists keep the lengths
/// it was built for; otherwise lookups scan, as without it.
#[derive(Clone, Default)]
pub struct IdIndex {
    services: std::collections::HashMap<String, usize>,
    systems: std::collections::HashMap<String, usize>,
    vendors: std::collections::HashMap<String, usize>,
    lengths: (usize, usize, usize),
}

impl std::fmt::Debug for IdIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdIndex({:?})", self.lengths)
    }
}

/// The first of `list` whose id is `id`: through `index` when there is
/// one (a stale position is looked for again), else by scanning.
fn by_id<'a, T>(
    list: &'a [T],
    index: Option<&std::collections::HashMap<String, usize>>,
    id: &str,
    id_of: impl Fn(&T) -> &str,
) -> Option<&'a T> {
    match index {
        Some(index) => {
            let at = *index.get(id)?;
            match list.get(at) {
                Some(found) if id_of(found) == id => Some(found),
                _ => list.iter().find(|t| id_of(t) == id),
            }
        }
        None => list.iter().find(|t| id_of(t) == id),
    }
}

/// A business service.
#[derive(Clone, Debug, Serialize)]
pub struct Service {
    /// Unique id (`erp`).
    pub id: Located<ServiceId>,
    /// Display name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Owning team id.
    pub owner: Option<Located<TeamId>>,
    /// Criticality tier, 1 (most critical) to 4.
    pub tier: Located<u8>,
    /// Business functions it supports.
    pub business_functions: Vec<String>,
    /// Impact of downtime.
    pub impact: Impact,
    /// Maximum tolerable downtime.
    pub mtd: Option<Located<SignedDuration>>,
    /// Recovery time objective.
    pub rto: Option<Located<SignedDuration>>,
    /// Recovery point objective.
    pub rpo: Option<Located<SignedDuration>>,
    /// How long bringing the service itself back takes once everything
    /// it depends on is back (its own step, not the whole chain).
    pub restore_estimate: Option<Located<SignedDuration>>,
    /// Classification of its data.
    pub data_classification: Option<DataClass>,
    /// Regulations that apply (ids of `[[regulation]]`).
    pub regulations: Vec<Located<String>>,
    /// Continuity strategy.
    pub strategy: Option<Strategy>,
    /// Where it is recovered.
    pub recovery_site: Option<String>,
    /// Services, systems and vendors it needs.
    pub depends_on: Vec<Located<String>>,
    /// How often the entry must be reviewed.
    pub review_interval: Option<Located<SignedDuration>>,
    /// When it was last reviewed.
    pub last_reviewed: Option<Located<Date>>,
    /// Cumulative loss after growing downtimes, shortest first (declared
    /// `impact_over_time`).
    pub impact_over_time: Option<Located<Vec<ImpactPoint>>>,
    /// Steps of its recovery after its data is restored, in order.
    pub recovery: Vec<recovery::RecoveryStep>,
    /// Keys that were written but could not be read (reported by the
    /// loader; analyses do not report them again as missing).
    #[serde(skip)]
    pub unreadable: Vec<&'static str>,
}

/// The impact of a service's downtime.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Impact {
    /// Financial impact per hour of downtime.
    pub per_hour: Option<f64>,
    /// Currency of `per_hour` (ISO 4217, e.g. `EUR`).
    pub currency: Option<String>,
    /// Legal/regulatory impact, 1 (negligible) to 5 (severe).
    pub legal: Option<u8>,
    /// Reputational impact, 1–5.
    pub reputational: Option<u8>,
    /// Customer impact, 1–5.
    pub customer: Option<u8>,
    /// Operational impact, 1–5.
    pub operational: Option<u8>,
    /// The most the organisation can bear to lose to one outage of the
    /// service (same currency): where the impact curve becomes
    /// intolerable.
    pub tolerable_loss: Option<f64>,
}

/// One point of an impact-over-time curve: the loss accumulated after a
/// downtime this long.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ImpactPoint {
    /// Downtime so far.
    pub after: SignedDuration,
    /// Loss accumulated by then.
    pub loss: f64,
}

/// How sensitive a service's data is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataClass {
    /// May be published.
    Public,
    /// Internal use.
    Internal,
    /// Confidential.
    Confidential,
    /// Under regulation (personal, financial, health data…).
    Regulated,
}

/// How a service is kept available.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Two or more sites serve at once.
    ActiveActive,
    /// A standby site takes over.
    ActivePassive,
    /// A running but idle replica.
    WarmStandby,
    /// Infrastructure ready, started on demand.
    ColdStandby,
    /// Restored from backups.
    BackupRestore,
}

impl Strategy {
    /// The catalog spelling (`warm-standby`).
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::ActiveActive => "active-active",
            Strategy::ActivePassive => "active-passive",
            Strategy::WarmStandby => "warm-standby",
            Strategy::ColdStandby => "cold-standby",
            Strategy::BackupRestore => "backup-restore",
        }
    }
}

/// A technical system.
#[derive(Clone, Debug, Serialize)]
pub struct System {
    /// Unique id.
    pub id: Located<SystemId>,
    /// Host name or address.
    pub host: Option<String>,
    /// Kind (`file-server`, `database-postgres`, `saas`, `dns`, …).
    pub kind: Located<String>,
    /// Owning team id.
    pub owner: Option<Located<TeamId>>,
    /// What to back up.
    pub backup_sets: Vec<BackupSet>,
    /// Protection policy id.
    pub policy: Option<Located<PolicyId>>,
    /// Checks a drill runs after restoring.
    pub checks: Vec<Check>,
    /// Systems that can take over when this one fails (not a single
    /// point of failure when set).
    pub alternatives: Vec<Located<String>>,
    /// How long restoring the system takes once what it needs is back
    /// (declared; drills will measure it).
    pub restore_estimate: Option<Located<SignedDuration>>,
    /// A query whose answer is the newest time in the restored data (e.g.
    /// `SELECT max(updated_at) FROM orders`): a drill measures the
    /// achieved RPO from the data itself.
    pub recovery_point_query: Option<String>,
}

impl System {
    /// Kinds that hold data worth backing up unless said otherwise.
    pub fn holds_data(&self) -> bool {
        let kind = self.kind.value.as_str();
        kind.starts_with("database") || matches!(kind, "file-server" | "vm" | "mail" | "identity")
    }
}

/// One set of data of a system.
#[derive(Clone, Debug, Serialize)]
pub struct BackupSet {
    /// Name within the system.
    pub name: SetName,
    /// Paths to back up.
    pub paths: Vec<String>,
    /// Glob patterns to leave out.
    pub excludes: Vec<String>,
    /// A dump command whose output is backed up (e.g. `pg_dump -Fc erp`).
    pub command: Option<String>,
    /// Environment of the dump command (its credentials, by reference).
    pub env: Vec<EnvVar>,
    /// Drills: loads the restored stream into the sandbox (gets
    /// `HAVEN_SANDBOX`, `HAVEN_RESTORE_FILE`, `HAVEN_PORT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_command: Option<String>,
    /// Drills: starts the restored service in the sandbox, listening on
    /// `HAVEN_PORT` on the loopback, so probes can reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Recovery: the command the restored stream is piped into (e.g.
    /// `pg_restore --clean --if-exists -d orders`); never used by drills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_command: Option<String>,
    /// Where it was written.
    #[serde(skip)]
    pub at: Origin,
}

/// A verification a drill runs against a restored system.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Check {
    /// Run a command; compare exit code and (optionally) output.
    Command {
        /// The command line.
        run: String,
        /// Expected exit code.
        expect_exit: i64,
        /// Text the output must contain.
        expect_output: Option<String>,
    },
    /// Run a SQL query; compare its first value.
    Sql {
        /// The query.
        query: String,
        /// Expected result (as text).
        expect: String,
    },
    /// Request a URL; compare the status.
    Http {
        /// The URL.
        url: String,
        /// Expected HTTP status.
        expect_status: i64,
    },
    /// Open a TCP connection.
    Tcp {
        /// `host:port`.
        address: String,
    },
}

/// A protection policy.
#[derive(Clone, Debug, Serialize)]
pub struct Policy {
    /// Unique id.
    pub id: Located<PolicyId>,
    /// Backup schedule (cron, 5 fields).
    pub schedule: Located<CronSchedule>,
    /// IANA time zone of the schedule and window.
    pub timezone: Located<Zone>,
    /// Local time window in which jobs may start (`22:00`–`06:00`).
    pub window: Option<Located<Window>>,
    /// Random delay spread over starts.
    pub stagger: Option<SignedDuration>,
    /// Typical duration of a backup.
    pub expected_duration: Option<SignedDuration>,
    /// Longest acceptable duration of a backup.
    pub max_duration: Option<Located<SignedDuration>>,
    /// What to keep.
    pub retention: Retention,
    /// Primary repository id.
    pub repository: Located<RepositoryId>,
    /// Repositories that receive copies.
    pub copies: Vec<Located<RepositoryId>>,
    /// Days each snapshot is locked against deletion.
    pub immutability_days: Option<Located<u32>>,
    /// Integrity checks.
    pub integrity_check: Option<IntegrityCheck>,
    /// Command run before each backup.
    pub pre_hook: Option<String>,
    /// Command run after each backup.
    pub post_hook: Option<String>,
    /// Environment of the hooks (their credentials, by reference).
    pub hook_env: Vec<EnvVar>,
    /// Priority among jobs waiting to start (higher first).
    pub priority: Option<i64>,
}

/// A daily time window (may wrap past midnight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Start, local time.
    pub start: jiff::civil::Time,
    /// End, local time (before `start`: the window wraps past midnight).
    pub end: jiff::civil::Time,
}

/// Retention rules of a policy.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Retention {
    /// Keep the N newest snapshots.
    pub keep_last: Option<u32>,
    /// Newest per hour, for N hours.
    pub keep_hourly: Option<u32>,
    /// Newest per day, for N days.
    pub keep_daily: Option<u32>,
    /// Newest per week, for N weeks.
    pub keep_weekly: Option<u32>,
    /// Newest per month, for N months.
    pub keep_monthly: Option<u32>,
    /// Newest per year, for N years.
    pub keep_yearly: Option<u32>,
    /// Nothing is removed before this many days.
    pub min_days: Option<Located<u32>>,
    /// Where the retention table was written.
    #[serde(skip)]
    pub at: Origin,
}

/// Scheduled integrity checks.
#[derive(Clone, Debug, Serialize)]
pub struct IntegrityCheck {
    /// Cron schedule.
    pub schedule: Located<CronSchedule>,
    /// Share of the data read each time, in percent.
    pub read_data_percent: f64,
}

/// A backup repository.
#[derive(Clone, Debug, Serialize)]
pub struct Repository {
    /// Unique id.
    pub id: Located<RepositoryId>,
    /// Location (a path or `s3:…`).
    pub url: Located<String>,
    /// Legal jurisdiction of the storage (`EU`, `DE`, `US`, …).
    pub jurisdiction: Option<Located<String>>,
    /// Region or site.
    pub region: Option<String>,
    /// Storage tier.
    pub storage_tier: Option<StorageTier>,
    /// Media type (`disk`, `object`, `tape`, …).
    pub media: Option<String>,
    /// Capacity in bytes.
    pub capacity_bytes: Option<u64>,
    /// Where the password comes from (`env:VAR` or `file:PATH`).
    pub password: Option<Located<SecretRef>>,
}

/// A secret by reference: never the secret itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "from", content = "name", rename_all = "lowercase")]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file (first line).
    File(String),
}

impl SecretRef {
    /// `env:VAR` / `file:PATH` → a reference; anything else (a literal,
    /// or a prefix with nothing after it) is not one.
    pub fn parse(text: &str) -> Option<SecretRef> {
        let reference = if let Some(var) = text.strip_prefix("env:") {
            SecretRef::Env(var.to_string())
        } else {
            SecretRef::File(text.strip_prefix("file:")?.to_string())
        };
        match &reference {
            SecretRef::Env(v) | SecretRef::File(v) if v.is_empty() => None,
            _ => Some(reference),
        }
    }
}

/// A variable set in a command's environment (a dump, a hook, a
/// channel's command): written as is, or read from the environment or a
/// file when the command starts, so no secret is ever on a command line
/// (where `ps`, shell history and error messages would show it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    /// The variable's name.
    pub name: String,
    /// Its value.
    pub value: watch::MaybeSecret,
}

/// Storage tier of a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageTier {
    /// Immediate access.
    Hot,
    /// Slower, cheaper.
    Cold,
    /// Hours to retrieve.
    Archive,
}

/// A team.
#[derive(Clone, Debug, Serialize)]
pub struct Team {
    /// Unique id.
    pub id: Located<TeamId>,
    /// Display name.
    pub name: Option<String>,
    /// Members.
    pub members: Vec<Member>,
}

/// A member of a team.
#[derive(Clone, Debug, Serialize)]
pub struct Member {
    /// Full name.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Chat handle.
    pub chat: Option<String>,
}

/// A vendor.
#[derive(Clone, Debug, Serialize)]
pub struct Vendor {
    /// Unique id.
    pub id: Located<String>,
    /// Display name.
    pub name: Option<String>,
    /// Committed response time.
    pub sla_response: Option<SignedDuration>,
    /// Committed recovery time.
    pub sla_rto: Option<Located<SignedDuration>>,
    /// End of the contract.
    pub contract_end: Option<Located<Date>>,
    /// When continuity evidence (SOC 2, ISO 22301 certificate, test
    /// report) was last received.
    pub last_evidence: Option<Located<Date>>,
    /// Vendors or systems that can take over from this one.
    pub alternatives: Vec<Located<String>>,
}

/// A regulation's rules.
#[derive(Clone, Debug, Serialize)]
pub struct Regulation {
    /// Unique id (`gdpr`, `hgb-257`).
    pub id: Located<String>,
    /// Display name.
    pub name: Option<String>,
    /// Backups must be kept at least this many days.
    pub min_retention_days: Option<u32>,
    /// Personal data must not be kept longer than this many days.
    pub max_retention_days: Option<u32>,
    /// Snapshots must be immutable at least this many days.
    pub min_immutability_days: Option<u32>,
    /// Jurisdictions where the data may be stored (empty: anywhere).
    pub allowed_jurisdictions: Vec<String>,
}

impl Catalog {
    /// Index the services, systems and vendors by id (the loader does,
    /// once everything is read); lookups stay right without it.
    pub fn index_ids(&mut self) {
        fn positions<T>(
            list: &[T],
            id_of: impl Fn(&T) -> &str,
        ) -> std::collections::HashMap<String, usize> {
            let mut map = std::collections::HashMap::with_capacity(list.len());
            for (at, item) in list.iter().enumerate() {
                // The first of duplicates, as a scan finds it.
                map.entry(id_of(item).to_string()).or_insert(at);
            }
            map
        }
        self.ids = Some(std::sync::Arc::new(IdIndex {
            services: positions(&self.services, |s| s.id.value.as_str()),
            systems: positions(&self.systems, |s| s.id.value.as_str()),
            vendors: positions(&self.vendors, |v| v.id.value.as_str()),
            lengths: self.lengths(),
        }));
    }

    fn lengths(&self) -> (usize, usize, usize) {
        (self.services.len(), self.systems.len(), self.vendors.len())
    }

    /// The index, while it holds.
    fn index(&self) -> Option<&IdIndex> {
        self.ids
            .as_deref()
            .filter(|index| index.lengths == self.lengths())
    }

    /// The kind of object an id names, if any.
    pub fn kind_of(&self, id: &str) -> Option<&'static str> {
        if self.service(id).is_some() {
            Some("service")
        } else if self.system(id).is_some() {
            Some("system")
        } else if self.vendor(id).is_some() {
            Some("vendor")
        } else {
            None
        }
    }

    /// A service by id.
    pub fn service(&self, id: &str) -> Option<&Service> {
        let index = self.index().map(|i| &i.services);
        by_id(&self.services, index, id, |s| s.id.value.as_str())
    }

    /// A system by id.
    pub fn system(&self, id: &str) -> Option<&System> {
        let index = self.index().map(|i| &i.systems);
        by_id(&self.systems, index, id, |s| s.id.value.as_str())
    }

    /// A vendor by id.
    pub fn vendor(&self, id: &str) -> Option<&Vendor> {
        let index = self.index().map(|i| &i.vendors);
        by_id(&self.vendors, index, id, |v| v.id.value.as_str())
    }

    /// A policy by id.
    pub fn policy(&self, id: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.id.value == id)
    }

    /// The declared alternatives of a system or vendor that exist in the
    /// catalog (an unknown one is HVN-E012 and cannot take over).
    pub fn working_alternatives(&self, id: &str) -> Vec<&str> {
        let declared = self
            .system(id)
            .map(|s| &s.alternatives)
            .or_else(|| self.vendor(id).map(|v| &v.alternatives));
        declared
            .into_iter()
            .flatten()
            .map(|a| a.value.as_str())
            .filter(|a| *a != id && self.kind_of(a).is_some())
            .collect()
    }

    /// The policy protecting a system, if it has one that exists.
    pub fn policy_of(&self, system: &System) -> Option<&Policy> {
        self.policy(&system.policy.as_ref()?.value)
    }

    /// A repository by id.
    pub fn repository(&self, id: &str) -> Option<&Repository> {
        self.repositories.iter().find(|r| r.id.value == id)
    }
}
