//! Writing arbitrary repository objects, for tests that play a backup
//! client turned attacker: it holds the password, so it can store any
//! tree, snapshot or index it likes, well-formed or not. Readers must
//! survive whatever this writes. Only built with the `testing` feature.

use std::sync::Arc;

// The format's internals the decoder tests drive directly (the crate keeps
// them private otherwise).
pub use crate::chunker::Chunker;
pub use crate::crypto::{MasterKey, ObjectKind, Sealer, decode_payload};
pub use crate::format::rules;
pub use crate::repo::pack_data_end;

use crate::error::Result;
use crate::format::BlobType;
use crate::id::Id;
use crate::index::Index;
use crate::repo::{INDEX_DIR, Repository, SNAPSHOT_DIR};
use crate::saver::{Saver, SaverHandle};

/// Stores blobs of any content and type, and objects of any JSON.
pub struct Forge {
    repo: Repository,
    saver: Saver,
    handle: SaverHandle,
}

impl Forge {
    /// Start writing into `repo`.
    pub fn new(repo: &Repository) -> Result<Self> {
        let saver = Saver::start(repo, Arc::new(Index::default()), Vec::new(), 0, 1)?;
        let handle = saver.handle();
        Ok(Forge {
            repo: repo.clone(),
            saver,
            handle,
        })
    }

    /// Store a data blob; returns its id.
    pub fn data(&self, bytes: &[u8]) -> Id {
        self.blob(BlobType::Data, bytes.to_vec())
    }

    /// Store a tree blob holding `json` as it is; returns its id.
    pub fn tree(&self, json: &serde_json::Value) -> Id {
        self.blob(BlobType::Tree, json.to_string().into_bytes())
    }

    /// Store any bytes as a blob of any type.
    pub fn blob(&self, blob_type: BlobType, bytes: Vec<u8>) -> Id {
        #[allow(clippy::expect_used)]
        self.handle
            .save(blob_type, bytes)
            .expect("the forge's pipeline accepts blobs")
    }

    /// Write the packs and their index.
    pub fn finish(self) -> Result<()> {
        drop(self.handle);
        self.saver.finish().map(|_| ())
    }

    /// Store `json` as a snapshot file; returns its id.
    pub fn snapshot(repo: &Repository, json: &serde_json::Value) -> Result<Id> {
        repo.save_file(
            SNAPSHOT_DIR,
            ObjectKind::Snapshot,
            json.to_string().as_bytes(),
        )
    }

    /// Store `json` as an index file; returns its id.
    pub fn index(repo: &Repository, json: &serde_json::Value) -> Result<Id> {
        repo.save_file(INDEX_DIR, ObjectKind::Index, json.to_string().as_bytes())
    }

    /// Encrypt `plain` as an object of `kind` with the repository's key
    /// (for decoders fed sealed but malformed objects).
    pub fn seal(repo: &Repository, kind: ObjectKind, plain: &[u8]) -> Vec<u8> {
        repo.aead.seal_raw(kind, plain)
    }

    /// The repository this forge writes into.
    pub fn repository(&self) -> &Repository {
        &self.repo
    }
}
