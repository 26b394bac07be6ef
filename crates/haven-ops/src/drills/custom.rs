//! "Anything else": a set that says how to load its restored dump
//! (`restore_command`) and how to start the restored service (`start`).
//! Both run with `HAVEN_SANDBOX`, `HAVEN_RESTORE_FILE` (the restored dump
//! of a stream set) and `HAVEN_PORT` (a free port on the loopback, the
//! only place a drill's probes may reach). The started service is killed
//! with its whole process group when the drill ends.

use std::path::Path;
use std::time::{Duration, Instant};

use haven_model::catalog::BackupSet;
use haven_model::drills::{Step, StepKind};
use jiff::{SignedDuration, Timestamp};

use super::DRILL_COMMANDS;
use crate::jobs::Background;
use crate::jobs::command::{CommandError, for_job, run_with_timeout};

/// How long loading a dump may take.
const LOAD_TIMEOUT: Duration = Duration::from_secs(4 * 3600);
/// How long a started service has to listen on its port.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The sandbox's environment for a set's commands and checks.
#[derive(Clone, Debug)]
pub(super) struct SandboxEnv {
    /// A free port on the loopback for the started service.
    pub port: u16,
    vars: Vec<(String, String)>,
}

impl SandboxEnv {
    /// For `sandbox`, with a free loopback port.
    pub fn new(sandbox: &Path) -> Result<SandboxEnv, String> {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port on the loopback: {e}"))?
            .port();
        Ok(SandboxEnv {
            port,
            vars: vec![
                ("HAVEN_SANDBOX".into(), sandbox.display().to_string()),
                ("HAVEN_PORT".into(), port.to_string()),
            ],
        })
    }

    /// Its variables, and `HAVEN_RESTORE_FILE` for `set` when it is a
    /// stream set.
    pub fn vars(&self, sandbox: &Path, set: Option<&BackupSet>) -> Vec<(String, String)> {
        let mut vars = self.vars.clone();
        if let Some(set) = set.filter(|s| s.command.is_some()) {
            let file = sandbox.join(format!("{}.dump", set.name));
            vars.push(("HAVEN_RESTORE_FILE".into(), file.display().to_string()));
        }
        vars
    }

    /// `$HAVEN_PORT` / `${HAVEN_PORT}` in a probe's address replaced.
    pub fn expand(&self, text: &str) -> String {
        let port = self.port.to_string();
        text.replace("${HAVEN_PORT}", &port)
            .replace("$HAVEN_PORT", &port)
    }
}

fn timed(kind: StepKind, name: String, work: impl FnOnce() -> Result<String, String>) -> Step {
    let started_at = Timestamp::now();
    let clock = Instant::now();
    let result = work();
    Step {
        kind,
        name,
        started_at,
        duration: SignedDuration::try_from(clock.elapsed()).unwrap_or(SignedDuration::MAX),
        ok: result.is_ok(),
        detail: result.unwrap_or_else(|e| e),
    }
}

fn said(lines: &[String]) -> String {
    let start = lines.len().saturating_sub(5);
    crate::instance::redact::redact(&lines[start..].join(" | ")).into_owned()
}

/// Run the set's `restore_command` in the sandbox: the load step.
pub(super) fn load(set: &BackupSet, run: &str, sandbox: &Path, env: &SandboxEnv) -> Step {
    let vars = env.vars(sandbox, Some(set));
    let script = format!("cd \"$HAVEN_SANDBOX\" && {run}");
    timed(
        StepKind::Load,
        format!("load {} (`{run}`)", set.name),
        || {
            for_job(DRILL_COMMANDS, || {
                run_with_timeout("drill load", &script, &vars, LOAD_TIMEOUT)
            })
            .map(|lines| format!("loaded: {}", said(&lines)))
            .map_err(|e| match e {
                CommandError::Failed { status, output, .. } => {
                    format!("exit {}: {}", status.code().unwrap_or(-1), said(&output))
                }
                other => other.to_string(),
            })
        },
    )
}

/// Start the set's service in the sandbox and wait until it listens on
/// its port (or ends, or the time is up): the start step, and the
/// running service (killed when dropped).
pub(super) fn start(
    set: &BackupSet,
    run: &str,
    sandbox: &Path,
    env: &SandboxEnv,
) -> (Option<Background>, Step) {
    let vars = env.vars(sandbox, Some(set));
    let script = format!("cd \"$HAVEN_SANDBOX\" && exec {run}");
    let mut started = None;
    let step = timed(
        StepKind::Start,
        format!("start {} (`{run}`)", set.name),
        || {
            let mut service = for_job(DRILL_COMMANDS, || {
                Background::spawn("drill start", &script, &vars)
            })
            .map_err(|e| e.to_string())?;
            let address = std::net::SocketAddr::from(([127, 0, 0, 1], env.port));
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Some((status, lines)) = service.exited() {
                    return Err(format!(
                        "it ended ({status}) before listening on {address}: {}",
                        said(&lines)
                    ));
                }
                if std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok() {
                    started = Some(service);
                    return Ok(format!("listening on {address}"));
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "not listening on {address} after {}s (it gets the port as $HAVEN_PORT)",
                        START_TIMEOUT.as_secs()
                    ));
                }
                // Polling a port a process is about to open: there is nothing
                // to wait on instead.
                std::thread::sleep(Duration::from_millis(100));
            }
        },
    );
    (started, step)
}
