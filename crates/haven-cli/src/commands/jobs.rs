//! `haven jobs` and `haven job show`: the evidence.

use anyhow::{Result, bail};
use haven_model::catalog::duration::format_duration;
use haven_model::catalog::parse_duration;
use haven_model::jobs::Job;
use haven_ops::api::JobsQuery;
use jiff::Timestamp;

use crate::cli::{GlobalArgs, JobCommand, JobsArgs};
use crate::context::UsageError;
use crate::instance;
use crate::{exit, output};

fn since(text: &str) -> Result<Timestamp> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    match parse_duration(text) {
        Ok(d) => Ok(Timestamp::now() - d),
        Err(_) => bail!(UsageError(format!(
            "--since {text:?}: give a period (24h, 7d) or a time (2026-11-01T00:00:00Z)"
        ))),
    }
}

pub fn list(global: &GlobalArgs, args: &JobsArgs) -> Result<u8> {
    let settings = instance::settings(global, Some(&args.instance), None)?;
    let query = JobsQuery {
        system: args.system.clone(),
        failed: args.failed,
        since: args.since.as_deref().map(since).transpose()?,
        limit: Some(args.limit),
    };
    let rt = instance::runtime()?;
    let jobs = rt.block_on(async {
        Ok::<_, anyhow::Error>(instance::connect(&settings).await?.jobs(&query).await?)
    })?;
    if global.json {
        output::print_json(&jobs)?;
        return Ok(exit::SUCCESS);
    }
    println!(
        "{:>6} {:<7} {:<40} {:<9} {:<17} {:>7} {:>8} {:<11} MESSAGE",
        "ID", "KIND", "TASK", "TRIGGER", "DUE (UTC)", "DELAY", "TOOK", "OUTCOME"
    );
    for job in &jobs {
        println!(
            "{:>6} {:<7} {:<40} {:<9} {:<17} {:>7} {:>8} {:<11} {}",
            job.id,
            job.planned.kind.as_str(),
            job.planned.task,
            job.planned.trigger.as_str(),
            job.planned.scheduled_at.strftime("%Y-%m-%d %H:%M"),
            job.start_delay().map_or("-".into(), took),
            job.duration().map_or("-".into(), took),
            job.outcome.as_str(),
            summary(job)
        );
    }
    if jobs.is_empty() {
        eprintln!("no jobs match");
    }
    Ok(exit::SUCCESS)
}

/// Seconds with a decimal under a minute (jobs are often that short).
fn took(d: jiff::SignedDuration) -> String {
    if d.as_secs() < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format_duration(d)
    }
}

fn summary(job: &Job) -> String {
    let mut text = job.message.clone().unwrap_or_default();
    if let Some(f) = &job.failure {
        text = format!("[{}/{}] {text}", f.class.as_str(), f.detail);
    }
    let first = text.lines().next().unwrap_or_default();
    let mut short: String = first.chars().take(100).collect();
    if short.len() < first.len() {
        short.push('…');
    }
    short
}

pub fn show(global: &GlobalArgs, command: &JobCommand) -> Result<u8> {
    let JobCommand::Show { instance: args, id } = command;
    let settings = instance::settings(global, Some(args), None)?;
    let rt = instance::runtime()?;
    let job = rt.block_on(async {
        Ok::<_, anyhow::Error>(instance::connect(&settings).await?.job(*id).await?)
    })?;
    if global.json {
        output::print_json(&job)?;
        return Ok(exit::SUCCESS);
    }
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let time = |t: Option<Timestamp>| t.map_or("-".into(), |t| t.to_string());
    println!(
        "job {}: {} {}",
        job.id,
        job.planned.kind.as_str(),
        job.planned.task
    );
    println!("  system:      {}", opt(&job.planned.system));
    println!("  backup set:  {}", opt(&job.planned.backup_set));
    println!("  policy:      {}", opt(&job.planned.policy));
    println!("  repository:  {}", opt(&job.planned.repository));
    println!(
        "  trigger:     {} (attempt {})",
        job.planned.trigger.as_str(),
        job.planned.attempt
    );
    println!("  scheduled:   {}", job.planned.scheduled_at);
    println!("  started:     {}", time(job.started_at));
    println!("  ended:       {}", time(job.ended_at));
    println!(
        "  start delay: {}",
        job.start_delay().map_or("-".into(), took)
    );
    println!("  duration:    {}", job.duration().map_or("-".into(), took));
    println!("  outcome:     {}", job.outcome.as_str());
    if let Some(f) = &job.failure {
        println!(
            "  failure:     {} ({}), layer {}",
            f.class.as_str(),
            f.detail,
            f.layer.as_str()
        );
    }
    let s = &job.stats;
    println!(
        "  files:       {} new, {} changed, {} unmodified",
        s.files_new, s.files_changed, s.files_unmodified
    );
    println!(
        "  bytes:       {} changed of {}, {} added",
        output::bytes(s.bytes_changed),
        output::bytes(s.bytes_total),
        output::bytes(s.bytes_added)
    );
    println!("  snapshot:    {}", opt(&job.snapshot_id));
    println!("  message:     {}", opt(&job.message));
    if !job.log.is_empty() {
        println!("  log:");
        for line in job.log.lines() {
            println!("    {line}");
        }
    }
    Ok(exit::SUCCESS)
}
