//! Every decoder of repository objects, fed random bytes and mutations of
//! valid objects: none panics, and none allocates beyond what its input
//! can hold (a length field is never taken at its word). The largest
//! single allocation each call makes is measured by the test binary's
//! allocator ([`largest_allocation_during`]).

use haven_engine::testing::{MasterKey, ObjectKind, Sealer, decode_payload, pack_data_end, rules};
use haven_engine::{Id, Location};
use proptest::prelude::*;

use crate::alloc::largest_allocation_during;

/// Bytes a JSON decoder may allocate at once for an input of `len`
/// bytes: a small multiple of the input (vectors grow by doubling, each
/// element is bigger than its JSON), never what the input claims.
fn json_budget(len: usize) -> usize {
    64 * len + (1 << 20)
}

/// A valid object of each kind, as a writer would encode it.
fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let id = Id([7; 32]);
    let node = serde_json::json!({
        "name": "etc", "type": "dir", "mode": 493, "uid": 0, "gid": 0,
        "mtime_ns": 1, "ctime_ns": 1, "inode": 2, "device": 3, "subtree": id
    });
    let file = serde_json::json!({
        "name": {"base64": "/w=="}, "type": "file", "mode": 420, "uid": 0, "gid": 0,
        "mtime_ns": 1, "ctime_ns": 1, "inode": 2, "device": 3, "size": 10, "content": [id, id]
    });
    let blob =
        serde_json::json!({"id": id, "type": "data", "offset": 0, "length": 40, "raw_length": 11});
    let summary = serde_json::json!({
        "files_new": 1, "files_changed": 0, "files_unmodified": 0, "dirs": 2, "bytes_read": 5,
        "bytes_total": 5, "bytes_added": 5, "data_blobs_added": 1, "tree_blobs_added": 2,
        "errors": 0, "duration_ms": 3
    });
    vec![
        (
            "tree",
            serde_json::json!({"nodes": [node, file]})
                .to_string()
                .into_bytes(),
        ),
        (
            "snapshot",
            serde_json::json!({
                "version": 1, "time": "2026-11-29T10:00:00Z", "tree": id, "paths": ["/srv"],
                "hostname": "h", "username": "u", "tags": ["daily"], "program": "haven",
                "summary": summary
            })
            .to_string()
            .into_bytes(),
        ),
        (
            "index",
            serde_json::json!({"version": 1, "packs": [{"id": id, "size": 1000, "blobs": [blob]}]})
                .to_string()
                .into_bytes(),
        ),
        (
            "header",
            serde_json::json!({"blobs": [blob]})
                .to_string()
                .into_bytes(),
        ),
        (
            "key",
            serde_json::json!({
                "version": 1, "kind": "full", "created": "2026-11-29T10:00:00Z", "hostname": "h",
                "username": "u", "kdf": "argon2id",
                "kdf_params": {"m_cost": 1024, "t_cost": 1, "p_cost": 1},
                "salt": "AAAAAAAAAAAAAAAAAAAAAA==", "master_key": "AAAA"
            })
            .to_string()
            .into_bytes(),
        ),
        (
            "config",
            serde_json::json!({"format": "haven-repository", "version": 1, "encrypted": "AAAA"})
                .to_string()
                .into_bytes(),
        ),
        (
            "repo-config",
            serde_json::json!({
                "version": 1, "id": id, "created": "2026-11-29T10:00:00Z",
                "chunker": {"algorithm": "fastcdc-2020", "min_size": 4096, "avg_size": 16384,
                            "max_size": 65536, "normalization": 1},
                "pack_size": 16777216, "compression_level": 3
            })
            .to_string()
            .into_bytes(),
        ),
    ]
}

