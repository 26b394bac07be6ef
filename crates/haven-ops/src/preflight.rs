//! Pre-flight: what would make the first jobs fail, found before anyone
//! is paged. Every repository opens with its password, every secret the
//! catalog refers to can be read, every dump command, hook and channel
//! command is found, the data dir has room, and the clock has not gone
//! back. `haven doctor` shows the list; the server runs it at start and
//! raises a `setup` alert per problem.
//!
//! Blocking (it opens repositories): async callers use `spawn_blocking`.

use std::path::Path;

use haven_engine::{Error as EngineError, Location, Repository};
use haven_model::alert_rules::SetupProblem;
use haven_model::catalog::watch::{ChannelKind, MaybeSecret};
use haven_model::catalog::{Catalog, EnvVar, SecretRef};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::instance::secrets::{read_secret, repository_password};

/// Free space below which the data dir is a problem.
const MIN_FREE_BYTES: u64 = 1 << 30;

/// What a check looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Area {
    /// A catalog repository: reachable, initialised, opened by its password.
    Repository,
    /// A secret reference (`env:`, `file:`).
    Secret,
    /// A dump command, hook or channel command.
    Command,
    /// A notification channel's test message (`haven doctor --send-test`).
    Channel,
    /// Haven's data dir.
    DataDir,
    /// The system clock.
    Clock,
}

/// One check and its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Check {
    /// What it looked at.
    pub area: Area,
    /// Which one (`repository main`, `system erp-db set dump: pg_dump`).
    pub subject: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found (the problem when not ok).
    pub detail: String,
    /// How to fix it (when not ok).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every check, problems first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PreflightReport {
    /// The checks.
    pub checks: Vec<Check>,
    /// How many failed.
    pub problems: usize,
}

impl PreflightReport {
    /// Add checks (a channel's test), keeping problems first.
    pub fn extend(&mut self, checks: impl IntoIterator<Item = Check>) {
        self.checks.extend(checks);
        self.checks.sort_by_key(|c| c.ok);
        self.problems = self.checks.iter().filter(|c| !c.ok).count();
    }

    /// The failed checks as setup problems (one `setup` alert each).
    pub fn setup_problems(&self) -> Vec<SetupProblem> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| SetupProblem {
                key: c.subject.clone(),
                system: None,
                message: match &c.fix {
                    Some(fix) => format!("{}: {} ({fix})", c.subject, c.detail),
                    None => format!("{}: {}", c.subject, c.detail),
                },
            })
            .collect()
    }
}

/// Run every check off the async threads, with the newest job Haven
/// recorded as the clock's lower bound.
pub async fn check(
    catalog: std::sync::Arc<Catalog>,
    data_dir: std::path::PathBuf,
    store: &dyn haven_store::Store,
    now: Timestamp,
) -> PreflightReport {
    let newest = store
        .jobs(&haven_store::JobFilter {
            limit: 1,
            ..haven_store::JobFilter::default()
        })
        .await
        .ok()
        .and_then(|jobs| jobs.into_iter().next())
        .map(|j| {
            j.ended_at
                .or(j.started_at)
                .unwrap_or(j.planned.scheduled_at)
        });
    let dir = data_dir.clone();
    tokio::task::spawn_blocking(move || run(&catalog, &dir, now, newest))
        .await
        .unwrap_or_else(|e| PreflightReport {
            checks: vec![failed(
                Area::DataDir,
                format!("data dir {}", data_dir.display()),
                format!("the checks stopped: {e}"),
                "report this as a bug",
            )],
            problems: 1,
        })
}

/// Run every check. `newest_record` is the newest time Haven recorded
/// (the clock must not be behind it).
pub fn run(
    catalog: &Catalog,
    data_dir: &Path,
    now: Timestamp,
    newest_record: Option<Timestamp>,
) -> PreflightReport {
    let mut checks = Vec::new();
    checks.extend(repositories(catalog));
    checks.extend(secrets(catalog));
    checks.extend(commands(catalog));
    checks.push(data_dir_space(data_dir));
    checks.push(clock(now, newest_record));
    checks.sort_by_key(|c| c.ok);
    let problems = checks.iter().filter(|c| !c.ok).count();
    PreflightReport { checks, problems }
}

