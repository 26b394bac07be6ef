//! `haven doctor`: the pre-flight checks, as the instance (the running
//! server, with its environment, or the data dir) sees them; with
//! `--send-test`, a test message through every channel too.

use anyhow::Result;
use haven_ops::preflight::{Area, Check};

use crate::cli::{DoctorArgs, GlobalArgs};
use crate::instance;
use crate::{exit, output};

pub fn run(global: &GlobalArgs, args: &DoctorArgs) -> Result<u8> {
    let settings = instance::settings(global, Some(&args.instance), None)?;
    let rt = instance::runtime()?;
    let report = rt.block_on(async {
        let instance = instance::connect(&settings).await?;
        let mut report = instance.preflight().await?;
        if args.send_test {
            let catalog = instance::catalog(&settings)?;
            let mut sent = Vec::new();
            for channel in &catalog.channels {
                let id = channel.id.value.to_string();
                let subject = format!("channel {id}");
                sent.push(match instance.notify_test(&id).await {
                    Ok(r) if r.delivered_by.is_some() => Check {
                        area: Area::Channel,
                        subject,
                        ok: true,
                        detail: "test message delivered".into(),
                        fix: None,
                    },
                    Ok(r) => Check {
                        area: Area::Channel,
                        subject,
                        ok: false,
                        detail: r
                            .attempts
                            .last()
                            .and_then(|a| a.error.clone())
                            .unwrap_or_else(|| "not delivered".into()),
                        fix: Some(format!("see `haven notify test {id}`")),
                    },
                    Err(e) => Check {
                        area: Area::Channel,
                        subject,
                        ok: false,
                        detail: e.to_string(),
                        fix: None,
                    },
                });
            }
            report.extend(sent);
        }
        Ok::<_, anyhow::Error>(report)
    })?;
    if global.json {
        output::print_json(&report)?;
    } else {
        for check in &report.checks {
            let mark = if check.ok { "ok     " } else { "PROBLEM" };
            println!("{mark} {}: {}", check.subject, check.detail);
            if let Some(fix) = &check.fix {
                println!("        fix: {fix}");
            }
        }
        println!(
            "{} checks, {} problems",
            report.checks.len(),
            report.problems
        );
    }
    Ok(if report.problems == 0 {
        exit::SUCCESS
    } else {
        exit::FAILURE
    })
}
