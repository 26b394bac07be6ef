//! `haven run SYSTEM`: back a system up now (queued by the server, or
//! run here when none holds the data dir).

use anyhow::Result;
use haven_model::jobs::Outcome;
use haven_ops::api::{RunOutcome, RunRequest};

use crate::cli::{GlobalArgs, RunArgs};
use crate::instance;
use crate::{exit, output};

pub fn run(global: &GlobalArgs, args: &RunArgs) -> Result<u8> {
    let settings = instance::settings(global, Some(&args.instance), None)?;
    let request = RunRequest {
        system: args.system.clone(),
        by: instance::actor(None),
    };
    let rt = instance::runtime()?;
    let outcome = rt.block_on(async {
        Ok::<_, anyhow::Error>(instance::connect(&settings).await?.run(&request).await?)
    })?;
    if global.json {
        output::print_json(&outcome)?;
    }
    match outcome {
        RunOutcome::Queued(queued) => {
            if !global.json {
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
        RunOutcome::Ran(jobs) => {
            if !global.json {
                for job in &jobs {
                    println!(
                        "job {} {} {}: {}",
                        job.id,
                        job.planned.task,
                        job.outcome.as_str(),
                        job.message.as_deref().unwrap_or("")
                    );
                }
            }
            // The worst outcome decides: failed, then partial.
            Ok(jobs
                .iter()
                .map(|j| j.outcome)
                .fold(exit::SUCCESS, |code, o| match o {
                    Outcome::Failed | Outcome::Interrupted => exit::FAILURE,
                    Outcome::Partial if code == exit::SUCCESS => exit::PARTIAL,
                    _ => code,
                }))
        }
    }
}
