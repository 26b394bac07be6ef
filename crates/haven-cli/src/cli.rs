//! Command-line definitions. Names here are a public interface: scripts,
//! later Haven features and outside checks rely on them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Haven: IT service continuity — protect data, prove it can be recovered,
/// recover it.
#[derive(Debug, Parser)]
#[command(name = "haven", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before or after the subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Repository location: a directory path or `local:PATH`.
    #[arg(
        long,
        short = 'r',
        env = "HAVEN_REPO",
        global = true,
        value_name = "REPO"
    )]
    pub repo: Option<String>,
    /// Read the repository password from this file (first line).
    #[arg(long, env = "HAVEN_PASSWORD_FILE", global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// The data dir of a Haven instance (settings, database, API token).
    #[arg(
        long,
        env = "HAVEN_DATA_DIR",
        global = true,
        value_name = "DIR",
        default_value = "haven-data"
    )]
    pub data_dir: PathBuf,
    /// Print exactly one JSON document on stdout (logs go to stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (repeat for more).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Reach the Haven server at this address (`HOST:PORT`) instead of
    /// the data dir's. Act as a user with `HAVEN_TOKEN` (a token of
    /// yours, `haven token create`); without it, the data dir's api-token.
    #[arg(long, env = "HAVEN_SERVER", global = true, value_name = "ADDRESS")]
    pub server: Option<String>,
    /// An admin's reason to make a four-eyes change without approval
    /// (break-glass: a critical alert, marked in the audit log, a review
    /// due within 72 hours; docs/access.md).
    #[arg(long, global = true, value_name = "REASON")]
    pub break_glass: Option<String>,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, check and inspect repositories.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Back up files and directories into a new snapshot.
    Backup(BackupArgs),
    /// List snapshots.
    Snapshots(SnapshotsArgs),
    /// Restore a snapshot, or a path inside it, into a directory.
    Restore(RestoreArgs),
    /// Remove snapshots that a retention policy does not keep, or the
    /// snapshots named.
    Forget(ForgetArgs),
    /// Reclaim the space of data no snapshot needs (two phases: mark now,
    /// delete after a grace period, safe alongside running backups).
    Prune(PruneArgs),
    /// Copy snapshots to a second repository with its own keys (only data
    /// the target lacks is stored; snapshots already there are skipped).
    Copy(CopyArgs),
    /// Legal holds: snapshots that must not be removed until the hold is lifted.
    #[command(subcommand)]
    Hold(HoldCommand),
    /// The continuity catalog: services, objectives, dependencies and
    /// policies as TOML files.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Recovery planning from the catalog.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// The business impact analysis: one row per service, highest impact
    /// first.
    Bia(BiaArgs),
    /// Run the continuity server: schedules backups, retention, copies
    /// and checks by policy, records every job, computes RPO compliance,
    /// serves the API.
    Server(ServerArgs),
    /// RPO compliance per service and system, worst first, with the next
    /// scheduled run.
    Status(StatusArgs),
    /// Job history, newest first.
    Jobs(JobsArgs),
    /// One job.
    #[command(subcommand)]
    Job(JobCommand),
    /// Back up a system now (through the running server, or in the
    /// foreground when none runs).
    Run(RunArgs),
    /// A demo instance from examples/acme: sample data, a local repository,
    /// the server in the foreground with its first backups at once.
    Demo(DemoArgs),
    /// Alerts, newest first (grouped by service in the table).
    Alerts(AlertsArgs),
    /// One alert: show, acknowledge or resolve it.
    #[command(subcommand)]
    Alert(AlertCommand),
    /// Maintenance windows: alerts inside them are recorded, not notified.
    #[command(subcommand)]
    Maintenance(MaintenanceCommand),
    /// Prove a system recoverable: restore its snapshots into a sandbox,
    /// run its checks, measure the RTO and RPO achieved, judge them
    /// against its services' objectives. Exit 1 when the drill fails.
    Drill(DrillArgs),
    /// Recorded drills, newest first: verdict, measured RTO, achieved RPO.
    Drills(DrillsArgs),
    /// Bring services back from their backups in dependency order:
    /// pre-flight, restores, recovery steps, checks and checkpoints,
    /// recorded as evidence; `--dry-run` shows the waves, steps and
    /// forecast instead.
    Recover(RecoverArgs),
    /// Pre-flight checks before anyone is paged: repositories reachable
    /// and initialised, secrets readable, commands found, data-dir space,
    /// the clock. Exit 1 with the list of problems.
    Doctor(DoctorArgs),
    /// Notification channels.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// The audit log: who changed what, provably (`verify`, `log`).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Local users (`add`, `list`, `disable`, `reset-password`).
    #[command(subcommand)]
    User(UserCommand),
    /// API tokens of users and automations (`create`, `list`, `revoke`).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Four-eyes requests: changes waiting for a second person
    /// (`list`, `show`, `approve`, `reject`, `review`).
    #[command(subcommand)]
    Request(RequestCommand),
}

