//! The instance's catalog: loaded and checked as a whole (a catalog with
//! errors is refused), and fingerprinted cheaply to notice changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use haven_model::catalog::Catalog;

/// The catalog has errors.
#[derive(Debug, thiserror::Error)]
#[error("the catalog in {} has errors:\n{rendered}", dir.display())]
pub struct CatalogError {
    /// Its directory.
    pub dir: PathBuf,
    /// The diagnostics, rendered.
    pub rendered: String,
}

/// Load and check a catalog directory; errors refuse it.
pub fn load_catalog(dir: &Path, now: jiff::Timestamp) -> Result<Arc<Catalog>, CatalogError> {
    let loaded = haven_catalog::load_dir(dir).map_err(|e| CatalogError {
        dir: dir.to_path_buf(),
        rendered: e.to_string(),
    })?;
    let diagnostics = haven_catalog::check(&loaded, now);
    let errors: Vec<_> = diagnostics
        .into_iter()
        .filter(|d| d.severity == haven_model::catalog::Severity::Error)
        .collect();
    if !errors.is_empty() {
        return Err(CatalogError {
            dir: dir.to_path_buf(),
            rendered: haven_catalog::render(&errors),
        });
    }
    Ok(Arc::new(loaded.catalog))
}

/// What identifies a catalog directory's content cheaply: every `.toml`
/// file's path, size and modification time.
pub fn catalog_fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                out.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    out.sort();
    out
}
