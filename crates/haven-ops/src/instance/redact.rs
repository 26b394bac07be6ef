//! Keeping secrets out of the evidence. Every secret value Haven resolves
//! (a repository password, a channel's credentials, a command's `env:` or
//! `file:` variables) is [`remember`]ed; [`redact`] replaces each of them
//! with `***` in a text, then masks secrets spelled out by shape (URL
//! userinfo, `--password=…`, `PGPASSWORD=…`: [`haven_model::redact`]).
//!
//! Everything that leaves the process or lasts goes through it: job
//! messages and logs before they are stored, log lines, exported events,
//! notifications and delivery errors, the CLI's error messages.

use std::borrow::Cow;
use std::sync::RwLock;

use haven_model::redact::{MASK, mask};

/// Values shorter than this are not redacted by value: masking every
/// `wrong` or `backup` in every line would garble the evidence and
/// protect little (a secret that short is guessed, not read). The shape
/// rules still catch them where they are assigned.
pub const MIN_REDACTED_LEN: usize = 6;

/// Most values kept: the registry must not grow without bound when a
/// rotated secret is read again and again.
const MAX_REMEMBERED: usize = 4096;

/// The secret values seen so far, longest first (so a secret containing
/// another is masked whole).
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Redact `value` from now on, wherever it appears.
pub fn remember(value: &str) {
    let value = value.trim_end_matches(['\r', '\n']);
    if value.chars().count() < MIN_REDACTED_LEN {
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(|p| p.into_inner());
    if known.iter().any(|k| k == value) {
        return;
    }
    if known.len() == MAX_REMEMBERED {
        known.remove(0);
    }
    let at = known.partition_point(|k| k.len() >= value.len());
    known.insert(at, value.to_string());
}

/// The text with every known secret and every secret-shaped assignment
/// masked.
pub fn redact(text: &str) -> Cow<'_, str> {
    let known = KNOWN.read().unwrap_or_else(|p| p.into_inner());
    let mut out = Cow::Borrowed(text);
    for secret in known.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    drop(known);
    match mask(&out) {
        Cow::Borrowed(_) => out,
        Cow::Owned(masked) => Cow::Owned(masked),
    }
}

/// [`redact`] for an optional text, in place.
pub fn redact_in_place(text: &mut String) {
    if let Cow::Owned(clean) = redact(text) {
        *text = clean;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_values_and_secret_shapes_are_masked() {
        remember("Zq9-very-secret-value");
        remember("Zq9ab");
        let text =
            "login with Zq9-very-secret-value failed; dbname=postgresql://u:p4ss@h/x; Zq9ab kept";
        assert_eq!(
            redact(text),
            "login with *** failed; dbname=postgresql://u:***@h/x; Zq9ab kept"
        );
        assert_eq!(redact("nothing here"), "nothing here");
    }

    #[test]
    fn a_secret_containing_another_is_masked_whole() {
        remember("inner-part");
        remember("outer-inner-part-outer");
        assert_eq!(redact("x outer-inner-part-outer y"), "x *** y");
    }
}
