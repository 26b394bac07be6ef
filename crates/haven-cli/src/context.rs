//! Resolving the repository and its password from flags, environment or a prompt.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use haven_engine::{Location, Repository};

use crate::cli::GlobalArgs;

/// The repository location, from `--repo` or `HAVEN_REPO`.
pub fn location(global: &GlobalArgs) -> Result<Location> {
    let Some(repo) = global.repo.as_deref() else {
        bail!(UsageError(
            "no repository given: pass --repo PATH or set HAVEN_REPO".into()
        ));
    };
    Ok(Location::parse(repo)?)
}

/// The password: `HAVEN_PASSWORD`, then `--password-file` /
/// `HAVEN_PASSWORD_FILE`, then a prompt when stdin is a terminal.
pub fn password(global: &GlobalArgs, confirm: bool) -> Result<Vec<u8>> {
    resolve_password(
        "HAVEN_PASSWORD",
        global.password_file.as_deref(),
        "repository password",
        confirm,
        "no password given: set HAVEN_PASSWORD or HAVEN_PASSWORD_FILE, or pass --password-file",
    )
}

/// The second repository's password (`copy`): `HAVEN_PASSWORD2`, then
/// `--password-file2` / `HAVEN_PASSWORD_FILE2`, then a prompt.
pub fn password2(file: Option<&std::path::Path>) -> Result<Vec<u8>> {
    resolve_password(
        "HAVEN_PASSWORD2",
        file,
        "target repository password",
        false,
        "no password for the target repository: set HAVEN_PASSWORD2 or HAVEN_PASSWORD_FILE2, or pass --password-file2",
    )
}

fn resolve_password(
    env: &str,
    file: Option<&std::path::Path>,
    prompt: &str,
    confirm: bool,
    missing: &str,
) -> Result<Vec<u8>> {
    let password = read_password(env, file, prompt, confirm, missing)?;
    // Never echoed by a log line or an error from here on.
    haven_ops::instance::remember(&String::from_utf8_lossy(&password));
    Ok(password)
}

fn read_password(
    env: &str,
    file: Option<&std::path::Path>,
    prompt: &str,
    confirm: bool,
    missing: &str,
) -> Result<Vec<u8>> {
    if let Ok(password) = std::env::var(env) {
        return Ok(password.into_bytes());
    }
    if let Some(path) = file {
        return read_password_file(path, "password file");
    }
    if !std::io::stdin().is_terminal() {
        bail!(UsageError(missing.into()));
    }
    let first =
        rpassword::prompt_password(format!("{prompt}: ")).context("cannot read the password")?;
    if confirm {
        let second =
            rpassword::prompt_password("repeat password: ").context("cannot read the password")?;
        if first != second {
            bail!("the passwords do not match");
        }
    }
    Ok(first.into_bytes())
}

/// The new password for `key add` / `key rotate`: `HAVEN_NEW_PASSWORD`,
/// then `--new-password-file`, then a confirmed prompt on a terminal.
pub fn new_password(file: Option<&std::path::Path>) -> Result<Vec<u8>> {
    resolve_password(
        "HAVEN_NEW_PASSWORD",
        file,
        "new password",
        true,
        "no new password given: set HAVEN_NEW_PASSWORD or pass --new-password-file",
    )
}

/// The first line of a password file (`what` names it in errors).
fn read_password_file(path: &std::path::Path, what: &str) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        bail!("{what} {} is empty", path.display());
    }
    Ok(line.as_bytes().to_vec())
}

/// Open the repository named by the global options.
pub fn open(global: &GlobalArgs) -> Result<Repository> {
    let location = location(global)?;
    let password = password(global, false)?;
    Ok(Repository::open(&location, &password)?)
}

/// An error caused by how the command was called (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
