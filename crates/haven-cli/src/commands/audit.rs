//! `haven audit verify|log`: the audit log checked against its signed
//! checkpoints, and its entries.

use std::path::Path;

use anyhow::{Context, Result};
use haven_ops::api::AuditQuery;

use crate::cli::{AuditCommand, GlobalArgs};
use crate::{exit, instance, output};

pub fn run(global: &GlobalArgs, command: &AuditCommand) -> Result<u8> {
    let instance_args = match command {
        AuditCommand::VerifyExport { file, key } => {
            return verify_export(global, file, key.as_deref());
        }
        AuditCommand::Verify { instance, .. }
        | AuditCommand::Anchor { instance }
        | AuditCommand::Log { instance, .. }
        | AuditCommand::Export { instance, .. } => instance,
    };
    let settings = instance::settings(global, Some(instance_args), None)?;
    let rt = instance::runtime()?;
    rt.block_on(async {
        let instance = instance::connect(&settings).await?;
        match command {
            AuditCommand::Anchor { .. } => {
                let done = instance.audit_anchor().await?;
                if global.json {
                    output::print_json(&done)?;
                } else {
                    for a in &done {
                        match (&a.size, &a.error) {
                            (Some(size), _) => println!(
                                "repository {}: checkpoint at {size} entries",
                                a.repository
                            ),
                            (None, e) => println!(
                                "repository {}: FAILED: {}",
                                a.repository,
                                e.clone().unwrap_or_default()
                            ),
                        }
                    }
                }
                Ok(if done.iter().all(|a| a.error.is_none()) {
                    exit::SUCCESS
                } else {
                    exit::FAILURE
                })
            }
            AuditCommand::Verify { against, .. } => {
                let request = haven_ops::api::AuditVerifyRequest {
                    against: against.clone(),
                };
                let report = instance.audit_verify(&request).await?;
                if global.json {
                    output::print_json(&report)?;
                } else {
                    let v = &report.verification;
                    println!(
                        "{} entries; {} signed checkpoints hold ({} of them outside the database); covered up to entry {}",
                        v.entries,
                        v.checkpoints_ok,
                        report.outside,
                        v.covered
                    );
                    println!("public key: {}", report.verifier_key);
                    if v.problems.is_empty() {
                        println!("the log is intact");
                    } else {
                        if let Some(first) = v.first_bad() {
                            println!("TAMPERED: the first bad entry is {first}");
                        }
                        for p in &v.problems {
                            println!("  - {}", p.detail);
                        }
                    }
                }
                Ok(if report.verification.problems.is_empty() {
                    exit::SUCCESS
                } else {
                    exit::FAILURE
                })
            }
            AuditCommand::Export { from, to, .. } => {
                let query = haven_ops::api::AuditExportQuery {
                    from: Some(*from),
                    to: *to,
                };
                output::print_json(&instance.audit_export(&query).await?)?;
                Ok(exit::SUCCESS)
            }
            AuditCommand::VerifyExport { file, key } => verify_export(global, file, key.as_deref()),
            AuditCommand::Log {
                from,
                limit,
                actor,
                action,
                target,
                outcome,
                newest,
                ..
            } => {
                let query = AuditQuery {
                    from: Some(*from),
                    limit: Some(*limit),
                    actor: actor.clone(),
                    action: action.clone(),
                    target: target.clone(),
                    outcome: outcome.clone(),
                    newest: *newest,
                };
                let entries = instance.audit_entries(&query).await?;
                if global.json {
                    output::print_json(&entries)?;
                } else {
                    for e in &entries {
                        println!(
                            "{:>6}  {}  {:<24} {:<22} {:<28} {}",
                            e.seq, e.at, e.actor, e.action, e.target, e.outcome
                        );
                    }
                }
                Ok(exit::SUCCESS)
            }
        }
    })
}

/// `haven audit verify-export FILE [--key FILE]`: no instance, no database.
fn verify_export(global: &GlobalArgs, file: &Path, key: Option<&Path>) -> Result<u8> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the export {}", file.display()))?;
    let export: haven_model::audit::Export = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an audit export (JSON)", file.display()))?;
    let key = key
        .map(|k| {
            std::fs::read_to_string(k)
                .map(|s| s.trim().to_string())
                .with_context(|| format!("cannot read the key {}", k.display()))
        })
        .transpose()?;
    let checked = haven_model::audit::check_export(&export, key.as_deref());
    if global.json {
        let doc = match &checked {
            Ok(c) => serde_json::json!({ "valid": true, "entries": c.entries, "size": c.size,
                "verifier_key": c.verifier_key, "key_from_export": key.is_none() }),
            Err(e) => serde_json::json!({ "valid": false, "problem": e }),
        };
        output::print_json(&doc)?;
    } else {
        match &checked {
            Ok(c) => {
                println!(
                    "valid: {} entries proved included in the log signed at {} entries",
                    c.entries, c.size
                );
                if key.is_none() {
                    println!(
                        "checked with the key the export carries: compare it with the log's published key:\n  {}",
                        c.verifier_key
                    );
                }
            }
            Err(e) => println!("INVALID: {e}"),
        }
    }
    Ok(if checked.is_ok() {
        exit::SUCCESS
    } else {
        exit::FAILURE
    })
}
