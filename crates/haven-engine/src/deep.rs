//! Walks over trees recurse once per directory level. The format bounds
//! that (`rules::MAX_DEPTH`), but the calling thread's stack may be small
//! (a test harness's, a job runner's), so deep walks run on a thread of
//! their own with room for every level.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Generous for `MAX_DEPTH` levels of an unoptimised build; only the
/// pages touched are ever committed.
const STACK: usize = 256 << 20;

/// Run `walk` on a thread with a stack deep enough for any tree the
/// format allows.
pub(crate) fn on_deep_stack<T: Send>(walk: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        let walker = std::thread::Builder::new()
            .name("haven-tree-walk".into())
            .stack_size(STACK)
            .spawn_scoped(scope, walk)
            .map_err(|e| Error::io("start a thread for", PathBuf::from("the tree walk"), e))?;
        match walker.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