/// Run the decoder for `kind` on `bytes`; true when it accepted them.
fn decode(kind: &str, bytes: &[u8]) -> bool {
    match kind {
        "tree" => rules::decode_tree(bytes).is_ok(),
        "snapshot" => rules::decode_snapshot(bytes).is_ok(),
        "index" => rules::decode_index_file(bytes).is_ok(),
        "header" => rules::decode_pack_header(bytes, 1000).is_ok(),
        "key" => rules::decode_key_file(bytes).is_ok(),
        "config" => rules::decode_config_file(bytes).is_ok(),
        "repo-config" => rules::decode_repo_config(bytes).is_ok(),
        "hold" => rules::decode_hold(bytes).is_ok(),
        "mark" => rules::decode_mark(bytes).is_ok(),
        "sweep" => rules::decode_sweep_record(bytes).is_ok(),
        "lock" => rules::decode_prune_lock(bytes).is_ok(),
        other => panic!("no decoder {other}"),
    }
}

const DECODERS: &[&str] = &[
    "tree",
    "snapshot",
    "index",
    "header",
    "key",
    "config",
    "repo-config",
    "hold",
    "mark",
    "sweep",
    "lock",
];

/// A mutation of a valid encoding: flipped, inserted, removed bytes, a
/// cut, or a number blown up to its type's limit.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Truncate(usize),
    HugeNumber(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), 1usize..32).prop_map(|(at, n)| Mutation::Remove(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::HugeNumber),
    ]
}