/// `haven request …`
#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Requests, newest first.
    List {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// Only those in this state: pending, approved, rejected,
        /// expired, break-glass.
        #[arg(long, value_name = "STATE", value_parser = parse_request_state)]
        state: Option<haven_model::approval::RequestState>,
    },
    /// One request: what it changes, why, who asked, where it stands.
    Show {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// Its number.
        id: i64,
    },
    /// Approve another user's request: it runs now, as they asked.
    Approve {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// Its number.
        id: i64,
        /// What you checked.
        #[arg(long)]
        note: Option<String>,
    },
    /// Reject a request, with the reason its requester will see.
    Reject {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// Its number.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Close the review of a break-glass change.
    Review {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// Its number.
        id: i64,
        /// What the review found.
        #[arg(long)]
        note: String,
    },
}

fn parse_request_state(s: &str) -> Result<haven_model::approval::RequestState, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
        format!("unknown state {s:?}: one of pending, approved, rejected, expired, break-glass")
    })
}

/// `haven user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is asked for (or read from stdin with
    /// --password-stdin): at least 12 characters, not the name, not a
    /// well-known one.
    Add {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// Login name.
        name: String,
        /// A role (repeat): admin, operator, restore-operator, approver,
        /// auditor, service-owner.
        #[arg(long = "role", value_name = "ROLE", required = true, value_parser = parse_role)]
        roles: Vec<haven_model::access::Role>,
        /// A team (repeat): a service owner acts on its teams' services.
        #[arg(long = "team", value_name = "TEAM")]
        teams: Vec<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Every user.
    List {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
    },
    /// Disable a user: no login, its tokens stop working.
    Disable {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// Login name.
        name: String,
    },
    /// Change a user's roles (and teams): what they may do from their
    /// next request on (their tokens act with at most these).
    Roles {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// Login name.
        name: String,
        /// A role (repeat): the user's roles from now on.
        #[arg(long = "role", value_name = "ROLE", required = true, value_parser = parse_role)]
        roles: Vec<haven_model::access::Role>,
        /// A team (repeat): the user's teams from now on (unchanged when
        /// none is given).
        #[arg(long = "team", value_name = "TEAM")]
        teams: Vec<String>,
    },
    /// Set a user's password (asked for, or read from stdin).
    ResetPassword {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// Login name.
        name: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Give a user a new TOTP seed for an authenticator app (printed
    /// once, with its otpauth:// URI); their console logins then need
    /// its code.
    Totp {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// Login name.
        name: String,
    },
}

/// `haven token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print its secret (shown this once; only its hash
    /// is kept).
    Create {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// What it is for.
        name: String,
        /// The user it acts for (with some of the user's roles).
        #[arg(
            long,
            value_name = "USER",
            conflicts_with = "automation",
            required_unless_present = "automation"
        )]
        user: Option<String>,
        /// The automation it is for (a CI job, a probe).
        #[arg(long, value_name = "NAME")]
        automation: Option<String>,
        /// A role (repeat).
        #[arg(long = "role", value_name = "ROLE", required = true, value_parser = parse_role)]
        roles: Vec<haven_model::access::Role>,
        /// How long it lives (at most a year).
        #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = parse_lifetime)]
        expires: jiff::SignedDuration,
    },
    /// Every token (ids, owners, roles, expiry; never secrets).
    List {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
    },
    /// Revoke a token: it stops working at once.
    Revoke {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// The token's id (`tok_…`).
        id: String,
    },
}

fn parse_role(s: &str) -> Result<haven_model::access::Role, String> {
    haven_model::access::Role::parse(s)
}

fn parse_lifetime(s: &str) -> Result<jiff::SignedDuration, String> {
    haven_model::catalog::duration::parse_duration(s)
}

