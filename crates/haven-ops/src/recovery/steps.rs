//! What each kind of step does, in production: restore a set into place
//! (a dump into its `recover_command`), run a service's recovery action,
//! run a system's check against the recovered data. Each answers what it
//! did or why it failed, in words (redacted). Commands get
//! `HAVEN_TARGET` (and, for checks written for drills, `HAVEN_SANDBOX`):
//! `/` for the original target; with an alternate directory, a system's
//! own directory in it (`DIR/<system>`, laid out as a drill's sandbox, so
//! its drill checks run there unchanged) and the directory itself for a
//! service's steps.

use std::path::{Path, PathBuf};
use std::time::Duration;

use haven_engine::{Id, NoProgress, Repository, RestoreOptions};
use haven_model::catalog::recovery::{RecoveryStep, StepAction};
use haven_model::catalog::{BackupSet, Check, System};
use haven_model::recovery::run::{RestoreTarget, SnapshotUsed};

use crate::instance::secrets::resolve_env;
use crate::jobs::command::{CommandError, for_job, run_with_timeout};

/// How long a command or query may take unless its step says.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// How long loading a dump may take.
const LOAD_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// How long a probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a run works.
#[derive(Clone, Debug)]
pub(super) struct Place {
    /// Where restored data goes.
    pub target: RestoreTarget,
    /// The run's own directory under the data dir (staged dumps).
    pub run_dir: PathBuf,
}

impl Place {
    /// The directory everything restored is under.
    pub fn root(&self) -> PathBuf {
        match &self.target {
            RestoreTarget::Original => PathBuf::from("/"),
            RestoreTarget::Alternate(dir) => PathBuf::from(dir),
        }
    }

    /// The directory a system's restored paths are under: `/`, or its
    /// own directory in the alternate one.
    pub fn root_of(&self, system: &str) -> PathBuf {
        match &self.target {
            RestoreTarget::Original => PathBuf::from("/"),
            RestoreTarget::Alternate(dir) => Path::new(dir).join(system),
        }
    }

    fn vars(root: &Path) -> Vec<(String, String)> {
        let root = root.display().to_string();
        vec![
            ("HAVEN_TARGET".into(), root.clone()),
            ("HAVEN_SANDBOX".into(), root),
        ]
    }
}

/// A step that does not apply to this run (a check on a drill's sandbox
/// port; a query on a database that an alternate target leaves as a
/// file): recorded as skipped, with why.
pub(super) const NOT_APPLICABLE: &str = "not applicable: ";