fn mutate(bytes: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for m in mutations {
        let len = out.len().max(1);
        match m {
            Mutation::Flip(at, b) => {
                if let Some(byte) = out.get_mut(at % len) {
                    *byte ^= b | 1;
                }
            }
            Mutation::Insert(at, b) => {
                let at = at % (out.len() + 1);
                out.splice(at..at, b.iter().copied());
            }
            Mutation::Remove(at, n) => {
                let at = at % len;
                let end = (at + n).min(out.len());
                if at < end {
                    out.drain(at..end);
                }
            }
            Mutation::Truncate(at) => out.truncate(at % len),
            Mutation::HugeNumber(at) => {
                // Replace the digits of one number with 2^64 - 1: a length
                // field claiming everything.
                let at = at % len;
                if let Some(start) = out[at..].iter().position(u8::is_ascii_digit) {
                    let start = at + start;
                    let end = start
                        + out[start..]
                            .iter()
                            .position(|b| !b.is_ascii_digit())
                            .unwrap_or(out.len() - start);
                    out.splice(start..end, b"18446744073709551615".iter().copied());
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoders_survive_random_bytes(
        kind in prop::sample::select(DECODERS),
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let (_, largest) = largest_allocation_during(|| decode(kind, &bytes));
        prop_assert!(largest <= json_budget(bytes.len()), "{kind}: {largest} bytes at once");
    }

    #[test]
    fn decoders_survive_mutated_objects(
        sample in 0usize..7,
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let (kind, valid) = &samples()[sample];
        prop_assert!(decode(kind, valid), "the {kind} sample itself decodes");
        let bytes = mutate(valid, &mutations);
        let (_, largest) = largest_allocation_during(|| decode(kind, &bytes));
        prop_assert!(largest <= json_budget(bytes.len()), "{kind}: {largest} bytes at once");
    }

    /// Envelopes: random bytes and mutated envelopes never open (the tag
    /// fails), and the buffers for them are the input's size.
    #[test]
    fn envelopes_never_open_when_damaged(
        data in prop::collection::vec(any::<u8>(), 0..4096),
        mutations in prop::collection::vec(mutation(), 1..4),
        compress in any::<bool>(),
    ) {
        let key = MasterKey::generate().aead();
        let mut sealer = Sealer::new(key.clone(), if compress { 3 } else { 0 }).expect("sealer");
        let envelope = sealer.seal(ObjectKind::Snapshot, &data);
        let damaged = mutate(&envelope, &mutations);
        let (opened, largest) =
            largest_allocation_during(|| key.open(ObjectKind::Snapshot, &damaged, None).ok());
        if damaged != envelope {
            prop_assert!(opened.is_none());
        }
        prop_assert!(largest <= 2 * damaged.len() + (64 << 10), "{largest} bytes at once");
    }

    /// Payloads (after the tag verified: a writer holding the key chose
    /// them): mode bytes, zstd frames cut, bent or claiming any size. What
    /// decodes never exceeds the object's limit or the expected length.
    #[test]
    fn payloads_decode_within_their_limits(
        data in prop::collection::vec(any::<u8>(), 0..8192),
        repeat in 1usize..64,
        mutations in prop::collection::vec(mutation(), 0..4),
        expected in prop::option::of(0usize..100_000),
    ) {
        let plain: Vec<u8> = data.iter().copied().cycle().take(data.len() * repeat).collect();
        let mut payload = vec![1u8];
        payload.extend(zstd::bulk::compress(&plain, 3).expect("compress"));
        let payload = mutate(&payload, &mutations);
        let limit = expected.unwrap_or(ObjectKind::Snapshot.max_plaintext());
        let (decoded, largest) = largest_allocation_during(|| {
            decode_payload(ObjectKind::Snapshot, &payload, expected).map(|d| d.len())
        });
        if let Ok(len) = decoded {
            prop_assert!(len <= limit);
        }
        // At most twice the limit (a buffer growing by doubling), never
        // the size a frame claims.
        prop_assert!(largest <= 2 * limit + (4 << 20), "{largest} bytes at once");
    }

    /// A pack's last four bytes claim its header's length.
    #[test]
    fn pack_tails_are_bounded(size in any::<u64>(), claimed in any::<u32>()) {
        if let Ok(end) = pack_data_end(size, u64::from(claimed)) {
            prop_assert!(end + 4 + u64::from(claimed) == size);
            prop_assert!(u64::from(claimed) <= rules::MAX_PACK_HEADER);
        }
    }

    /// Repository locations as users type them.
    #[test]
    fn locations_parse_or_explain(text in ".{0,80}", scheme in prop::sample::select(
        &["", "s3:", "s3:http://", "s3:https://h:1/", "local:", "ftp://"][..]))
    {
        let input = format!("{scheme}{text}");
        let (parsed, largest) = largest_allocation_during(|| Location::parse(&input));
        if let Err(e) = parsed {
            prop_assert!(!e.to_string().is_empty());
        }
        prop_assert!(largest <= json_budget(input.len()));
    }
}

/// Zero-length payloads, unknown modes and a frame claiming 2^62 bytes.
#[test]
fn payload_edge_cases_are_rejected_cleanly() {
    assert!(decode_payload(ObjectKind::Snapshot, &[], None).is_err());
    assert!(decode_payload(ObjectKind::Snapshot, &[7, 1, 2], None).is_err());
    // A zstd frame header declaring a content size of 2^62, then nothing.
    let mut bomb = vec![1u8, 0x28, 0xb5, 0x2f, 0xfd, 0xe0];
    bomb.extend_from_slice(&(1u64 << 62).to_le_bytes());
    bomb.extend_from_slice(&[0, 0, 0]);
    let (result, largest) = largest_allocation_during(|| {
        decode_payload(ObjectKind::Blob, &bomb, Some(1 << 20)).map(|d| d.len())
    });
    assert!(result.is_err());
    assert!(largest <= 4 << 20, "{largest}");
    // A real bomb: 64 MiB of zeros in a few KiB, read as a 4 KiB object.
    let zeros = vec![0u8; 64 << 20];
    let mut payload = vec![1u8];
    payload.extend(zstd::bulk::compress(&zeros, 19).expect("compress"));
    drop(zeros);
    let (result, largest) = largest_allocation_during(|| {
        decode_payload(ObjectKind::Key, &payload, None).map(|d| d.len())
    });
    assert!(result.is_err(), "a key object is at most 4 KiB");
    assert!(largest <= 1 << 20, "{largest}");
}

/// The instrument itself: an allocation of a claimed size is seen.
#[test]
fn the_allocation_tracker_sees_a_claimed_size() {
    let claimed = 10 << 20;
    let (buffer, largest) = largest_allocation_during(|| Vec::<u8>::with_capacity(claimed));
    assert!(largest >= claimed, "{largest}");
    drop(buffer);
    let (_, none) = largest_allocation_during(|| 1 + 1);
    assert_eq!(none, 0);
}