/// `haven audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the log's Merkle tree and check it against every signed
    /// checkpoint (in the database and in the export file): exit 1 with
    /// the first bad entry when anything was edited, inserted, deleted,
    /// reordered or truncated.
    Verify {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// Also against the checkpoints anchored in this repository
        /// (repeat; `all` for every repository of the catalog).
        #[arg(long, value_name = "REPO")]
        against: Vec<String>,
    },
    /// Write the log's newest checkpoint into every repository now (the
    /// server does it every ten minutes while the log grows).
    Anchor {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
    },
    /// Entries with their inclusion proofs and the signed checkpoint
    /// they lead to, as one JSON document (stdout) an auditor verifies
    /// offline with `haven audit verify-export`.
    Export {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// From this entry on.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Up to (not including) this entry (default: the end).
        #[arg(long)]
        to: Option<u64>,
    },
    /// Check an export offline (no database): the checkpoint's signature
    /// and every entry's inclusion proof; exit 1 when anything fails.
    VerifyExport {
        /// The export file.
        file: PathBuf,
        /// The log's public key file (DATA_DIR/audit/log.pub); without
        /// it, the key the export carries is used and printed, to compare.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// The entries, oldest first.
    Log {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// From this entry on.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: u64,
        /// Only entries whose actor contains this (`user:ana`).
        #[arg(long)]
        actor: Option<String>,
        /// Only entries whose action starts with this (`recovery.`).
        #[arg(long)]
        action: Option<String>,
        /// Only entries whose target contains this.
        #[arg(long)]
        target: Option<String>,
        /// Only entries with this outcome (`success`, `refused`, `failed`).
        #[arg(long)]
        outcome: Option<String>,
        /// The newest matches first (among the newest 100,000 entries;
        /// `--from` is ignored).
        #[arg(long)]
        newest: bool,
    },
}

/// `haven alerts`
#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// Instance settings.
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// Only open and acknowledged alerts.
    #[arg(long)]
    pub open: bool,
    /// Only this service's alerts.
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

/// `haven alert …`
#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Everything about one alert, with its delivery attempts.
    Show {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// The alert's number.
        id: i64,
    },
    /// Take an alert: its escalation stops.
    Ack {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// The alert's number.
        id: i64,
        /// Who takes it (default: $USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Resolve an alert by hand (one whose condition clears resolves itself).
    Resolve {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// The alert's number.
        id: i64,
        /// Why it is resolved.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Who resolves it (default: $USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
}

/// `haven maintenance …`
#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// The catalog's windows and those added here, active first.
    List {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
    },
    /// Add a one-off window now or later.
    Add(MaintenanceAddArgs),
    /// End a window now (one added here, `mN`, or the current occurrence
    /// of a catalog window).
    End {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// The window's id (`m3`, or a catalog id).
        id: String,
        /// Who ends it (default: $USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
}

/// `haven maintenance add`
#[derive(Debug, Args)]
pub struct MaintenanceAddArgs {
    /// Instance settings.
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// Services covered (with the systems they depend on); repeatable.
    #[arg(long = "service", value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Systems covered; repeatable.
    #[arg(long = "system", value_name = "SYSTEM")]
    pub systems: Vec<String>,
    /// Repositories covered; repeatable.
    #[arg(long = "repository", value_name = "REPOSITORY")]
    pub repositories: Vec<String>,
    /// Cover everything (no --service/--system/--repository).
    #[arg(long)]
    pub all: bool,
    /// Start (RFC 3339, or `now`; default now).
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// How long (`2h`, `1d`).
    #[arg(long = "for", value_name = "DURATION", conflicts_with = "end")]
    pub duration: Option<String>,
    /// End (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// Why.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Who adds it (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

/// `haven notify …`
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test message through a channel and report the delivery
    /// (exit 1 when no attempt succeeded).
    Test {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// The channel's id.
        channel: String,
    },
}

/// Settings a flag or `HAVEN_*` variable overrides (over `haven.toml`).
#[derive(Debug, Args)]
pub struct InstanceArgs {
    /// Catalog directory (default: `catalog` in haven.toml, else
    /// DATA_DIR/catalog).
    #[arg(long, env = "HAVEN_CATALOG", value_name = "DIR")]
    pub catalog: Option<PathBuf>,
    /// Database URL (default: `database` in haven.toml, else
    /// sqlite://DATA_DIR/haven.db).
    #[arg(long, env = "HAVEN_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
}

/// `haven server`
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Instance settings.
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// Address of the HTTP API (default: `listen` in haven.toml, else
    /// 127.0.0.1:8080).
    #[arg(long, env = "HAVEN_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
}

/// `haven status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Instance settings.
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// Only services and systems in this state.
    #[arg(long, value_parser = ["quarantined", "violated", "unprotected", "at-risk", "ok", "n/a"])]
    pub state: Option<String>,
    /// Exit 1 when any service or system is in this state (for
    /// deployment pipelines).
    #[arg(long, value_name = "STATE", value_parser = ["quarantined", "violated", "unprotected", "at-risk"])]
    pub fail_on: Option<String>,
}

