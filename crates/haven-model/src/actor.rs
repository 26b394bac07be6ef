//! Who does something: the identity that was authenticated (the API
//! token, the local account running a command, Haven itself), and the
//! name a person declared, which nothing verifies and which is recorded
//! beside it, never instead of it.

use serde::{Deserialize, Serialize};

/// Who Haven itself is, as an actor (an alert resolved because its
/// condition cleared, a scheduled run).
pub const AUTO: &str = "haven";

/// Longest declared name kept, in characters.
pub const DECLARED_MAX: usize = 64;

/// Who acts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The authenticated identity: `api-token`, `local:<account>`, or
    /// `haven` for the server itself.
    pub who: String,
    /// The name a person gave (`--by`, `X-Haven-User`), unverified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<String>,
}

impl Actor {
    /// `who`, with a declared name kept to [`DECLARED_MAX`] printable
    /// characters (empty: none).
    pub fn new(who: impl Into<String>, declared: Option<&str>) -> Self {
        let declared = declared
            .map(|name| {
                name.trim()
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .take(DECLARED_MAX)
                    .collect::<String>()
            })
            .filter(|name| !name.is_empty());
        Actor {
            who: who.into(),
            declared,
        }
    }

    /// Haven itself (an alert whose condition cleared, a scheduled run).
    pub fn haven() -> Self {
        Actor::new(AUTO, None)
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.declared {
            Some(name) => write!(f, "{} (declared: {name})", self.who),
            None => f.write_str(&self.who),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_names_are_bounded_and_printable() {
        let long = "x".repeat(500);
        assert_eq!(
            Actor::new("api-token", Some(&long))
                .declared
                .map(|d| d.len()),
            Some(DECLARED_MAX)
        );
        assert_eq!(
            Actor::new("api-token", Some("ana\nroot"))
                .declared
                .as_deref(),
            Some("ana?root")
        );
        assert_eq!(Actor::new("api-token", Some("  ")).declared, None);
        assert_eq!(
            Actor::new("api-token", Some("ana")).to_string(),
            "api-token (declared: ana)"
        );
    }
}
