//! Key management: several passwords open one repository, each through its
//! own key file wrapping the same master key.

use jiff::Timestamp;
use serde::Serialize;

use crate::crypto::KdfParams;
use crate::error::{Error, Result};
use crate::format::KeyKind;
use crate::id::Id;
use crate::repo::{KEY_DIR, Repository};

/// What `key list` shows of a key (never any secret).
#[derive(Clone, Debug, Serialize)]
pub struct KeyInfo {
    /// Key file id.
    pub id: String,
    /// First 8 hex digits.
    pub short_id: String,
    /// What the key may do.
    pub kind: KeyKind,
    /// When it was added.
    pub created: Timestamp,
    /// Host that added it.
    pub hostname: String,
    /// User that added it.
    pub username: String,
    /// True for the key this command was opened with.
    pub current: bool,
}

impl Repository {
    /// All keys, oldest first.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut keys = Vec::new();
        for path in self.backend.list(KEY_DIR)? {
            let name = path.rsplit('/').next().unwrap_or_default();
            let Ok(id) = name.parse::<Id>() else { continue };
            let file = crate::repo::read_key_file(&self.backend, &path)?;
            keys.push(KeyInfo {
                id: id.to_hex(),
                short_id: id.short(),
                kind: file.kind,
                created: file.created,
                hostname: file.hostname,
                username: file.username,
                current: id == self.key_id,
            });
        }
        keys.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    /// Resolve a key id prefix.
    pub fn find_key(&self, prefix: &str) -> Result<Id> {
        let wanted = prefix.to_ascii_lowercase();
        let matches: Vec<String> = self
            .list_keys()?
            .into_iter()
            .map(|k| k.id)
            .filter(|id| !wanted.is_empty() && id.starts_with(&wanted))
            .collect();
        match matches.as_slice() {
            [id] => id
                .parse()
                .map_err(|_| Error::corrupt("key list", "invalid key id")),
            [] => Err(Error::InvalidArgument(format!(
                "no key matches {prefix:?} (see `haven repo key list`)"
            ))),
            many => Err(Error::InvalidArgument(format!(
                "key prefix {prefix:?} matches {} keys; give more digits",
                many.len()
            ))),
        }
    }

    /// Remove a key. Refuses the last key (the data would be lost for
    /// good) and the key in use (remove it with another password, or
    /// use `rotate_key`).
    pub fn remove_key(&self, id: &Id) -> Result<()> {
        let keys = self.list_keys()?;
        if !keys.iter().any(|k| k.id == id.to_hex()) {
            return Err(Error::InvalidArgument(format!("no key {}", id.short())));
        }
        if keys.len() == 1 {
            return Err(Error::InvalidArgument(
                "refusing to remove the last key: without any key the repository can never be opened again".into(),
            ));
        }
        if *id == self.key_id {
            return Err(Error::InvalidArgument(format!(
                "refusing to remove key {}, the one this command was opened with; use `haven repo key rotate`, or open with another key",
                id.short()
            )));
        }
        self.backend.delete(&format!("{KEY_DIR}/{id}"))
    }

    /// Replace the key in use by a key for `new_password`: the new key is
    /// added and proven to open the repository before the old one goes.
    pub fn rotate_key(&self, new_password: &[u8], kdf: KdfParams) -> Result<(Id, Id)> {
        if new_password.is_empty() {
            return Err(Error::InvalidArgument(
                "the new password must not be empty".into(),
            ));
        }
        let added = self.add_key(new_password, kdf)?;
        // Read the new key back from storage and open it with the password.
        let path = format!("{KEY_DIR}/{added}");
        let file = crate::repo::read_key_file(&self.backend, &path)?;
        let kek = file.kdf_params.derive(new_password, &file.salt)?;
        let opens = kek
            .open(crate::crypto::ObjectKind::Key, &file.master_key, None)
            .ok()
            .and_then(|plain| serde_json::from_slice::<crate::crypto::MasterKey>(&plain).ok())
            .is_some_and(|m| m.encryption == self.master.encryption);
        if !opens {
            return Err(Error::corrupt(
                path,
                "the new key does not open the repository; the old key was kept",
            ));
        }
        self.backend.delete(&format!("{KEY_DIR}/{}", self.key_id))?;
        Ok((added, self.key_id))
    }
}