/// `haven drill`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct DrillArgs {
    /// One recorded drill as a report (as `haven drills show`).
    #[command(subcommand)]
    pub command: Option<DrillsCommand>,
    /// Instance settings.
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// The service (its backed-up systems in recovery order) or the
    /// system to drill.
    #[arg(value_name = "SERVICE|SYSTEM", required = true)]
    pub system: Option<String>,
    /// This snapshot (an id prefix) instead of the newest.
    #[arg(long, value_name = "ID", conflicts_with = "at")]
    pub snapshot: Option<String>,
    /// The newest snapshots taken at or before this time.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<jiff::Timestamp>,
    /// Keep the sandbox afterwards, for forensics (its path is printed).
    #[arg(long)]
    pub keep: bool,
}

/// `haven drills`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DrillsArgs {
    /// One drill as a report.
    #[command(subcommand)]
    pub command: Option<DrillsCommand>,
    /// Instance settings.
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// Only this system's drills.
    #[arg(long, conflicts_with = "service")]
    pub system: Option<String>,
    /// Only this service's drills (drills of the service as a whole).
    #[arg(long)]
    pub service: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// The measured-RTO trend per service and per system over their
    /// passing drills, instead of the list.
    #[arg(long)]
    pub trend: bool,
}

/// `haven drills show`
#[derive(Debug, Subcommand)]
pub enum DrillsCommand {
    /// One recorded drill as a report: text, Markdown, a self-contained
    /// HTML page (objectives vs measured, checks, the step timeline as
    /// an SVG chart) or JSON.
    Show {
        /// The drill's number (`haven drills`).
        id: i64,
        /// The report's format.
        #[arg(long, default_value = "md", value_parser = ["md", "html", "json"])]
        format: String,
    },
}

/// `haven recover`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["plan", "services", "all", "resume"])))]
pub struct RecoverArgs {
    /// A recorded run: its state, a decision on one of its steps, or its
    /// report.
    #[command(subcommand)]
    pub command: Option<RecoverCommand>,
    /// Instance settings.
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// A `[[plan]]` of the catalog.
    #[arg(long, value_name = "NAME")]
    pub plan: Option<String>,
    /// These services (comma separated) and everything they need.
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub services: Vec<String>,
    /// Every service of the catalog.
    #[arg(long)]
    pub all: bool,
    /// Recover every system to its newest snapshot taken at or before
    /// this time (before an infection); the data lost is reported.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<jiff::Timestamp>,
    /// Where restored data goes: `original` (every file at its own path,
    /// dumps into their set's recover_command) or `alternate:DIR` (each
    /// system under DIR/SYSTEM as in a drill's sandbox, dumps as files).
    #[arg(long, value_name = "original|alternate:DIR", default_value = "original", value_parser = parse_target)]
    pub target: haven_model::recovery::run::RestoreTarget,
    /// Show the waves, the steps and the forecast against each service's
    /// RTO and MTD; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Continue run RUN, stopped midway, without redoing finished steps.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["dry_run", "at", "force"])]
    pub resume: Option<i64>,
    /// Why the recovery runs (recorded with it).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Run despite blocking pre-flight findings (needs --reason).
    #[arg(long, requires = "reason")]
    pub force: bool,
}

