//! Secrets Haven must read back (TOTP seeds) kept sealed in the database:
//! AES-256-GCM under a key held outside it, `DATA_DIR/access/seal.key`
//! (0600, made on first use). The database alone opens nothing.

use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use super::AccessError;
use crate::instance::{private_dir, write_private};

/// What a sealed value starts with (its format's version).
const PREFIX: &str = "v1:";

/// The data dir's sealing key.
pub struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    /// The key of `data_dir`, made when there is none yet.
    pub fn open(data_dir: &Path) -> Result<Sealer, AccessError> {
        let path = key_file(data_dir);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => make_key(&path)?,
            Err(e) => return Err(seal_error(&path, e)),
        };
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| {
            AccessError::Invalid(format!(
                "{} is not a sealing key (32 bytes): restore it from a backup of the data dir",
                path.display()
            ))
        })?;
        Ok(Sealer {
            key: LessSafeKey::new(key),
        })
    }

    /// `secret`, sealed (a fresh nonce each time).
    pub fn seal(&self, secret: &[u8]) -> Result<String, AccessError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| AccessError::Invalid("no randomness for a nonce".into()))?;
        let mut sealed = secret.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut sealed,
            )
            .map_err(|_| AccessError::Invalid("sealing failed".into()))?;
        Ok(format!(
            "{PREFIX}{}{}",
            hex::encode(nonce),
            hex::encode(sealed)
        ))
    }

    /// The secret in `sealed` (refused when it was not sealed with this
    /// key, or was changed).
    pub fn open_sealed(&self, sealed: &str) -> Result<Vec<u8>, AccessError> {
        let broken = || {
            AccessError::Invalid(
                "a sealed secret does not open with the data dir's key (access/seal.key replaced, or the database edited)".into(),
            )
        };
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|h| hex::decode(h).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or_else(broken)?;
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| broken())?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut body)
            .map_err(|_| broken())?;
        Ok(plain.to_vec())
    }
}

fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("access").join("seal.key")
}

fn make_key(path: &Path) -> Result<Vec<u8>, AccessError> {
    let mut key = vec![0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| AccessError::Invalid("no randomness for a key".into()))?;
    if let Some(dir) = path.parent() {
        private_dir(dir).map_err(|e| seal_error(dir, e))?;
    }
    write_private(path, &key).map_err(|e| seal_error(path, e))?;
    Ok(key)
}

fn seal_error(path: &Path, e: std::io::Error) -> AccessError {
    AccessError::Invalid(format!("the sealing key {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_only() {
        let dir = tempfile::tempdir().expect("dir");
        let sealer = Sealer::open(dir.path()).expect("key");
        let sealed = sealer.seal(b"JBSWY3DPEHPK3PXP").expect("seal");
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_ne!(sealed, sealer.seal(b"JBSWY3DPEHPK3PXP").expect("seal"));
        assert_eq!(
            sealer.open_sealed(&sealed).expect("open"),
            b"JBSWY3DPEHPK3PXP"
        );
        let again = Sealer::open(dir.path()).expect("the same key");
        assert_eq!(
            again.open_sealed(&sealed).expect("open"),
            b"JBSWY3DPEHPK3PXP"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(key_file(dir.path()))
                .expect("key")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let other = tempfile::tempdir().expect("dir");
        assert!(
            Sealer::open(other.path())
                .expect("key")
                .open_sealed(&sealed)
                .is_err()
        );
        let mut flipped = sealed.clone();
        flipped.pop();
        flipped.push(if sealed.ends_with('0') { '1' } else { '0' });
        assert!(sealer.open_sealed(&flipped).is_err());
    }
}
