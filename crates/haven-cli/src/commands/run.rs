//! `haven run SYSTEM`: back a system up now.

use std::sync::Arc;

use anyhow::{Result, bail};
use haven_model::jobs::Outcome;
use haven_ops::clock::SystemClock;
use haven_ops::instance::lock::lock_data_dir;
use haven_ops::jobs::runner::EngineRunner;
use haven_ops::server::run_foreground;

use crate::cli::{GlobalArgs, RunArgs};
use crate::context::UsageError;
use crate::instance::{self, Access};
use crate::{exit, output};

pub fn run(global: &GlobalArgs, args: &RunArgs) -> Result<u8> {
    let settings = instance::settings(global, Some(&args.instance), None)?;
    let rt = instance::runtime()?;
    rt.block_on(async {
        match instance::connect(&settings).await? {
            Access::Server(client) => {
                let queued = client.run(&args.system).await?;
                if global.json {
                    output::print_json(&queued)?;
                } else {
                    for task in &queued.queued {
                        println!("queued {task}");
                    }
                    for task in &queued.busy {
                        println!("already running or waiting: {task}");
                    }
                    println!("follow it with `haven jobs --system {}`", args.system);
                }
                Ok(exit::SUCCESS)
            }
            Access::Direct { store } => {
                // No server: run in the foreground, holding the data dir
                // so no server starts meanwhile.
                let _lock = lock_data_dir(&settings.data_dir)?;
                let catalog = instance::catalog(&settings)?;
                let Some(jobs) = run_foreground(
                    settings.clone(),
                    store,
                    Arc::new(SystemClock),
                    Arc::new(EngineRunner),
                    catalog,
                    &args.system,
                )
                .await?
                else {
                    bail!(UsageError(format!(
                        "system {:?} has no backups in the catalog (no policy or no backup sets)",
                        args.system
                    )));
                };
                if global.json {
                    output::print_json(&jobs)?;
                } else {
                    for job in &jobs {
                        println!(
                            "job {} {} {}: {}",
                            job.id,
                            job.task,
                            job.outcome.as_str(),
                            job.message.as_deref().unwrap_or("")
                        );
                    }
                }
                let worst = jobs
                    .iter()
                    .map(|j| j.outcome)
                    .fold(exit::SUCCESS, |code, o| match o {
                        Outcome::Failed | Outcome::Interrupted => exit::FAILURE,
                        Outcome::Partial if code == exit::SUCCESS => exit::PARTIAL,
                        _ => code,
                    });
                Ok(worst)
            }
        }
    })
}
