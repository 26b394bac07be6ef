//! Recovery as declared: `[[plan]]` entries (which services a recovery
//! brings back, how many side by side, which tiers wait) and each
//! service's `[[service.recovery]]` steps, run after its data is restored
//! and before its checks: commands, SQL, probes, waits, and checkpoints
//! where a person confirms what software cannot see.

use jiff::SignedDuration;
use serde::Serialize;

use super::{EnvVar, Located, Origin};

/// How many services a plan restores side by side unless it says.
pub const DEFAULT_CONCURRENCY: u32 = 4;

/// A `[[plan]]` entry.
#[derive(Clone, Debug, Serialize)]
pub struct RecoveryPlan {
    /// Unique id.
    pub id: Located<String>,
    /// What it is for ("ransomware: rebuild everything from backups").
    pub description: Option<String>,
    /// The services it brings back (with everything they need).
    pub services: PlanServices,
    /// Services restored side by side within a wave, at most.
    pub concurrency: u32,
    /// Tiers left for later: their services are not recovered by this
    /// plan unless a recovered service needs them.
    pub defer_tiers: Vec<u8>,
}

/// The services of a plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanServices {
    /// Every service of the catalog (`services = "all"`).
    All,
    /// These (and what they need).
    Listed(Vec<Located<String>>),
}

/// One step of a service's recovery, after its data is restored.
#[derive(Clone, Debug, Serialize)]
pub struct RecoveryStep {
    /// Its name in the run (default: from its action).
    pub name: Option<String>,
    /// What it does.
    pub action: StepAction,
    /// A failed critical step halts the run until someone retries or
    /// skips it; a failed non-critical one is recorded and the run goes on.
    pub critical: bool,
    /// How long it may take (commands, SQL, probes).
    pub timeout: Option<SignedDuration>,
    /// Where it was written.
    #[serde(skip)]
    pub at: Origin,
}

/// What a recovery step does.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum StepAction {
    /// Run a command; compare exit code and (optionally) output.
    Command {
        /// The command line.
        run: String,
        /// Expected exit code.
        expect_exit: i64,
        /// Text the output must contain.
        expect_output: Option<String>,
        /// Its environment (credentials by reference).
        env: Vec<EnvVar>,
    },
    /// Run a query with `psql` (connection from `env`: `PGHOST`, …);
    /// compare its first value.
    Sql {
        /// The query.
        query: String,
        /// Expected result (as text).
        expect: String,
        /// The connection's environment (credentials by reference).
        env: Vec<EnvVar>,
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
    /// Wait (a cache to warm, a replica to catch up).
    Wait {
        /// How long.
        duration: SignedDuration,
    },
    /// A person confirms (`haven recover confirm RUN STEP`).
    Checkpoint {
        /// What to check and confirm.
        prompt: String,
    },
}

impl StepAction {
    /// The action's type as written.
    pub fn type_name(&self) -> &'static str {
        match self {
            StepAction::Command { .. } => "command",
            StepAction::Sql { .. } => "sql",
            StepAction::Http { .. } => "http",
            StepAction::Tcp { .. } => "tcp",
            StepAction::Wait { .. } => "wait",
            StepAction::Checkpoint { .. } => "checkpoint",
        }
    }
}

impl RecoveryStep {
    /// Its name in a run: the declared one, else from its action.
    pub fn display_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match &self.action {
            StepAction::Command { run, .. } => format!("command `{run}`"),
            StepAction::Sql { query, .. } => format!("sql `{query}`"),
            StepAction::Http { url, .. } => format!("http {url}"),
            StepAction::Tcp { address } => format!("tcp {address}"),
            StepAction::Wait { duration } => {
                format!("wait {}", super::duration::format_duration(*duration))
            }
            StepAction::Checkpoint { prompt } => format!("checkpoint: {prompt}"),
        }
    }
}