/// `haven recover status|confirm|retry|skip|abandon|report`
#[derive(Debug, Subcommand)]
pub enum RecoverCommand {
    /// A run as it stands (every run, newest first, without RUN).
    Status {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// The run's number.
        run: Option<i64>,
    },
    /// Confirm a checkpoint the run waits at.
    Confirm {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// The run's number.
        run: i64,
        /// The step's number.
        step: u32,
        /// Who confirms (recorded).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        /// What was checked (recorded).
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
    /// Run a failed step again.
    Retry {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// The run's number.
        run: i64,
        /// The step's number.
        step: u32,
        /// Why (recorded).
        #[arg(long, value_name = "TEXT", required = true)]
        reason: String,
        /// Who decides (recorded).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Go on without a failed step or a checkpoint.
    Skip {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// The run's number.
        run: i64,
        /// The step's number.
        step: u32,
        /// Why (recorded).
        #[arg(long, value_name = "TEXT", required = true)]
        reason: String,
        /// Who decides (recorded).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Close an interrupted run for good (it will not be resumed).
    Abandon {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// The run's number.
        run: i64,
        /// Why (recorded).
        #[arg(long, value_name = "TEXT", required = true)]
        reason: String,
        /// Who decides (recorded).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// A run as a report: Markdown, a self-contained HTML page (objectives
    /// vs measured, the run as a Gantt chart) or JSON.
    Report {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// The run's number.
        run: i64,
        /// The report's format.
        #[arg(long, default_value = "md", value_parser = ["md", "html", "json"])]
        format: String,
    },
}

fn parse_target(s: &str) -> Result<haven_model::recovery::run::RestoreTarget, String> {
    haven_model::recovery::run::RestoreTarget::parse(s)
}

/// `haven doctor`
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Instance settings.
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// Also send a test message through every channel of the catalog.
    #[arg(long)]
    pub send_test: bool,
}

/// `haven jobs`
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Instance settings.
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// Only this system's jobs.
    #[arg(long, value_name = "SYSTEM")]
    pub system: Option<String>,
    /// Only failed and interrupted jobs.
    #[arg(long)]
    pub failed: bool,
    /// Only jobs due in this recent period (`24h`, `7d`) or since this
    /// time (RFC 3339).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

/// `haven job …`
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Everything recorded about one job, with its log excerpt.
    Show {
        /// Instance settings.
        #[command(flatten)]
        instance: InstanceArgs,
        /// The job's number.
        id: i64,
    },
}

/// `haven run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Instance settings.
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// The system to back up.
    pub system: String,
    /// With a server: wait for the queued jobs to end, show them, and
    /// exit with their outcome (as a run without a server does).
    #[arg(long)]
    pub wait: bool,
}

/// `haven demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address of the HTTP API.
    #[arg(long, env = "HAVEN_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// The example catalog to start from.
    #[arg(long, value_name = "DIR", default_value = "examples/acme")]
    pub from: PathBuf,
    /// Set up the data dir and exit, without starting the server.
    #[arg(long)]
    pub no_server: bool,
}

/// `haven bia`
#[derive(Debug, Args)]
pub struct BiaArgs {
    /// Where the catalog is.
    #[command(flatten)]
    pub dir: CatalogDirArgs,
    /// Output format (`--json` implies json).
    #[arg(long, default_value = "table", value_parser = ["table", "json", "csv", "markdown"])]
    pub format: String,
    /// Rank by financial impact per hour (`quantitative`) or by the 1–5
    /// ratings (`qualitative`).
    #[arg(long, default_value = "quantitative", value_parser = ["quantitative", "qualitative"])]
    pub scoring: String,
}

/// `haven catalog …`
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Validate and analyse the catalog; report every problem at once
    /// (exit 1 on errors, 0 with warnings only).
    Check(CatalogDirArgs),
    /// Print a JSON Schema of the catalog format (for editor completion,
    /// e.g. with taplo or Even Better TOML).
    Schema,
    /// Print the dependency graph.
    Graph {
        /// Where the catalog is.
        #[command(flatten)]
        dir: CatalogDirArgs,
        /// `dot` (Graphviz) or `mermaid`.
        #[arg(long, default_value = "dot", value_parser = ["dot", "mermaid"])]
        format: String,
    },
}

/// `haven plan …`
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// The recovery order as waves (foundations first, then by
    /// dependencies; within a wave by tier, then impact), with the
    /// critical path.
    Order {
        /// Services to recover (default: the whole catalog).
        #[arg(value_name = "SERVICE")]
        services: Vec<String>,
        /// Catalog directory (default: HAVEN_CATALOG, else the data dir's
        /// settings, else ./catalog).
        #[arg(long = "catalog", env = "HAVEN_CATALOG", value_name = "DIR")]
        catalog: Option<PathBuf>,
    },
}

/// Where the catalog is.
#[derive(Debug, Args)]
pub struct CatalogDirArgs {
    /// Catalog directory (default: --catalog, HAVEN_CATALOG, the data
    /// dir's settings, else ./catalog).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Catalog directory.
    #[arg(long = "catalog", env = "HAVEN_CATALOG", value_name = "DIR")]
    pub catalog: Option<PathBuf>,
}

impl CatalogDirArgs {
    /// The directory to read: DIR, else --catalog / HAVEN_CATALOG, else
    /// the catalog named in the data dir's settings, else ./catalog.
    pub fn resolve(&self, global: &GlobalArgs) -> anyhow::Result<PathBuf> {
        match self.dir.clone().or_else(|| self.catalog.clone()) {
            Some(dir) => Ok(dir),
            None => default_catalog(global),
        }
    }
}

