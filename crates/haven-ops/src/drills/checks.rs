//! A system's checks against its sandbox: `command` (run in the sandbox,
//! `HAVEN_SANDBOX` set, and `PG*` for the sandbox's database), `sql`
//! (against that database), `tcp` and `http` probes. Each is timed, with an
//! excerpt of what it said.

use std::path::Path;
use std::time::{Duration, Instant};

use haven_model::catalog::Check;
use haven_model::drills::{Step, StepKind};
use jiff::{SignedDuration, Timestamp};

use super::postgres::Cluster;
use crate::jobs::command::{CommandError, run_with_timeout};

/// How long one check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(300);

/// Run check number `n` (`db`: the sandbox's database, for `sql` checks
/// and the environment of `command` checks).
pub(super) fn run(n: usize, check: &Check, sandbox: &Path, db: Option<&Cluster>) -> Step {
    let started_at = Timestamp::now();
    let clock = Instant::now();
    let (name, result) = match check {
        Check::Command {
            run,
            expect_exit,
            expect_output,
        } => (
            format!("check {n} (command `{run}`)"),
            command(run, *expect_exit, expect_output.as_deref(), sandbox, db),
        ),
        Check::Tcp { address } => (format!("check {n} (tcp {address})"), tcp(address)),
        Check::Http { url, expect_status } => {
            (format!("check {n} (http {url})"), http(url, *expect_status))
        }
        Check::Sql { query, expect } => {
            (format!("check {n} (sql `{query}`)"), sql(query, expect, db))
        }
    };
    let (ok, detail) = match result {
        Ok(detail) => (true, detail),
        Err(detail) => (false, detail),
    };
    Step {
        kind: StepKind::Check,
        name,
        started_at,
        duration: SignedDuration::try_from(clock.elapsed()).unwrap_or(SignedDuration::MAX),
        ok,
        detail,
    }
}

/// The last lines of what a command printed.
fn excerpt(lines: &[String]) -> String {
    let start = lines.len().saturating_sub(5);
    crate::instance::redact::redact(&lines[start..].join(" | ")).into_owned()
}

fn command(
    run: &str,
    expect_exit: i64,
    expect_output: Option<&str>,
    sandbox: &Path,
    db: Option<&Cluster>,
) -> Result<String, String> {
    let mut env = vec![("HAVEN_SANDBOX".to_string(), sandbox.display().to_string())];
    env.extend(db.map(Cluster::env).unwrap_or_default());
    let script = format!("cd \"$HAVEN_SANDBOX\" && {run}");
    let (code, output) = match run_with_timeout("drill check", &script, &env, CHECK_TIMEOUT) {
        Ok(output) => (0, output),
        Err(CommandError::Failed { status, output, .. }) => {
            (status.code().map_or(-1, i64::from), output)
        }
        Err(e) => return Err(e.to_string()),
    };
    let said = excerpt(&output);
    if code != expect_exit {
        return Err(format!("exit {code}, expected {expect_exit}: {said}"));
    }
    if let Some(text) = expect_output
        && !output.iter().any(|l| l.contains(text))
    {
        return Err(format!("output lacks {text:?}: {said}"));
    }
    Ok(format!("exit {code}: {said}"))
}

fn sql(query: &str, expect: &str, db: Option<&Cluster>) -> Result<String, String> {
    let Some(db) = db else {
        return Err("sql checks run against the sandbox's database, and this drill has none (a database-postgres system with a pg_dump set has one)".into());
    };
    let answer = db.psql(super::postgres::DATABASE, query)?;
    let first = answer
        .lines()
        .next()
        .unwrap_or("")
        .split('|')
        .next()
        .unwrap_or("")
        .to_string();
    if first == expect {
        Ok(first)
    } else {
        Err(format!("the answer is {first:?}, expected {expect:?}"))
    }
}

fn tcp(address: &str) -> Result<String, String> {
    use std::net::ToSocketAddrs;
    let targets: Vec<_> = address
        .to_socket_addrs()
        .map_err(|e| format!("{address}: {e}"))?
        .collect();
    for target in &targets {
        if std::net::TcpStream::connect_timeout(target, Duration::from_secs(10)).is_ok() {
            return Ok(format!("{target} accepts connections"));
        }
    }
    Err(format!("nothing accepts connections at {address}"))
}

fn http(url: &str, expect_status: i64) -> Result<String, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let status = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        client
            .get(url)
            .send()
            .await
            .map(|r| i64::from(r.status().as_u16()))
            .map_err(|e| format!("{url}: {e}"))
    })?;
    if status == expect_status {
        Ok(format!("status {status}"))
    } else {
        Err(format!("status {status}, expected {expect_status}"))
    }
}
