//! Secrets the catalog refers to (`env:VAR`, `file:PATH`), read when
//! they are needed and remembered for redaction
//! ([`super::redact`]): repository passwords, a channel's credentials, a
//! command's `env`.

use haven_model::catalog::watch::MaybeSecret;
use haven_model::catalog::{EnvVar, SecretRef};

/// A repository password could not be read.
#[derive(Debug, thiserror::Error)]
#[error("repository {repository}: {problem}")]
pub struct SecretError {
    /// The repository.
    pub repository: String,
    /// What is wrong (never the secret).
    pub problem: String,
}

/// Read repository `id`'s password from its reference.
pub fn repository_password(
    id: &str,
    reference: Option<&SecretRef>,
) -> Result<Vec<u8>, SecretError> {
    let err = |problem: String| SecretError {
        repository: id.to_string(),
        problem,
    };
    match reference {
        None => Err(err(
            "no password reference: set `password = \"env:VAR\"` or `\"file:PATH\"` in the catalog"
                .into(),
        )),
        Some(reference) => read_secret(reference).map(String::into_bytes).map_err(err),
    }
}

/// Read a secret a catalog refers to: an environment variable, or the
/// first line of a file. The error names where it looked, never a value.
pub fn read_secret(reference: &SecretRef) -> Result<String, String> {
    match reference {
        SecretRef::Env(var) => {
            std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))
        }
        SecretRef::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read secret file {path}: {e}"))?;
            let line = text.lines().next().unwrap_or_default();
            if line.is_empty() {
                return Err(format!("secret file {path} is empty"));
            }
            Ok(line.to_string())
        }
    }
    .inspect(|secret| super::redact::remember(secret))
}

/// The environment a command gets from its catalog `env`: plain values
/// as written, references read now (and remembered for redaction).
pub fn resolve_env(env: &[EnvVar]) -> Result<Vec<(String, String)>, String> {
    env.iter()
        .map(|var| match &var.value {
            MaybeSecret::Plain(value) => Ok((var.name.clone(), value.clone())),
            MaybeSecret::Secret(reference) => read_secret(reference)
                .map(|value| (var.name.clone(), value))
                .map_err(|problem| format!("variable {}: {problem}", var.name)),
        })
        .collect()
}
