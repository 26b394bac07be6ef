//! Keys and the authenticated envelope every stored object is wrapped in.
//!
//! Envelope: `nonce (12) || AES-256-GCM(payload) || tag (16)`, where the
//! associated data names the object type, so an object of one kind cannot be
//! passed off as another. Payload: one mode byte (0 raw, 1 zstd) and the data.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Id;

/// Bytes an envelope adds to its payload (nonce + tag).
pub const ENVELOPE_OVERHEAD: usize = NONCE_LEN + 16;

const MODE_RAW: u8 = 0;
const MODE_ZSTD: u8 = 1;

/// What an envelope holds; bound into the AEAD as associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// The repository config.
    Config,
    /// A master key wrapped by a password-derived key.
    Key,
    /// An index file.
    Index,
    /// A snapshot.
    Snapshot,
    /// The header at the end of a pack.
    PackHeader,
    /// A data or tree blob inside a pack.
    Blob,
    /// A legal hold.
    Hold,
    /// A prune mark: packs condemned for deletion after a grace period.
    PruneMark,
    /// The prune lock.
    PruneLock,
    /// The record a prune's sweep leaves of the packs it deletes.
    SweepRecord,
}

impl ObjectKind {
    /// The largest plaintext an envelope of this kind may hold: decoding
    /// stops there, so a crafted envelope (a zstd bomb) never makes a
    /// reader allocate more (`docs/format.md`, "Limits").
    pub fn max_plaintext(self) -> usize {
        const KIB: usize = 1 << 10;
        const MIB: usize = 1 << 20;
        match self {
            ObjectKind::Config | ObjectKind::PruneLock => 64 * KIB,
            ObjectKind::Key => 4 * KIB,
            ObjectKind::Hold => MIB,
            ObjectKind::Snapshot => 64 * MIB,
            ObjectKind::PackHeader => crate::limits::MAX_PACK_HEADER as usize,
            ObjectKind::Blob => crate::limits::MAX_TREE_BLOB as usize,
            ObjectKind::Index | ObjectKind::PruneMark | ObjectKind::SweepRecord => 256 * MIB,
        }
    }

    /// The largest stored envelope of this kind: a writer stores a payload
    /// raw when compression does not make it smaller.
    pub fn max_envelope(self) -> u64 {
        (self.max_plaintext() + 1 + ENVELOPE_OVERHEAD) as u64
    }

    fn aad(self) -> &'static [u8] {
        match self {
            ObjectKind::Config => b"haven:config",
            ObjectKind::Key => b"haven:key",
            ObjectKind::Index => b"haven:index",
            ObjectKind::Snapshot => b"haven:snapshot",
            ObjectKind::PackHeader => b"haven:pack-header",
            ObjectKind::Blob => b"haven:blob",
            ObjectKind::Hold => b"haven:hold",
            ObjectKind::PruneMark => b"haven:prune-mark",
            ObjectKind::PruneLock => b"haven:prune-lock",
            ObjectKind::SweepRecord => b"haven:prune-sweep",
        }
    }
}

/// Fill `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    // The system RNG failing means the machine cannot do cryptography at all.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(buf).expect("system random number generator failed");
}

/// A 256-bit AES-GCM key.
#[derive(Clone)]
pub struct AeadKey(std::sync::Arc<LessSafeKey>);

impl AeadKey {
    /// Key from 32 raw bytes.
    pub fn new(bytes: &[u8; 32]) -> Self {
        #[allow(clippy::expect_used)]
        let unbound =
            UnboundKey::new(&AES_256_GCM, bytes).expect("32 bytes is a valid AES-256 key");
        AeadKey(std::sync::Arc::new(LessSafeKey::new(unbound)))
    }

    /// Encrypt `payload` (already mode-prefixed) into an envelope.
    fn seal_payload(&self, kind: ObjectKind, mut out: Vec<u8>) -> Vec<u8> {
        // `out` holds NONCE_LEN zero bytes followed by the payload.
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce);
        out[..NONCE_LEN].copy_from_slice(&nonce);
        #[allow(clippy::expect_used)]
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kind.aad()),
                &mut out[NONCE_LEN..],
            )
            .expect("AES-GCM sealing only fails for payloads above 64 GiB");
        out.extend_from_slice(tag.as_ref());
        out
    }

    /// Encrypt `data` uncompressed.
    pub fn seal_raw(&self, kind: ObjectKind, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 1 + ENVELOPE_OVERHEAD);
        out.resize(NONCE_LEN, 0);
        out.push(MODE_RAW);
        out.extend_from_slice(data);
        self.seal_payload(kind, out)
    }

    /// Decrypt an envelope and decode its payload. `size_hint` is the expected
    /// plaintext length when known (it speeds up decompression); decoding
    /// never produces more than it, nor more than the kind's
    /// [`ObjectKind::max_plaintext`].
    pub fn open(
        &self,
        kind: ObjectKind,
        envelope: &[u8],
        size_hint: Option<usize>,
    ) -> Result<Vec<u8>> {
        let mut copy = envelope.to_vec();
        self.open_in_place(kind, &mut copy, size_hint)
            .map(std::borrow::Cow::into_owned)
    }

    /// Decrypt an envelope in its own buffer. Raw payloads are returned as a
    /// slice of that buffer (no copy); compressed ones are decompressed.
    pub fn open_in_place<'a>(
        &self,
        kind: ObjectKind,
        envelope: &'a mut [u8],
        size_hint: Option<usize>,
    ) -> Result<std::borrow::Cow<'a, [u8]>> {
        if envelope.len() < ENVELOPE_OVERHEAD + 1 {
            return Err(Error::corrupt(
                format!("{kind:?}"),
                "object too short to be an envelope",
            ));
        }
        let (nonce, rest) = envelope.split_at_mut(NONCE_LEN);
        #[allow(clippy::expect_used)]
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).expect("nonce slice has NONCE_LEN bytes");
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(kind.aad()), rest)
            .map_err(|_| {
                Error::corrupt(
                    format!("{kind:?}"),
                    "authentication failed (data damaged or wrong key)",
                )
            })?;
        decode_payload(kind, plain, size_hint)
    }
}

