//! `haven audit verify|log`: the audit log checked against its signed
//! checkpoints, and its entries.

use anyhow::Result;
use haven_ops::api::AuditQuery;

use crate::cli::{AuditCommand, GlobalArgs};
use crate::{exit, instance, output};

pub fn run(global: &GlobalArgs, command: &AuditCommand) -> Result<u8> {
    let instance_args = match command {
        AuditCommand::Verify { instance } | AuditCommand::Log { instance, .. } => instance,
    };
    let settings = instance::settings(global, Some(instance_args), None)?;
    let rt = instance::runtime()?;
    rt.block_on(async {
        let instance = instance::connect(&settings).await?;
        match command {
            AuditCommand::Verify { .. } => {
                let report = instance.audit_verify().await?;
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
            AuditCommand::Log { from, limit, .. } => {
                let query = AuditQuery {
                    from: Some(*from),
                    limit: Some(*limit),
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
