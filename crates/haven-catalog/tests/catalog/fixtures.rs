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
        include_str!("../../src/load.rs"),
        include_str!("../../src/lib.rs"),
        include_str!("../../../haven-model/src/catalog/analysis.rs"),
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

#[test]
fn the_acme_example_passes_with_its_documented_warnings() {
    let (diagnostics, text) = rendered(&examples().join("acme"));
    let codes: Vec<&str> = diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(
        codes,
        [
            "HVN-W031", "HVN-W014", "HVN-W031", "HVN-W021", "HVN-W021", "HVN-W021"
        ],
        "{text}"
    );
    let loaded = haven_catalog::load_dir(&examples().join("acme")).expect("load");
    let services = loaded.catalog.services.len();
    assert!((15..=25).contains(&services), "{services} services");
    let order = haven_model::catalog::plan::recovery_order(&loaded.catalog, &[]).expect("order");
    assert_eq!(
        order.waves.concat().len(),
        services + loaded.catalog.systems.len() + loaded.catalog.vendors.len()
    );
}

#[test]
fn every_file_under_examples_is_part_of_a_loaded_catalog() {
    // Every catalog directory (acme, each broken fixture) loads, and every
    // .toml file in them is read.
    let mut dirs = vec![examples().join("acme")];
    for entry in std::fs::read_dir(examples().join("broken")).expect("broken") {
        dirs.push(entry.expect("entry").path());
    }
    let mut read = 0;
    for dir in &dirs {
        let loaded = haven_catalog::load_dir(dir).expect("load");
        read += loaded.files.len();
    }
    let on_disk = walk_toml(&examples());
    assert_eq!(
        read, on_disk,
        "some .toml file under examples/ is not in a tested catalog"
    );
}

fn walk_toml(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            n += walk_toml(&path);
        } else if path.extension().is_some_and(|e| e == "toml") {
            n += 1;
        }
    }
    n
}
