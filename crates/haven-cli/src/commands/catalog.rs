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

/// `haven bia [DIR]`.
pub fn bia(global: &GlobalArgs, args: &crate::cli::BiaArgs) -> Result<u8> {
    use haven_model::catalog::bia::{Scoring, bia};
    let dir = args.dir.resolve(global)?;
    let loaded = load_clean(&dir)?;
    let findings = haven_model::catalog::analysis::analyse(&loaded.catalog, jiff::Timestamp::now());
    let scoring = if args.scoring == "qualitative" {
        Scoring::Qualitative
    } else {
        Scoring::Quantitative
    };
    let rows = bia(&loaded.catalog, &findings, scoring);
    let format = if global.json {
        "json"
    } else {
        args.format.as_str()
    };
    let money = |amount: Option<f64>, r: &haven_model::catalog::bia::BiaRow| {
        amount
            .map(|v| {
                format!(
                    "{v:.0}{}",
                    r.currency
                        .as_ref()
                        .map(|c| format!(" {c}"))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default()
    };
    let text = |d: Option<jiff::SignedDuration>| {
        d.map(haven_model::catalog::duration::format_duration)
            .unwrap_or_default()
    };
    let header = [
        "service",
        "tier",
        "impact/h",
        "inherited/h",
        "carries",
        "score",
        "MTD",
        "intolerable after",
        "RTO",
        "RPO",
        "strategy",
        "depends on",
        "findings",
    ];
    let cells = |r: &haven_model::catalog::bia::BiaRow| -> Vec<String> {
        vec![
            r.id.clone(),
            r.tier.to_string(),
            money(r.impact_per_hour, r),
            money(r.inherited_impact_per_hour, r),
            r.carried_for.join(" "),
            r.qualitative_score
                .map(|s| s.to_string())
                .unwrap_or_default(),
            text(r.mtd),
            text(r.intolerable_after),
            text(r.rto),
            text(r.rpo),
            r.strategy.clone().unwrap_or_default(),
            r.depends_on.join(" "),
            r.findings.join(" "),
        ]
    };
    match format {
        "json" => output::print_json(&rows)?,
        "csv" => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            w.write_record(header)?;
            for r in &rows {
                w.write_record(cells(r))?;
            }
            w.flush()?;
        }
        "markdown" => {
            println!("| {} |", header.join(" | "));
            println!("|{}", "---|".repeat(header.len()));
            for r in &rows {
                let escaped: Vec<String> = cells(r).iter().map(|c| c.replace('|', "\\|")).collect();
                println!("| {} |", escaped.join(" | "));
            }
        }
        _ => {
            let table: Vec<Vec<String>> =
                std::iter::once(header.iter().map(|h| h.to_string()).collect())
                    .chain(rows.iter().map(cells))
                    .collect();
            let widths: Vec<usize> = (0..header.len())
                .map(|i| {
                    table
                        .iter()
                        .map(|row| row[i].chars().count())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            for row in &table {
                let line: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                println!("{}", line.join("  ").trim_end());
            }
        }
    }
    Ok(exit::SUCCESS)
}

/// `haven plan order [SERVICE...]`.
pub fn plan(global: &GlobalArgs, command: &crate::cli::PlanCommand) -> Result<u8> {
    let crate::cli::PlanCommand::Order { services, catalog } = command;
    let dir = match catalog {
        Some(dir) => dir.clone(),
        None => crate::cli::default_catalog(global)?,
    };
    let loaded = load_clean(&dir)?;
    let order = haven_model::catalog::plan::recovery_order(&loaded.catalog, services)
        .map_err(|e| anyhow::anyhow!(e))?;
    if global.json {
        output::print_json(&order)?;
        return Ok(exit::SUCCESS);
    }
    let format = haven_model::catalog::duration::format_duration;
    let mut late = 0;
    for (n, wave) in order.waves.iter().enumerate() {
        println!("wave {}:", n + 1);
        for item in wave {
            let mut facts = vec![item.kind.to_string()];
            facts.extend(item.tier.map(|t| format!("tier {t}")));
            facts.extend(item.rto.map(|r| format!("RTO {}", format(r))));
            facts.extend(item.mtd.map(|m| format!("MTD {}", format(m))));
            facts.extend(item.restore_estimate.map(|e| format!("+{}", format(e))));
            facts.extend(
                item.earliest_completion
                    .filter(|c| !c.is_zero())
                    .map(|c| format!("back at {}", format(c))),
            );
            let flag = match item.late {
                Some("mtd") => "  LATE: misses its MTD",
                Some(_) => "  LATE: misses its RTO",
                None => "",
            };
            late += usize::from(item.late.is_some());
            println!("  {} ({}){flag}", item.id, facts.join(", "));
        }
    }
    if let Some(time) = order.critical_path_time {
        println!(
            "critical path: {} (back at {} after a disruption)",
            order.critical_path.join(" → "),
            format(time)
        );
    }
    if late > 0 {
        println!(
            "{late} services cannot be back within their objectives (see `haven catalog check`: HVN-E030, HVN-W031)"
        );
    }
    if !order.without_estimate.is_empty() {
        println!(
            "{} services and systems have no restore_estimate and count as taking no time: {}",
            order.without_estimate.len(),
            order.without_estimate.join(", ")
        );
    }
    Ok(exit::SUCCESS)
}

pub fn run(global: &GlobalArgs, command: &CatalogCommand) -> Result<u8> {
    match command {
        CatalogCommand::Schema => {
            output::print_json(&haven_catalog::schema::schema())?;
            Ok(exit::SUCCESS)
        }
        CatalogCommand::Graph { dir, format } => {
            let loaded = load_clean(&dir.resolve(global)?)?;
            let text = match format.as_str() {
                "mermaid" => haven_model::catalog::graph::mermaid(&loaded.catalog),
                _ => haven_model::catalog::graph::dot(&loaded.catalog),
            };
            print!("{text}");
            Ok(exit::SUCCESS)
        }
        CatalogCommand::Check(args) => {
            let dir = args.resolve(global)?;
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