/// Restore one set from its chosen snapshot (blocking).
pub(super) fn restore(
    repo: &Repository,
    system: &System,
    set: &BackupSet,
    used: &SnapshotUsed,
    place: &Place,
) -> Result<String, String> {
    let id: Id = used
        .snapshot
        .parse()
        .map_err(|e| format!("snapshot {}: {e}", used.snapshot))?;
    let root = place.root_of(&system.id.value);
    if set.command.is_none() {
        let outcome = repo
            .restore(&id, &root, &RestoreOptions::default(), &NoProgress)
            .map_err(|e| haven_model::errors::chain_text(&e))?;
        failed_files(&outcome)?;
        return Ok(format!(
            "{} files, {} bytes restored under {} from snapshot {} of {}",
            outcome.files,
            outcome.bytes,
            root.display(),
            id.short(),
            used.time
        ));
    }
    let staging = place
        .run_dir
        .join(format!("{}-{}", system.id.value, set.name));
    crate::instance::files::private_dir(&staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    let outcome = repo
        .restore(&id, &staging, &RestoreOptions::default(), &NoProgress)
        .map_err(|e| haven_model::errors::chain_text(&e))?;
    failed_files(&outcome)?;
    let dump = staging.join(format!("{}.dump", set.name));
    match (&place.target, &set.recover_command) {
        (RestoreTarget::Original, Some(run)) => {
            let loaded = load_dump(set, run, &dump, &root);
            let _ = std::fs::remove_dir_all(&staging);
            loaded.map(|said| {
                format!(
                    "snapshot {} of {} ({} bytes) loaded with `{run}`: {said}",
                    id.short(),
                    used.time,
                    outcome.bytes
                )
            })
        }
        (RestoreTarget::Alternate(_), _) => {
            let file = root.join(format!("{}.dump", set.name));
            crate::instance::files::private_dir(&root)
                .and_then(|()| std::fs::rename(&dump, &file))
                .map_err(|e| format!("cannot place the dump at {}: {e}", file.display()))?;
            let _ = std::fs::remove_dir_all(&staging);
            Ok(format!(
                "snapshot {} of {}: the dump is at {} ({} bytes)",
                id.short(),
                used.time,
                file.display(),
                outcome.bytes
            ))
        }
        (RestoreTarget::Original, None) => Ok(format!(
            "snapshot {} of {}: the set has no recover_command, so the dump is at {} ({} bytes): load it by hand",
            id.short(),
            used.time,
            dump.display(),
            outcome.bytes
        )),
    }
}

fn failed_files(outcome: &haven_engine::RestoreOutcome) -> Result<(), String> {
    if outcome.failed.is_empty() {
        return Ok(());
    }
    Err(crate::drills::failed_files(outcome))
}

/// The set's `recover_command`, reading the dump on its stdin.
fn load_dump(set: &BackupSet, run: &str, dump: &Path, root: &Path) -> Result<String, String> {
    let mut env = resolve_env(&set.env)?;
    env.extend(Place::vars(root));
    env.push(("HAVEN_RESTORE_FILE".into(), dump.display().to_string()));
    let script = format!("{{ {run}\n}} < \"$HAVEN_RESTORE_FILE\"");
    said_by(
        run_with_timeout("recover_command", &script, &env, LOAD_TIMEOUT),
        0,
        None,
    )
}

/// A command's outcome against the expected exit code and output.
fn said_by(
    result: Result<Vec<String>, CommandError>,
    expect_exit: i64,
    expect_output: Option<&str>,
) -> Result<String, String> {
    let (code, output) = match result {
        Ok(output) => (0, output),
        Err(CommandError::Failed { status, output, .. }) => {
            (status.code().map_or(-1, i64::from), output)
        }
        Err(e) => return Err(crate::instance::redact::redact(&e.to_string()).into_owned()),
    };
    let start = output.len().saturating_sub(5);
    let said = crate::instance::redact::redact(&output[start..].join(" | ")).into_owned();
    if code != expect_exit {
        return Err(format!("exit {code}, expected {expect_exit}: {said}"));
    }
    if let Some(text) = expect_output
        && !output.iter().any(|l| l.contains(text))
    {
        return Err(format!("the output lacks {text:?}: {said}"));
    }
    Ok(format!("exit {code}: {said}"))
}

/// Run a command (blocking).
fn command(
    run: &str,
    env: &[haven_model::catalog::EnvVar],
    expect_exit: i64,
    expect_output: Option<&str>,
    timeout: Duration,
    root: &Path,
) -> Result<String, String> {
    let mut vars = resolve_env(env)?;
    vars.extend(Place::vars(root));
    let script = format!("cd \"$HAVEN_TARGET\" && {run}");
    said_by(
        run_with_timeout("recovery step", &script, &vars, timeout),
        expect_exit,
        expect_output,
    )
}

/// A query with `psql` (blocking): its first value against `expect`.
fn sql(
    query: &str,
    expect: &str,
    env: Vec<(String, String)>,
    timeout: Duration,
) -> Result<String, String> {
    let mut vars = env;
    vars.push(("HAVEN_QUERY".into(), query.to_string()));
    let lines = run_with_timeout(
        "recovery sql",
        "psql -X -A -t -q -v ON_ERROR_STOP=1 -c \"$HAVEN_QUERY\"",
        &vars,
        timeout,
    )
    .map_err(|e| match e {
        CommandError::Failed { output, .. } => {
            crate::instance::redact::redact(&format!("psql failed: {}", output.join(" | ")))
                .into_owned()
        }
        other => crate::instance::redact::redact(&other.to_string()).into_owned(),
    })?;
    let first = lines
        .iter()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.split('|').next().unwrap_or("").trim().to_string())
        .unwrap_or_default();
    if first == expect {
        Ok(format!("the answer is {first:?}"))
    } else {
        Err(format!("the answer is {first:?}, expected {expect:?}"))
    }
}