/// Expected plaintexts up to this size are decompressed in one call into a
/// buffer of exactly that size (the hot path: data blobs); larger or
/// unknown ones stream into a buffer that grows with what is really there.
const ONE_CALL_LIMIT: usize = crate::limits::MAX_DATA_BLOB as usize;

/// Decode a payload (mode byte + body) into at most `limit` bytes. Only
/// the mode bytes below exist; others are rejected, as is a body that
/// decompresses beyond the limit.
pub fn decode_payload(
    kind: ObjectKind,
    plain: &[u8],
    size_hint: Option<usize>,
) -> Result<std::borrow::Cow<'_, [u8]>> {
    let corrupt = |detail: String| Error::corrupt(format!("{kind:?}"), detail);
    let limit = size_hint.map_or(kind.max_plaintext(), |n| n.min(kind.max_plaintext()));
    let (&mode, body) = plain
        .split_first()
        .ok_or_else(|| corrupt("empty payload".into()))?;
    let decoded = match mode {
        MODE_RAW => std::borrow::Cow::Borrowed(body),
        MODE_ZSTD if size_hint.is_some() && limit <= ONE_CALL_LIMIT => std::borrow::Cow::Owned(
            zstd::bulk::decompress(body, limit).map_err(|e| corrupt(format!("zstd: {e}")))?,
        ),
        MODE_ZSTD => {
            use std::io::Read as _;
            let mut decoder = zstd::stream::read::Decoder::with_buffer(body)
                .map_err(|e| corrupt(format!("zstd: {e}")))?;
            // The decoder's window is allocated as the frame asks: no frame
            // may ask for more than the plaintext it can legally hold.
            let window_log = limit.max(1 << 10).next_power_of_two().trailing_zeros();
            decoder
                .window_log_max(window_log)
                .map_err(|e| corrupt(format!("zstd: {e}")))?;
            let mut out = Vec::new();
            decoder
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| corrupt(format!("zstd: {e}")))?;
            std::borrow::Cow::Owned(out)
        }
        other => return Err(corrupt(format!("unknown payload mode {other}"))),
    };
    if decoded.len() > limit {
        return Err(corrupt(format!(
            "the payload decodes to more than {limit} bytes, the limit for this object"
        )));
    }
    Ok(decoded)
}

/// Compresses and seals objects; holds a reusable zstd context, so keep one
/// per worker thread.
pub struct Sealer {
    key: AeadKey,
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl Sealer {
    /// A sealer compressing at `level` (0 disables compression).
    pub fn new(key: AeadKey, level: i32) -> Result<Self> {
        let compressor = if level == 0 {
            None
        } else {
            let mut c = zstd::bulk::Compressor::new(level)
                .map_err(|e| Error::InvalidArgument(format!("zstd level {level}: {e}")))?;
            // The frame records the content size, so readers can size buffers.
            c.include_contentsize(true)
                .map_err(|e| Error::InvalidArgument(format!("zstd: {e}")))?;
            Some(c)
        };
        Ok(Sealer { key, compressor })
    }

    /// Compress `data` if that makes it smaller, then encrypt.
    pub fn seal(&mut self, kind: ObjectKind, data: &[u8]) -> Vec<u8> {
        if let Some(compressor) = self.compressor.as_mut() {
            let mut out = Vec::with_capacity(NONCE_LEN + 1 + data.len() + ENVELOPE_OVERHEAD);
            out.resize(NONCE_LEN, 0);
            out.push(MODE_ZSTD);
            let start = out.len();
            // Room for exactly `data.len()` compressed bytes: if zstd needs
            // more, the data is incompressible and is stored raw instead.
            out.resize(start + data.len(), 0);
            if let Ok(n) = compressor.compress_to_buffer(data, &mut out[start..])
                && n < data.len()
            {
                out.truncate(start + n);
                return self.key.seal_payload(kind, out);
            }
        }
        self.key.seal_raw(kind, data)
    }
}

/// The secrets of a repository, created at `init` and wrapped by every key.
#[derive(Clone, Serialize, Deserialize)]
pub struct MasterKey {
    /// AES-256-GCM key for all objects.
    #[serde(with = "b64_array")]
    pub encryption: [u8; 32],
    /// BLAKE3 key for blob ids.
    #[serde(with = "b64_array")]
    pub blob_id: [u8; 32],
    /// Seed of the FastCDC gear table (secret, so boundaries leak nothing).
    pub chunker_seed: u64,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// Fresh random key material.
    pub fn generate() -> Self {
        let mut encryption = [0u8; 32];
        let mut blob_id = [0u8; 32];
        let mut seed = [0u8; 8];
        random_bytes(&mut encryption);
        random_bytes(&mut blob_id);
        random_bytes(&mut seed);
        let mut chunker_seed = u64::from_le_bytes(seed);
        if chunker_seed == 0 {
            // fastcdc treats seed 0 as "use the public table".
            chunker_seed = 1;
        }
        MasterKey {
            encryption,
            blob_id,
            chunker_seed,
        }
    }