/// The catalog named in `<data dir>/haven.toml`, else the data dir's
/// `catalog/`, else `./catalog`.
pub fn default_catalog(global: &GlobalArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = haven_ops::instance::configured_catalog(&global.data_dir)? {
        return Ok(dir);
    }
    // A data dir's catalog is its `catalog/` unless its settings say
    // otherwise (as its server reads it).
    let own = global.data_dir.join("catalog");
    Ok(if own.is_dir() {
        own
    } else {
        PathBuf::from("catalog")
    })
}

/// `haven hold …`
#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// Place a legal hold on a snapshot.
    Add {
        /// Snapshot id prefix or `latest`.
        snapshot: String,
        /// Why (case, matter, ticket); recorded with the hold.
        #[arg(long)]
        reason: String,
        /// Act on this catalog repository through the instance (its
        /// roles, four eyes for lifting, the audit log) instead of --repo.
        #[arg(long, value_name = "ID")]
        repository: Option<String>,
        /// Instance settings (with --repository).
        #[command(flatten)]
        instance: InstanceArgs,
    },
    /// Lift a snapshot's legal hold.
    Remove {
        /// Snapshot id prefix or `latest`.
        snapshot: String,
        /// Why the hold is lifted (shown in the output and logs).
        #[arg(long)]
        reason: String,
        /// Which hold, when the snapshot has several (id prefix from `hold list`).
        #[arg(long, value_name = "HOLD")]
        hold: Option<String>,
        /// Act on this catalog repository through the instance (its
        /// roles, four eyes for lifting, the audit log) instead of --repo.
        #[arg(long, value_name = "ID")]
        repository: Option<String>,
        /// Instance settings (with --repository).
        #[command(flatten)]
        instance: InstanceArgs,
    },
    /// List legal holds (of one snapshot, or all).
    List {
        /// Snapshot id prefix or `latest`.
        snapshot: Option<String>,
        /// Act on this catalog repository through the instance (its
        /// roles, four eyes for lifting, the audit log) instead of --repo.
        #[arg(long, value_name = "ID")]
        repository: Option<String>,
        /// Instance settings (with --repository).
        #[command(flatten)]
        instance: InstanceArgs,
    },
}

/// `haven repo …`
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create a new repository.
    Init(InitArgs),
    /// Verify the repository's structure and, optionally, its data.
    Check(CheckArgs),
    /// Show space used, deduplication and compression.
    Stats,
    /// Rebuild the index from the packs present and name the snapshots
    /// whose data is gone, so that new backups store it again.
    Repair(RepairArgs),
    /// Manage the passwords (keys) that open the repository.
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `haven repo key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List keys (the one in use is marked).
    List,
    /// Add a key for a new password.
    Add(NewPasswordArgs),
    /// Remove a key (not the last one, not the one in use).
    Remove {
        /// Key id or prefix (see `haven repo key list`).
        #[arg(value_name = "KEY")]
        key: String,
    },
    /// Replace the key in use by one for a new password (for a compromised
    /// or departing password; see the README).
    Rotate(NewPasswordArgs),
}

/// Where the new password comes from.
#[derive(Debug, Args)]
pub struct NewPasswordArgs {
    /// Read the new password from this file (first line); otherwise
    /// `HAVEN_NEW_PASSWORD`, or a prompt on a terminal.
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
}

/// `haven repo init`
#[derive(Debug, Args)]
pub struct InitArgs {
    /// zstd compression level for new data (0 = none, 1–22).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(0..=22))]
    pub compression: i32,
    /// Target pack file size in MiB.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(4..=256))]
    pub pack_size_mib: u64,
    /// Create every repository of the catalog that does not exist yet,
    /// each with the password its `password` reference holds.
    #[arg(long)]
    pub all: bool,
    /// The catalog (with --all; default: the data dir's, else ./catalog).
    #[arg(long, value_name = "DIR", requires = "all")]
    pub catalog: Option<PathBuf>,
}

/// `haven repo repair`
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Remove the snapshots whose data is gone (never locked or held ones).
    #[arg(long)]
    pub forget_damaged: bool,
}

/// `haven repo check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Read and verify all stored data.
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Read and verify a random share of packs, e.g. `10` or `10%`.
    #[arg(long, value_name = "PCT", value_parser = parse_percent)]
    pub read_data_subset: Option<f64>,
}

