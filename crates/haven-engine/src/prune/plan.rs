//! The pure part of prune: which packs to mark, when a mark is due, and
//! what a dry run would do. No I/O.

use std::collections::{HashMap, HashSet};

use jiff::SignedDuration;

use super::{
    PRUNE_RACE_MARGIN, PendingMark, PruneOptions, PruneReport, RepoView, Space, SweepSummary,
};
use crate::error::{Error, Result};
use crate::format::{IndexedPack, MarkReason, MarkedPack, PackedBlob, PruneMark};
use crate::id::Id;

/// What a run would do, for `--dry-run`: marks due now count as deleted
/// (the re-check that may keep some of their packs is not run), and with a
/// zero grace period so do the packs this run would mark.
pub(super) fn estimate(
    report: &mut PruneReport,
    view: &RepoView,
    plan: &MarkPlan,
    marks: &[(Id, PruneMark)],
    marked_packs: &[MarkedPack],
    options: &PruneOptions,
    pack_size: u64,
) {
    let repacked = repack_packs(plan, pack_size);
    let repack_estimate = repacked.bytes;
    report.mark.repack_bytes_written = repack_estimate;
    let mut after = view.on_storage;
    let mut remove = |space: Space| {
        after.packs -= space.packs.min(after.packs);
        after.bytes -= space.bytes.min(after.bytes);
    };
    for (id, mark) in marks {
        if is_due(mark, options) {
            let space = pack_space(&mark.packs);
            remove(space);
            report.swept.push(SweepSummary {
                mark: id.to_hex(),
                created: mark.created,
                deleted: space,
                kept: Space::default(),
            });
        } else {
            report.pending.push(pending(id, mark));
        }
    }
    // With no grace period the new mark is swept in the same run.
    if options.grace.is_zero() && !marked_packs.is_empty() {
        let space = pack_space(marked_packs);
        remove(space);
        report.swept.push(SweepSummary {
            mark: "(this run's mark)".into(),
            created: options.now,
            deleted: space,
            kept: Space::default(),
        });
    }
    after.packs += repacked.packs;
    after.bytes += repack_estimate;
    report.after = after;
}

/// The packs repacking writes, as the saver makes them: the needed blobs
/// in plan order (each once), a pack closed when it reaches `pack_size`,
/// each with its sealed JSON header and the header's length.
fn repack_packs(plan: &MarkPlan, pack_size: u64) -> Space {
    let mut written = Space::default();
    let mut seen: HashSet<Id> = HashSet::new();
    let mut blobs: Vec<PackedBlob> = Vec::new();
    let mut offset = 0u64;
    let mut close = |blobs: &mut Vec<PackedBlob>, offset: &mut u64| {
        let header = crate::format::PackHeader {
            blobs: std::mem::take(blobs),
        };
        let json = serde_json::to_vec(&header).map_or(0, |j| j.len());
        // Raw seal: mode byte, nonce and tag; then the u32 length.
        let size = *offset + (json + 1 + crate::crypto::ENVELOPE_OVERHEAD + 4) as u64;
        written.add(size);
        *offset = 0;
    };
    for pack in &plan.repack {
        for blob in plan.repack_blobs.get(pack).into_iter().flatten() {
            if !seen.insert(blob.id) {
                continue;
            }
            blobs.push(PackedBlob {
                offset: offset as u32,
                ..blob.clone()
            });
            offset += u64::from(blob.length);
            if offset >= pack_size {
                close(&mut blobs, &mut offset);
            }
        }
    }
    if !blobs.is_empty() {
        close(&mut blobs, &mut offset);
    }
    written
}

/// A mark is swept once the grace period it was made with has passed, or
/// the grace period of this run, if shorter (`--grace 0s` after an
/// ordinary prune deletes what that prune marked).
pub(super) fn is_due(mark: &PruneMark, options: &PruneOptions) -> bool {
    mark.delete_after <= options.now || mark.created + options.grace <= options.now
}

pub(super) fn pending(id: &Id, mark: &PruneMark) -> PendingMark {
    PendingMark {
        mark: id.to_hex(),
        created: mark.created,
        delete_after: mark.delete_after,
        packs: pack_space(&mark.packs),
    }
}

pub(super) fn pack_space(packs: &[MarkedPack]) -> Space {
    packs.iter().fold(Space::default(), |mut s, p| {
        s.add(p.size);
        s
    })
}

/// What the mark phase decided.
#[derive(Debug, Default)]
pub(super) struct MarkPlan {
    /// Packs no snapshot needs.
    pub unused: Vec<Id>,
    /// Partly used packs to repack, most wasteful first.
    pub repack: Vec<Id>,
    /// The needed blobs to copy out of each repacked pack.
    pub repack_blobs: HashMap<Id, Vec<PackedBlob>>,
    pub used_bytes: u64,
    pub unused_bytes: u64,
}

