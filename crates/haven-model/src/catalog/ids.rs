//! The catalog's ids, one type per kind of object, so a policy id cannot
//! be passed where a repository id is meant. The loader checks their
//! spelling (lowercase letters, digits, `-`, `_`, `.`); they read as
//! strings (`Deref<Target = str>`) and serialise as plain strings.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

macro_rules! catalog_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl From<&$name> for String {
            fn from(id: &$name) -> String {
                id.0.clone()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

catalog_id!(
    /// A `[[service]]`'s id.
    ServiceId
);
catalog_id!(
    /// A `[[system]]`'s id.
    SystemId
);
catalog_id!(
    /// A backup set's name, unique within its system.
    SetName
);
catalog_id!(
    /// A `[[policy]]`'s id.
    PolicyId
);
catalog_id!(
    /// A `[[repository]]`'s id.
    RepositoryId
);
catalog_id!(
    /// A `[[team]]`'s id.
    TeamId
);
catalog_id!(
    /// A `[[channel]]`'s id.
    ChannelId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_and_serialise_as_their_text() {
        let id = PolicyId::from("hourly-db");
        assert_eq!(id, "hourly-db");
        assert_eq!(id.len(), 9);
        assert_eq!(format!("{id}"), "hourly-db");
        assert_eq!(serde_json::to_string(&id).expect("json"), "\"hourly-db\"");
        let back: PolicyId = serde_json::from_str("\"hourly-db\"").expect("parse");
        assert_eq!(back, id);
        let mut by_id = std::collections::HashMap::new();
        by_id.insert(id.clone(), 1);
        assert_eq!(by_id.get("hourly-db"), Some(&1));
    }
}
