//! `haven catalog check [DIR]`.

use anyhow::Result;
use haven_model::catalog::Severity;
use serde::Serialize;

use crate::cli::{CatalogCommand, GlobalArgs};
use crate::{exit, output};

/// The check report (`--json`).
#[derive(Serialize)]
struct CheckView<'a> {
    catalog: String,
    errors: usize,
    warnings: usize,
    findings: &'a [haven_catalog::Diagnostic],
}

pub fn run(global: &GlobalArgs, command: &CatalogCommand) -> Result<u8> {
    match command {
        CatalogCommand::Check(args) => {
            let dir = args.resolve();
            let loaded = haven_catalog::load_dir(&dir)?;
            let diagnostics = haven_catalog::check(&loaded, jiff::Timestamp::now());
            let errors = diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            let warnings = diagnostics.len() - errors;
            if global.json {
                output::print_json(&CheckView {
                    catalog: dir.display().to_string(),
                    errors,
                    warnings,
                    findings: &diagnostics,
                })?;
            } else {
                print!("{}", haven_catalog::render(&diagnostics));
                let c = &loaded.catalog;
                println!(
                    "{}: {} services, {} systems, {} policies, {} repositories; {errors} errors, {warnings} warnings",
                    dir.display(),
                    c.services.len(),
                    c.systems.len(),
                    c.policies.len(),
                    c.repositories.len()
                );
            }
            Ok(if errors > 0 {
                exit::FAILURE
            } else {
                exit::SUCCESS
            })
        }
    }
}
