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

/// Load a catalog that must be free of load errors (commands that use it,
/// rather than check it).
fn load_clean(dir: &std::path::Path) -> Result<haven_catalog::LoadedCatalog> {
    let loaded = haven_catalog::load_dir(dir)?;
    let errors = loaded
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if errors > 0 {
        anyhow::bail!(
            "the catalog {} has {errors} errors: run `haven catalog check {}` and fix them first",
            dir.display(),
            dir.display()
        );
    }
    Ok(loaded)
}

/// `haven plan order [SERVICE...]`.
pub fn plan(global: &GlobalArgs, command: &crate::cli::PlanCommand) -> Result<u8> {
    let crate::cli::PlanCommand::Order { services, catalog } = command;
    let dir = catalog.clone().unwrap_or_else(|| "catalog".into());
    let loaded = load_clean(&dir)?;
    let order = haven_model::catalog::plan::recovery_order(&loaded.catalog, services)
        .map_err(|e| anyhow::anyhow!(e))?;
    if global.json {
        output::print_json(&order)?;
        return Ok(exit::SUCCESS);
    }
    let format = haven_model::catalog::duration::format_duration;
    for (n, wave) in order.waves.iter().enumerate() {
        println!("wave {}:", n + 1);
        for item in wave {
            let tier = item.tier.map(|t| format!(", tier {t}")).unwrap_or_default();
            let rto = item
                .rto
                .map(|r| format!(", RTO {}", format(r)))
                .unwrap_or_default();
            println!("  {} ({}{tier}{rto})", item.id, item.kind);
        }
    }
    if let Some(time) = order.critical_path_time {
        println!(
            "critical path: {} ({})",
            order.critical_path.join(" → "),
            format(time)
        );
    }
    Ok(exit::SUCCESS)
}

pub fn run(global: &GlobalArgs, command: &CatalogCommand) -> Result<u8> {
    match command {
        CatalogCommand::Graph { dir, format } => {
            let loaded = load_clean(&dir.resolve())?;
            let text = match format.as_str() {
                "mermaid" => haven_model::catalog::graph::mermaid(&loaded.catalog),
                _ => haven_model::catalog::graph::dot(&loaded.catalog),
            };
            print!("{text}");
            Ok(exit::SUCCESS)
        }
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