fn passed(area: Area, subject: String, detail: impl Into<String>) -> Check {
    Check {
        area,
        subject,
        ok: true,
        detail: detail.into(),
        fix: None,
    }
}

fn failed(area: Area, subject: String, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        area,
        subject,
        ok: false,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// Every catalog repository opens with its password.
fn repositories(catalog: &Catalog) -> Vec<Check> {
    catalog
        .repositories
        .iter()
        .map(|repo| {
            let subject = format!("repository {}", repo.id.value);
            let password = match repository_password(&repo.id.value, repo.password.as_ref().map(|p| &p.value)) {
                Ok(p) => p,
                Err(e) => {
                    return failed(
                        Area::Repository,
                        subject,
                        e.problem,
                        "set the variable or create the file the catalog names",
                    );
                }
            };
            let opened = Location::parse(&repo.url.value)
                .and_then(|location| Repository::open(&location, &password));
            match opened {
                Ok(_) => passed(Area::Repository, subject, format!("{} opens", repo.url.value)),
                Err(e @ (EngineError::RepositoryNotFound { .. } | EngineError::BucketNotFound { .. })) => failed(
                    Area::Repository,
                    subject,
                    format!("not initialised: {e}"),
                    "create it with `haven repo init --all` (every catalog repository, with its declared password)",
                ),
                Err(e @ EngineError::WrongPassword { .. }) => failed(
                    Area::Repository,
                    subject,
                    e.to_string(),
                    "the catalog's password reference must hold a password one of its keys opens",
                ),
                Err(e) => failed(
                    Area::Repository,
                    subject,
                    format!("cannot be opened: {e}"),
                    "check the URL, the network and the credentials",
                ),
            }
        })
        .collect()
}

/// Every secret reference outside repository passwords (those are
/// checked by opening the repository).
fn secrets(catalog: &Catalog) -> Vec<Check> {
    fn env<'a>(owner: String, vars: &'a [EnvVar], refs: &mut Vec<(String, &'a SecretRef)>) {
        for var in vars {
            if let MaybeSecret::Secret(reference) = &var.value {
                refs.push((format!("{owner}: env {}", var.name), reference));
            }
        }
    }
    let mut refs: Vec<(String, &SecretRef)> = Vec::new();
    for system in &catalog.systems {
        for set in &system.backup_sets {
            let owner = format!("system {} set {}", system.id.value, set.name);
            env(owner, &set.env, &mut refs);
        }
    }
    for policy in &catalog.policies {
        env(
            format!("policy {} hooks", policy.id.value),
            &policy.hook_env,
            &mut refs,
        );
    }
    for channel in &catalog.channels {
        let owner = format!("channel {}", channel.id.value);
        match &channel.kind {
            ChannelKind::Email { password, .. } => {
                refs.extend(password.iter().map(|p| (format!("{owner}: password"), p)));
            }
            ChannelKind::Webhook { url, secret } => {
                if let MaybeSecret::Secret(r) = url {
                    refs.push((format!("{owner}: url"), r));
                }
                refs.extend(secret.iter().map(|s| (format!("{owner}: secret"), s)));
            }
            ChannelKind::Slack { url } | ChannelKind::Teams { url } => {
                if let MaybeSecret::Secret(r) = url {
                    refs.push((format!("{owner}: url"), r));
                }
            }
            ChannelKind::Command { env: vars, .. } => env(owner, vars, &mut refs),
        }
    }
    refs.into_iter()
        .map(|(subject, reference)| match read_secret(reference) {
            Ok(_) => passed(
                Area::Secret,
                subject,
                format!("{} is readable", describe(reference)),
            ),
            Err(problem) => failed(
                Area::Secret,
                subject,
                problem,
                "set the variable (in the server's environment) or create the file",
            ),
        })
        .collect()
}

fn describe(reference: &SecretRef) -> String {
    match reference {
        SecretRef::Env(var) => format!("env:{var}"),
        SecretRef::File(path) => format!("file:{path}"),
    }
}

/// Every dump command, hook and channel command is found.
fn commands(catalog: &Catalog) -> Vec<Check> {
    let mut lines: Vec<(String, &str)> = Vec::new();
    for system in &catalog.systems {
        for set in &system.backup_sets {
            if let Some(command) = &set.command {
                lines.push((
                    format!("system {} set {}", system.id.value, set.name),
                    command,
                ));
            }
        }
    }
    for policy in &catalog.policies {
        for (which, hook) in [
            ("pre_hook", &policy.pre_hook),
            ("post_hook", &policy.post_hook),
        ] {
            if let Some(hook) = hook {
                lines.push((format!("policy {} {which}", policy.id.value), hook));
            }
        }
    }
    for channel in &catalog.channels {
        if let ChannelKind::Command { run, .. } = &channel.kind {
            lines.push((format!("channel {}", channel.id.value), run));
        }
    }
    lines
        .into_iter()
        .filter_map(|(owner, line)| {
            let program = program_of(line)?;
            let subject = format!("{owner}: {program}");
            Some(match find_program(&program) {
                Some(path) => passed(
                    Area::Command,
                    subject,
                    format!("found at {}", path.display()),
                ),
                None => failed(
                    Area::Command,
                    subject,
                    format!("{program} is not found on PATH ({})", path_var()),
                    "install it, or give its full path in the catalog",
                ),
            })
        })
        .collect()
}

/// The program a shell command line runs: its first word after any
/// `NAME=value` assignments (none for shell syntax Haven cannot judge).
fn program_of(line: &str) -> Option<String> {
    let word = line
        .split_whitespace()
        .find(|w| !(w.contains('=') && !w.starts_with('=') && !w.contains('/')))?;
    let shell_syntax =
        word.starts_with(['(', '{', '$', '`', '\'', '"']) || word.contains(['|', ';', '&']);
    (!shell_syntax).then(|| word.to_string())
}

fn path_var() -> String {
    std::env::var("PATH").unwrap_or_default()
}

/// A program by path, or found on `PATH`, that is an executable file.
fn find_program(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = Path::new(program).to_path_buf();
        return executable(&path).then_some(path);
    }
    // Shell builtins a command line may start with.
    if matches!(
        program,
        "exec" | "cd" | "set" | "export" | "true" | "false" | "test" | "["
    ) {
        return Some(Path::new("/bin/sh").to_path_buf());
    }
    std::env::split_paths(&path_var())
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

fn data_dir_space(dir: &Path) -> Check {
    let subject = format!("data dir {}", dir.display());
    match rustix::fs::statvfs(dir) {
        Ok(stat) => {
            let free = stat.f_bavail.saturating_mul(stat.f_frsize);
            let text = haven_model::units::human_bytes(free as f64);
            if free < MIN_FREE_BYTES {
                failed(
                    Area::DataDir,
                    subject,
                    format!("only {text} free"),
                    "free space: job evidence, logs and the database need room (at least 1 GiB)",
                )
            } else {
                passed(Area::DataDir, subject, format!("{text} free"))
            }
        }
        Err(e) => failed(
            Area::DataDir,
            subject,
            format!("cannot be read: {e}"),
            "create it, or point --data-dir at a directory Haven may use",
        ),
    }
}

fn clock(now: Timestamp, newest_record: Option<Timestamp>) -> Check {
    let subject = "system clock".to_string();
    match newest_record {
        Some(newest) if now < newest => failed(
            Area::Clock,
            subject,
            format!(
                "it says {now}, earlier than the newest record ({newest}): schedules and RPO ages would be wrong"
            ),
            "fix the time (NTP) before starting the server",
        ),
        _ => passed(Area::Clock, subject, format!("{now}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_of_a_command_line_is_its_first_word() {
        for (line, program) in [
            ("pg_dump -Fc erp", Some("pg_dump")),
            ("PGHOST=db1 pg_dump erp", Some("pg_dump")),
            (
                "/usr/local/bin/erp-freeze --now",
                Some("/usr/local/bin/erp-freeze"),
            ),
            ("(cd /srv && tar c .)", None),
            ("$HOME/bin/x", None),
            ("", None),
        ] {
            assert_eq!(program_of(line).as_deref(), program, "{line:?}");
        }
    }

    #[test]
    fn a_clock_behind_the_newest_record_is_a_problem() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
        assert!(clock(now, None).ok);
        assert!(clock(now, Some(now)).ok);
        let later = "2026-06-01T00:00:00Z".parse().expect("ts");
        assert!(!clock(now, Some(later)).ok);
    }
}