/// Decide which packs to mark: pure, over a view of the repository.
///
/// Each needed blob is attributed to one pack holding it (the first in
/// index order that is not already marked); other copies count as unused.
/// Packs with nothing attributed are unused. Partly used packs are
/// repacked, most wasteful first, until the unused bytes left in them are
/// at most `max_unused_percent` of the used bytes.
pub(super) fn plan_marks(
    view: &RepoView,
    already_marked: &HashSet<Id>,
    max_unused_percent: f64,
) -> MarkPlan {
    let live: Vec<&IndexedPack> = view
        .order
        .iter()
        .filter(|id| !already_marked.contains(id))
        .map(|id| &view.packs[id])
        .collect();
    let mut owner: HashMap<Id, Id> = HashMap::new();
    for pack in &live {
        for blob in &pack.blobs {
            if view.used.contains(&blob.id) {
                owner.entry(blob.id).or_insert(pack.id);
            }
        }
    }
    let mut plan = MarkPlan::default();
    let mut partly: Vec<(Id, u64, u64)> = Vec::new(); // (pack, used, unused)
    for pack in &live {
        let (mut used, mut unused) = (0u64, 0u64);
        for blob in &pack.blobs {
            if owner.get(&blob.id) == Some(&pack.id) {
                used += u64::from(blob.length);
            } else {
                unused += u64::from(blob.length);
            }
        }
        plan.used_bytes += used;
        plan.unused_bytes += unused;
        if used == 0 {
            plan.unused.push(pack.id);
        } else if unused > 0 {
            partly.push((pack.id, used, unused));
        }
    }
    let allowed = (plan.used_bytes as f64 * max_unused_percent / 100.0) as u64;
    let mut remaining: u64 = partly.iter().map(|(_, _, unused)| unused).sum();
    partly.sort_by(|a, b| {
        let ratio = |(_, used, unused): &(Id, u64, u64)| *unused as f64 / (*used + *unused) as f64;
        ratio(b).total_cmp(&ratio(a)).then(a.0.cmp(&b.0))
    });
    for (pack_id, _, unused) in partly {
        if remaining <= allowed {
            break;
        }
        remaining -= unused;
        let blobs = view.packs[&pack_id]
            .blobs
            .iter()
            .filter(|b| owner.get(&b.id) == Some(&pack_id))
            .cloned()
            .collect();
        plan.repack_blobs.insert(pack_id, blobs);
        plan.repack.push(pack_id);
    }
    plan
}

/// The packs the mark phase marks, with why.
pub(super) fn marked_packs(view: &RepoView, plan: &MarkPlan) -> Vec<MarkedPack> {
    plan.unused
        .iter()
        .map(|id| (id, MarkReason::Unused))
        .chain(plan.repack.iter().map(|id| (id, MarkReason::Repacked)))
        .map(|(id, reason)| MarkedPack {
            id: *id,
            size: view.packs[id].size,
            reason,
        })
        .collect()
}

/// The condemned packs a sweep must keep: a blob some snapshot needs must
/// survive somewhere, outside the condemned packs or else in a condemned
/// pack that is then kept.
pub(super) fn still_needed(view: &RepoView, condemned: &HashSet<Id>) -> HashSet<Id> {
    let mut available: HashSet<Id> = view
        .packs
        .values()
        .filter(|p| !condemned.contains(&p.id))
        .flat_map(|p| p.blobs.iter().map(|b| b.id))
        .collect();
    let mut kept: HashSet<Id> = HashSet::new();
    for pack_id in view.order.iter().filter(|id| condemned.contains(id)) {
        let pack = &view.packs[pack_id];
        if pack
            .blobs
            .iter()
            .any(|b| view.used.contains(&b.id) && !available.contains(&b.id))
        {
            tracing::info!(pack = %pack_id.short(), "a marked pack is needed again; kept");
            kept.insert(*pack_id);
            available.extend(pack.blobs.iter().map(|b| b.id));
        }
    }
    kept
}

/// A grace period must outlast the longest backup this repository has
/// seen, plus the margin a backup checks marks with; shorter only when
/// the caller knows no backup runs.
pub(super) fn check_grace(view: &RepoView, options: &PruneOptions) -> Result<()> {
    if options.backups_stopped {
        return Ok(());
    }
    let (longest, snapshot) = view
        .longest_backup
        .unwrap_or((SignedDuration::ZERO, Id([0; 32])));
    let needed = longest + PRUNE_RACE_MARGIN;
    if options.grace >= needed {
        return Ok(());
    }
    Err(Error::GraceTooShort {
        grace: format!("{:#}", options.grace),
        longest: format!("{:#}", longest.round(jiff::Unit::Second).unwrap_or(longest)),
        snapshot: if view.longest_backup.is_some() {
            snapshot.short()
        } else {
            "none yet".into()
        },
        margin: format!("{:#}", PRUNE_RACE_MARGIN),
    })
}