async fn tcp(address: &str) -> Result<String, String> {
    match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(address)).await {
        Ok(Ok(stream)) => Ok(format!(
            "{} accepts connections",
            stream
                .peer_addr()
                .map_or(address.to_string(), |a| a.to_string())
        )),
        Ok(Err(e)) => Err(format!("nothing accepts connections at {address}: {e}")),
        Err(_) => Err(format!(
            "no answer from {address} within {}s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

async fn http(url: &str, expect_status: i64) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let status = client
        .get(url)
        .send()
        .await
        .map(|r| i64::from(r.status().as_u16()))
        .map_err(|e| format!("{url}: {e}"))?;
    if status == expect_status {
        Ok(format!("status {status}"))
    } else {
        Err(format!("status {status}, expected {expect_status}"))
    }
}

/// Blocking work off the async threads (its commands the recoveries'),
/// its panic a failure.
pub(super) async fn blocking(
    work: impl FnOnce() -> Result<String, String> + Send + 'static,
) -> Result<String, String> {
    tokio::task::spawn_blocking(move || for_job(super::RECOVERY_COMMANDS, work))
        .await
        .unwrap_or_else(|e| Err(format!("the step stopped: {e}")))
}

/// Run a service's recovery step (a checkpoint is not run: it waits).
pub(super) async fn recovery_step(step: &RecoveryStep, place: &Place) -> Result<String, String> {
    let timeout = step
        .timeout
        .and_then(|t| Duration::try_from(t).ok())
        .unwrap_or(COMMAND_TIMEOUT);
    match step.action.clone() {
        StepAction::Command {
            run,
            expect_exit,
            expect_output,
            env,
        } => {
            let root = place.root();
            blocking(move || {
                command(
                    &run,
                    &env,
                    expect_exit,
                    expect_output.as_deref(),
                    timeout,
                    &root,
                )
            })
            .await
        }
        StepAction::Sql { query, expect, env } => {
            blocking(move || sql(&query, &expect, resolve_env(&env)?, timeout)).await
        }
        StepAction::Http { url, expect_status } => http(&url, expect_status).await,
        StepAction::Tcp { address } => tcp(&address).await,
        StepAction::Wait { duration } => {
            tokio::time::sleep(Duration::try_from(duration).unwrap_or_default()).await;
            Ok("waited".into())
        }
        StepAction::Checkpoint { prompt } => Ok(prompt),
    }
}

/// Run check `index` of `system` against the recovered data: commands in
/// the system's root (`HAVEN_TARGET`), queries with the connection of
/// the system's dump set (its `env`; not applicable when an alternate
/// target left the dump as a file), probes as written (not applicable
/// on a drill's sandbox port).
pub(super) async fn check(system: &System, index: usize, place: &Place) -> Result<String, String> {
    let Some(check) = system.checks.get(index).cloned() else {
        return Err(format!(
            "system {} has no check {}",
            system.id.value,
            index + 1
        ));
    };
    let sandbox_only = |text: &str| text.contains("HAVEN_PORT");
    match check {
        Check::Command {
            run,
            expect_exit,
            expect_output,
        } => {
            let root = place.root_of(&system.id.value);
            blocking(move || {
                command(
                    &run,
                    &[],
                    expect_exit,
                    expect_output.as_deref(),
                    COMMAND_TIMEOUT,
                    &root,
                )
            })
            .await
        }
        Check::Sql { .. } if matches!(place.target, RestoreTarget::Alternate(_)) => Ok(format!(
            "{NOT_APPLICABLE}the query needs the recovered database, and an alternate target leaves its dump as a file"
        )),
        Check::Sql { query, expect } => {
            let env = system
                .backup_sets
                .iter()
                .find(|s| s.command.is_some())
                .map(|s| s.env.clone())
                .unwrap_or_default();
            blocking(move || sql(&query, &expect, resolve_env(&env)?, COMMAND_TIMEOUT)).await
        }
        Check::Tcp { address } if sandbox_only(&address) => Ok(sandbox_probe(&address)),
        Check::Http { url, .. } if sandbox_only(&url) => Ok(sandbox_probe(&url)),
        Check::Tcp { address } => tcp(&address).await,
        Check::Http { url, expect_status } => http(&url, expect_status).await,
    }
}

fn sandbox_probe(what: &str) -> String {
    format!(
        "{NOT_APPLICABLE}{what} probes a drill's sandbox port ($HAVEN_PORT): in a recovery, probe the recovered service with a [[service.recovery]] tcp or http step"
    )
}
