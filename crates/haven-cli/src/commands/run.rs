//! `haven run SYSTEM`: back a system up now (queued by the server, or
//! run here when none holds the data dir).

use anyhow::Result;
use haven_model::jobs::{Job, Outcome};
use haven_ops::api::{Instance, JobsQuery, RunNow, RunOutcome, RunRequest};

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
        let instance = instance::connect(&settings).await?;
        // The system's newest job before: what the run starts comes after.
        let before = newest_job_id(instance.as_ref(), &args.system).await?;
        let outcome = instance.run(&request).await?;
        Ok::<_, anyhow::Error>(match outcome {
            RunOutcome::Queued(queued) if args.wait => RunOutcome::Ran(
                wait_for(instance.as_ref(), &args.system, &queued, before, global).await?,
            ),
            other => other,
        })
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
                println!(
                    "follow it with `haven jobs --system {}`, or run with --wait",
                    args.system
                );
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

async fn newest_job_id(instance: &dyn Instance, system: &str) -> Result<i64> {
    let jobs = instance
        .jobs(&JobsQuery {
            system: Some(system.to_string()),
            failed: false,
            since: None,
            limit: Some(1),
        })
        .await?;
    Ok(jobs.first().map_or(0, |j| j.id))
}

/// Follow the jobs of the queued (or already running) tasks until each
/// has ended; they are the newest jobs of their tasks after `before`.
async fn wait_for(
    instance: &dyn Instance,
    system: &str,
    queued: &RunNow,
    before: i64,
    global: &GlobalArgs,
) -> Result<Vec<Job>> {
    let tasks: Vec<&String> = queued.queued.iter().chain(&queued.busy).collect();
    let bar = output::Bar::spinner(
        global,
        &format!("waiting for {} jobs of {system}", tasks.len()),
    );
    loop {
        let jobs = instance
            .jobs(&JobsQuery {
                system: Some(system.to_string()),
                failed: false,
                since: None,
                limit: Some(200),
            })
            .await?;
        let found: Vec<Option<&Job>> = tasks
            .iter()
            .map(|task| {
                jobs.iter()
                    .filter(|j| &&j.planned.task == task)
                    .find(|j| j.id > before || j.outcome == Outcome::Running)
            })
            .collect();
        if found
            .iter()
            .all(|j| j.is_some_and(|j| j.outcome != Outcome::Running))
        {
            bar.finish();
            let mut done: Vec<Job> = found.into_iter().flatten().cloned().collect();
            done.sort_by_key(|j| j.id);
            return Ok(done);
        }
        // The server runs the job; asking twice a second is enough.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