    /// The AEAD key for objects.
    pub fn aead(&self) -> AeadKey {
        AeadKey::new(&self.encryption)
    }

    /// Keyed BLAKE3 id of a blob's plaintext.
    pub fn blob_id(&self, data: &[u8]) -> Id {
        Id(*blake3::keyed_hash(&self.blob_id, data).as_bytes())
    }
}

/// Argon2id parameters of a key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// 48 MiB, 4 passes, 1 lane: the same memory × time cost per guess as
    /// RFC 9106's 64 MiB × 3 (well above OWASP's minimum), with a lower
    /// memory peak for every command that opens a repository. ~0.2 s.
    fn default() -> Self {
        KdfParams {
            m_cost: 48 * 1024,
            t_cost: 4,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    /// Derive a 32-byte key-encryption key from a password.
    pub fn derive(&self, password: &[u8], salt: &[u8]) -> Result<AeadKey> {
        let params = argon2::Params::new(self.m_cost, self.t_cost, self.p_cost, Some(32))
            .map_err(|e| Error::corrupt("key file", format!("invalid Argon2 parameters: {e}")))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = [0u8; 32];
        argon
            .hash_password_into(password, salt, &mut out)
            .map_err(|e| Error::corrupt("key file", format!("Argon2: {e}")))?;
        Ok(AeadKey::new(&out))
    }
}

/// Serde helpers for byte arrays as base64 strings.
pub mod b64_array {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize as standard base64.
    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    /// Deserialize from standard base64 of exactly N bytes.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        let bytes = STANDARD.decode(s).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom(format!("expected {N} bytes")))
    }
}

/// Serde helpers for byte vectors as base64 strings.
pub mod b64_vec {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize as standard base64.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    /// Deserialize from standard base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_compressible_and_not() {
        let key = MasterKey::generate();
        let mut sealer = Sealer::new(key.aead(), 3).expect("level 3 is valid");
        let text = b"haven ".repeat(1000);
        let mut noise = vec![0u8; 4096];
        random_bytes(&mut noise);
        for data in [&text[..], &noise[..], &[][..]] {
            let env = sealer.seal(ObjectKind::Blob, data);
            let back = key
                .aead()
                .open(ObjectKind::Blob, &env, Some(data.len()))
                .expect("opens");
            assert_eq!(back, data);
        }
        // Compressible data shrinks; random data is stored raw (mode byte 0).
        assert!(sealer.seal(ObjectKind::Blob, &text).len() < text.len() / 10);
        let env = sealer.seal(ObjectKind::Blob, &noise);
        assert_eq!(env.len(), noise.len() + 1 + ENVELOPE_OVERHEAD);
    }

    #[test]
    fn open_rejects_flipped_bit_wrong_kind_and_wrong_key() {
        let key = MasterKey::generate();
        let env = key.aead().seal_raw(ObjectKind::Snapshot, b"{}");
        let mut flipped = env.clone();
        flipped[14] ^= 1;
        assert!(
            key.aead()
                .open(ObjectKind::Snapshot, &flipped, None)
                .is_err()
        );
        assert!(key.aead().open(ObjectKind::Index, &env, None).is_err());
        assert!(
            MasterKey::generate()
                .aead()
                .open(ObjectKind::Snapshot, &env, None)
                .is_err()
        );
        assert_eq!(
            key.aead()
                .open(ObjectKind::Snapshot, &env, None)
                .expect("opens"),
            b"{}"
        );
    }

    #[test]
    fn kdf_is_deterministic_per_salt() {
        let p = KdfParams {
            m_cost: 256,
            t_cost: 1,
            p_cost: 1,
        };
        let env = p
            .derive(b"pw", b"saltsaltsaltsalt")
            .expect("derive")
            .seal_raw(ObjectKind::Key, b"x");
        let again = p.derive(b"pw", b"saltsaltsaltsalt").expect("derive");
        assert_eq!(
            again.open(ObjectKind::Key, &env, None).expect("same key"),
            b"x"
        );
        let other = p.derive(b"pw", b"othersaltothersa").expect("derive");
        assert!(other.open(ObjectKind::Key, &env, None).is_err());
    }
}