/// `haven backup`
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Files and directories to back up.
    #[arg(
        value_name = "PATH",
        required_unless_present = "stdin_from",
        conflicts_with = "stdin_from"
    )]
    pub paths: Vec<PathBuf>,
    /// Back up the standard output of this shell command (e.g. `pg_dump mydb`)
    /// as one file, without a temporary copy. A non-zero exit fails the backup.
    #[arg(long, value_name = "COMMAND")]
    pub stdin_from: Option<String>,
    /// File name of the streamed data in the snapshot.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "stdin",
        requires = "stdin_from"
    )]
    pub stdin_name: String,
    /// Shell command run before the backup; if it fails, nothing is backed up.
    #[arg(long, value_name = "CMD")]
    pub pre_hook: Option<String>,
    /// Shell command run after the backup, whatever happened; it gets
    /// `HAVEN_BACKUP_STATUS=success|failed` and `HAVEN_SNAPSHOT_ID`.
    #[arg(long, value_name = "CMD")]
    pub post_hook: Option<String>,
    /// Time limit of each hook (e.g. `30s`, `5m`); a hook over it is killed.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub hook_timeout: std::time::Duration,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's).
    #[arg(long)]
    pub host: Option<String>,
    /// Leave out paths matching this glob (repeatable).
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Retention lock: no command may remove the snapshot before this time
    /// (`2027-06-30` = midnight UTC starting that day, or an RFC 3339 time).
    #[arg(long, value_name = "DATE", value_parser = parse_lock_until)]
    pub lock_until: Option<jiff::Timestamp>,
    /// Where the repository is an S3 bucket with Object Lock, the locked
    /// snapshot's objects get a retention date in this mode: `governance`
    /// (privileged users may lift it) or `compliance` (nobody can).
    #[arg(
        long,
        value_name = "MODE",
        env = "HAVEN_OBJECT_LOCK_MODE",
        default_value = "governance"
    )]
    pub object_lock_mode: haven_engine::object_lock::LockMode,
    /// Read every file, ignoring the parent snapshot.
    #[arg(long)]
    pub force: bool,
}

/// `haven forget`
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Remove exactly these snapshots (id prefixes) instead of applying a
    /// policy; protected snapshots are refused with the reason.
    #[arg(value_name = "SNAPSHOT", conflicts_with_all = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within"])]
    pub snapshots: Vec<String>,
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_last: u32,
    /// Keep the newest snapshot of each of the last N hours with snapshots.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_hourly: u32,
    /// Keep the newest snapshot of each of the last N days with snapshots.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_daily: u32,
    /// Keep the newest snapshot of each of the last N ISO weeks with snapshots.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_weekly: u32,
    /// Keep the newest snapshot of each of the last N months with snapshots.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_monthly: u32,
    /// Keep the newest snapshot of each of the last N years with snapshots.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_yearly: u32,
    /// Keep every snapshot taken less than this long ago (e.g. `30d`, `2w`, `12h`).
    #[arg(long, value_name = "DURATION", value_parser = parse_span)]
    pub keep_within: Option<jiff::SignedDuration>,
    /// Apply the policy separately per group: `host`, `paths`, `tags`, a
    /// comma-separated combination, or `none`.
    #[arg(long, value_name = "FIELDS", default_value = "host,paths")]
    pub group_by: haven_model::retention::GroupBy,
    /// Show what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Prune afterwards (see `haven prune`).
    #[arg(long)]
    pub prune: bool,
    /// Prune settings, used with --prune.
    #[command(flatten)]
    pub tuning: PruneTuning,
}

/// `haven copy`
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The target repository (same forms as --repo).
    #[arg(long, env = "HAVEN_REPO2", value_name = "REPO2")]
    pub to: String,
    /// The target's password file (first line); else `HAVEN_PASSWORD2`
    /// or a prompt.
    #[arg(long, env = "HAVEN_PASSWORD_FILE2", value_name = "FILE")]
    pub password_file2: Option<PathBuf>,
    /// Snapshots to copy (id prefixes or `latest`); default: all.
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// Only snapshots of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only snapshots with this tag (repeatable: all must match).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Read every copy back from the target and compare it, file by file,
    /// with the source.
    #[arg(long)]
    pub verify: bool,
}

/// `haven prune`
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Show what would be marked and deleted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Prune settings.
    #[command(flatten)]
    pub tuning: PruneTuning,
}

/// Settings shared by `prune` and `forget --prune`.
#[derive(Debug, Args)]
pub struct PruneTuning {
    /// Unused space tolerated in partly used packs, in percent of the used
    /// space; packs are repacked until it is reached (0 repacks every
    /// partly used pack, 100 none).
    #[arg(long, value_name = "PCT", default_value = "5", value_parser = parse_percent_or_zero)]
    pub max_unused: f64,
    /// Time between marking data unused and deleting it. Must be longer
    /// than the longest backup the repository has seen plus 10 minutes
    /// (shorter is refused unless --i-know-backups-are-stopped).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_span)]
    pub grace: jiff::SignedDuration,
    /// Remove a prune lock that another host (or a reused process id)
    /// holds. Only when no prune is running.
    #[arg(long)]
    pub break_lock: bool,
    /// No backup, copy or server writes to the repository now: allows a
    /// --grace shorter than the longest backup (`0s` deletes at once), and
    /// on a full disk deletes unused data before writing anything.
    #[arg(long)]
    pub i_know_backups_are_stopped: bool,
}

