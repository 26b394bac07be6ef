//! The drill's sandbox: a private directory under the data dir, checked
//! for room before anything is restored, removed when the drill ends
//! (whatever happened) unless kept.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::instance::files::private_dir;

/// The sandboxes of the drills running in this process.
static ACTIVE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn active() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    ACTIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Remove every active sandbox (the process is interrupted).
pub(super) fn abort_all() {
    for path in active().drain(..) {
        let _ = std::fs::remove_dir_all(&path);
    }
}

/// A sandbox directory, removed on drop unless kept.
pub struct Sandbox {
    path: PathBuf,
    kept: bool,
}

impl Sandbox {
    /// `<data dir>/sandboxes/<system>-<time>`, with room for `bytes` and
    /// 10 % more.
    pub fn create(
        data_dir: &Path,
        system: &str,
        now: Timestamp,
        bytes: u64,
    ) -> Result<Sandbox, String> {
        let parent = data_dir.join("sandboxes");
        private_dir(&parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let stamp = now.strftime("%Y%m%dT%H%M%S");
        let path = parent.join(format!("{system}-{stamp}-{}", std::process::id()));
        let need = bytes.saturating_add(bytes / 10);
        let stat = rustix::fs::statvfs(&parent)
            .map_err(|e| format!("cannot read the free space of {}: {e}", parent.display()))?;
        let free = stat.f_bavail.saturating_mul(stat.f_frsize);
        if free < need {
            return Err(format!(
                "the sandbox needs {} (the restore and 10 % more) and {} has {} free",
                haven_model::units::human_bytes(need as f64),
                parent.display(),
                haven_model::units::human_bytes(free as f64)
            ));
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| format!("cannot create the sandbox {}: {e}", path.display()))?;
        active().push(path.clone());
        Ok(Sandbox { path, kept: false })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keep it (forensics); its path.
    pub fn keep(&mut self) -> PathBuf {
        self.kept = true;
        active().retain(|p| p != &self.path);
        self.path.clone()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        active().retain(|p| p != &self.path);
        if !self.kept
            && let Err(e) = std::fs::remove_dir_all(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(
                "cannot remove the drill sandbox {}: {e}",
                self.path.display()
            );
        }
    }
}
