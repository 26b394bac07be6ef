//! Every finding code has a fixture under `examples/broken/<CODE>/` that
//! produces it; the full diagnostic output of each is snapshot-tested.
//! Every catalog under `examples/` loads.

use std::path::{Path, PathBuf};

/// A fixed `now`: schedule analysis covers the year after it.
const NOW: &str = "2026-01-01T00:00:00Z";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Check `dir` and render its diagnostics with paths relative to the
/// repository root (stable snapshots).
fn rendered(dir: &Path) -> (Vec<haven_catalog::Diagnostic>, String) {
    let loaded = haven_catalog::load_dir(dir).expect("load");
    let diagnostics = haven_catalog::check(&loaded, NOW.parse().expect("now"));
    // Files are named below `examples()`, i.e. `<crate>/../../examples/…`.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = haven_catalog::render(&diagnostics).replace(&format!("{}/", root.display()), "");
    (diagnostics, text)
}

#[test]
fn every_broken_fixture_produces_its_code_and_its_output_is_stable() {
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(examples().join("broken"))
        .expect("examples/broken")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    fixtures.sort();
    assert!(!fixtures.is_empty());
    for dir in fixtures {
        let code = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let (diagnostics, text) = rendered(&dir);
        assert!(
            diagnostics.iter().any(|d| d.code == code),
            "{code}: the fixture must produce its own code, got:\n{text}"
        );
        assert!(
            diagnostics
                .iter()
                .filter(|d| d.code == code)
                .all(|d| d.line.is_some() && d.snippet.is_some()),
            "{code}: every finding points at a line"
        );
        insta::assert_snapshot!(code, text);
    }
}

#[test]
fn every_code_the_analyses_can_emit_has_a_fixture() {
    let sources = [
        include_str!("../src/load.rs"),
        include_str!("../src/lib.rs"),
        include_str!("../../haven-model/src/catalog/analysis.rs"),
    ];
    let mut codes: Vec<String> = sources
        .iter()
        .flat_map(|s| {
            s.match_indices("\"HVN-")
                .map(move |(i, _)| &s[i + 1..i + 9])
        })
        .map(str::to_string)
        .collect();
    codes.sort();
    codes.dedup();
    assert!(codes.len() >= 10, "{codes:?}");
    for code in codes {
        assert!(
            examples().join("broken").join(&code).is_dir(),
            "{code} has no fixture under examples/broken/{code}"
        );
    }
}