/// `haven snapshots`
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// Only snapshots of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only snapshots with this tag (repeatable: all must match).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
}

/// `haven restore`
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A catalog system (`SYSTEM` or `SYSTEM:SET`: repository, password
    /// and snapshots come from the catalog), or `SNAPSHOT[:PATH]` of the
    /// repository given by --repo (`latest` or an id prefix).
    #[arg(value_name = "SYSTEM[:SET] | SNAPSHOT[:PATH]")]
    pub what: String,
    /// Directory to restore into (created if missing; refused when it
    /// holds files, unless --overwrite).
    #[arg(
        long,
        short = 't',
        value_name = "DIR",
        required_unless_present = "to_command"
    )]
    pub target: Option<PathBuf>,
    /// Only restore paths matching this glob (repeatable).
    #[arg(long = "include", value_name = "GLOB")]
    pub includes: Vec<String>,
    /// System restore: this snapshot (an id prefix) of the system.
    #[arg(long, value_name = "ID", conflicts_with = "at")]
    pub snapshot: Option<String>,
    /// System restore: the system's newest snapshot taken at or before
    /// this time (RFC 3339, or a date).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<jiff::Timestamp>,
    /// Restore into a target that holds files, replacing what is there.
    #[arg(long)]
    pub overwrite: bool,
    /// System restore of a dump: pipe it into this command instead of
    /// writing a file (e.g. "pg_restore -d orders").
    #[arg(long, value_name = "COMMAND", conflicts_with = "target")]
    pub to_command: Option<String>,
    /// The catalog (default: the data dir's, else ./catalog).
    #[arg(long, value_name = "DIR")]
    pub catalog: Option<PathBuf>,
}

/// A time: RFC 3339, or a date (its start, UTC).
pub fn parse_time(s: &str) -> Result<jiff::Timestamp, String> {
    s.parse::<jiff::Timestamp>()
        .or_else(|_| {
            s.parse::<jiff::civil::Date>()
                .map_err(|e| e.to_string())
                .and_then(|d| {
                    d.to_zoned(jiff::tz::TimeZone::UTC)
                        .map(|z| z.timestamp())
                        .map_err(|e| e.to_string())
                })
        })
        .map_err(|_| {
            format!(
                "{s:?} is not a time: give RFC 3339 (2026-11-20T03:00:00Z) or a date (2026-11-20)"
            )
        })
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let value: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage (e.g. 10 or 12.5%)"))?;
    if value > 0.0 && value <= 100.0 {
        Ok(value)
    } else {
        Err(format!("{s} must be above 0 and at most 100"))
    }
}

fn parse_percent_or_zero(s: &str) -> Result<f64, String> {
    let value: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage (e.g. 5 or 12.5%)"))?;
    if (0.0..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{s} must be between 0 and 100"))
    }
}

/// A human duration: `30s`, `5m`, `1h 30m`, `2d`, `2w` (days are 24 h;
/// months and years have no fixed length and are refused).
pub fn parse_span(s: &str) -> Result<jiff::SignedDuration, String> {
    let span: jiff::Span = s
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (use e.g. 30s, 5m, 1h 30m, 2d, 2w)"))?;
    let duration = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|_| format!("{s:?}: use days or weeks instead of months or years"))?;
    if duration.is_negative() {
        return Err(format!("{s:?} must not be negative"));
    }
    Ok(duration)
}

/// [`parse_span`] as a standard duration.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    std::time::Duration::try_from(parse_span(s)?).map_err(|_| format!("{s:?} is out of range"))
}

/// `YYYY-MM-DD` (midnight UTC) or an RFC 3339 timestamp, in the future.
pub fn parse_lock_until(s: &str) -> Result<jiff::Timestamp, String> {
    let at = match s.parse::<jiff::Timestamp>() {
        Ok(t) => t,
        Err(_) => s
            .parse::<jiff::civil::Date>()
            .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"))?
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|e| format!("{s:?}: {e}"))?
            .timestamp(),
    };
    if at <= jiff::Timestamp::now() {
        return Err(format!(
            "{s:?} is in the past: a retention lock must end in the future"
        ));
    }
    Ok(at)
}
