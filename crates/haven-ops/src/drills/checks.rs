//! A system's checks against its sandbox: `command` (run in the sandbox,
//! `HAVEN_SANDBOX` set, and `PG*` for the sandbox's database), `sql`
//! (against that database), `tcp` and `http` probes. Each is timed, with an
//! excerpt of what it said.

use std::path::Path;
use std::time::{Duration, Instant};

use haven_model::catalog::Check;
use haven_model::drills::{Step, StepKind};
use jiff::{SignedDuration, Timestamp};

use super::custom::SandboxEnv;
use super::postgres::Cluster;
use crate::jobs::command::{CommandError, run_with_timeout};

/// How long one check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(300);

/// Run check number `n` (`db`: the sandbox's database, for `sql` checks
/// and the environment of `command` checks; `env`: the sandbox's port,
/// given to commands and put in place of `$HAVEN_PORT` in probes).
pub(super) fn run(
    n: usize,
    check: &Check,
    sandbox: &Path,
    db: Option<&Cluster>,
    env: &SandboxEnv,
) -> Step {
    let started_at = Timestamp::now();
    let clock = Instant::now();
    let (name, result) = match check {
        Check::Command {
            run,
            expect_exit,
            expect_output,
        } => (
            format!("check {n} (command `{run}`)"),
            command(
                run,
                *expect_exit,
                expect_output.as_deref(),
                sandbox,
                db,
                env,
            ),
        ),
        Check::Tcp { address } => {
            let address = env.expand(address);
            (format!("check {n} (tcp {address})"), tcp(&address))
        }
        Check::Http { url, expect_status } => {
            let url = env.expand(url);
            (
                format!("check {n} (http {url})"),
                http(&url, *expect_status),
            )
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
    sandbox_env: &SandboxEnv,
) -> Result<String, String> {
    let mut env = sandbox_env.vars(sandbox, None);
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

/// A drill never probes production: only addresses on this host's
/// loopback, where a sandboxed service listens.
fn sandbox_only(address: &str) -> Result<Vec<std::net::SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    let targets: Vec<_> = address
        .to_socket_addrs()
        .map_err(|e| format!("{address}: {e}"))?
        .collect();
    if targets.is_empty() || targets.iter().any(|t| !t.ip().is_loopback()) {
        return Err(format!(
            "{address} is not on the loopback: a drill probes only its sandbox, never production (check the restored copy with a `command` or `sql` check)"
        ));
    }
    Ok(targets)
}

fn tcp(address: &str) -> Result<String, String> {
    let targets = sandbox_only(address)?;
    for target in &targets {
        if std::net::TcpStream::connect_timeout(target, Duration::from_secs(10)).is_ok() {
            return Ok(format!("{target} accepts connections"));
        }
    }
    Err(format!("nothing accepts connections at {address}"))
}

fn http(url: &str, expect_status: i64) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let host = parsed.host_str().unwrap_or_default();
    let port = parsed.port_or_known_default().unwrap_or(80);
    // An IPv6 host comes bracketed, as an address needs it.
    sandbox_only(&format!("{host}:{port}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A drill probes its sandbox on the loopback, never production.
    #[test]
    fn probes_reach_the_loopback_only() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        assert!(tcp(&address).is_ok());
        // TEST-NET addresses: refused before any packet is sent.
        let refused = tcp("192.0.2.1:389").expect_err("production");
        assert!(refused.contains("not on the loopback"), "{refused}");
        let refused = http("http://192.0.2.1/health", 200).expect_err("production");
        assert!(refused.contains("not on the loopback"), "{refused}");
    }
}
