//! `haven drill SYSTEM`: restore into a sandbox, run the checks, measure,
//! judge (through the running server, or in this process).

use anyhow::Result;
use haven_model::catalog::duration::format_duration;
use haven_model::drills::Verdict;
use haven_ops::api::{DrillRequest, DrillsQuery};

use crate::cli::{DrillArgs, DrillsArgs, GlobalArgs};
use crate::instance;
use crate::{exit, output};

pub fn run(global: &GlobalArgs, args: &DrillArgs) -> Result<u8> {
    let settings = instance::settings(global, Some(&args.instance), None)?;
    let request = DrillRequest {
        system: args.system.clone(),
        snapshot: args.snapshot.clone(),
        at: args.at,
        keep: args.keep,
        by: instance::actor(None).to_string(),
    };
    let rt = instance::runtime()?;
    let bar = output::Bar::spinner(global, &format!("drilling {}", args.system));
    let outcome = rt.block_on(async {
        let instance = instance::connect(&settings).await?;
        tokio::select! {
            outcome = instance.drill(&request) => Ok::<_, anyhow::Error>(outcome?),
            signal = interrupted() => {
                // A drill in this process: tear it down before exiting (a
                // server's drill is the server's to finish).
                haven_ops::drills::abort();
                Err(haven_ops::api::InstanceError::new(
                    haven_model::errors::ErrorCode::Interrupted,
                    format!("{signal}: the drill was stopped and its sandbox removed"),
                )
                .into())
            }
        }
    });
    bar.finish();
    // An interrupted drill's thread ends as soon as its sandbox is gone;
    // do not wait for it longer than that.
    rt.shutdown_timeout(std::time::Duration::from_secs(10));
    let outcome = outcome?;
    let drill = &outcome.drill;
    if global.json {
        output::print_json(&outcome)?;
    } else {
        println!(
            "drill of {} from snapshot {} (taken {}):",
            drill.system, drill.snapshot_id, drill.snapshot_time
        );
        for step in &drill.steps {
            println!(
                "  {} {:>8}  {}: {}",
                if step.ok { "ok  " } else { "FAIL" },
                format_duration(step.duration),
                step.name,
                step.detail
            );
        }
        let objective = |d: Option<jiff::SignedDuration>| {
            d.map_or("none".into(), |d| {
                format!("objective {}", format_duration(d))
            })
        };
        println!(
            "measured RTO {} ({}), achieved RPO {} ({})",
            format_duration(drill.measured_rto),
            objective(drill.objectives.rto),
            format_duration(drill.achieved_rpo),
            objective(drill.objectives.rpo)
        );
        println!("verdict: {}", drill.verdict.as_str());
        for reason in &drill.reasons {
            println!("  - {reason}");
        }
        if let Some(path) = &outcome.kept_sandbox {
            println!("sandbox kept at {}", path.display());
        }
    }
    Ok(match drill.verdict {
        Verdict::Pass => exit::SUCCESS,
        Verdict::Fail => exit::FAILURE,
    })
}

/// `haven drills`: the recorded drills, newest first.
pub fn list(global: &GlobalArgs, args: &DrillsArgs) -> Result<u8> {
    let settings = instance::settings(global, Some(&args.instance), None)?;
    if let Some(crate::cli::DrillsCommand::Show { id, format }) = &args.command {
        return show(global, &settings, *id, format);
    }
    let query = DrillsQuery {
        id: None,
        system: args.system.clone(),
        // The trend reads every drill.
        limit: Some(if args.trend { u32::MAX } else { args.limit }),
    };
    let rt = instance::runtime()?;
    let drills = rt.block_on(async {
        Ok::<_, anyhow::Error>(instance::connect(&settings).await?.drills(&query).await?)
    })?;
    if args.trend {
        let trends = haven_model::drills::rto_trends(&drills);
        if global.json {
            output::print_json(&trends)?;
        } else {
            println!("system  drills  first  last  median  change per 30 days");
            for t in &trends {
                println!(
                    "{}  {}  {}  {}  {}  {}",
                    t.system,
                    t.drills,
                    format_duration(t.first),
                    format_duration(t.last),
                    format_duration(t.median),
                    t.change_per_30_days.map_or("-".into(), |c| {
                        let sign = if c.is_negative() { "-" } else { "+" };
                        format!("{sign}{}", format_duration(c.abs()))
                    })
                );
            }
        }
        return Ok(exit::SUCCESS);
    }
    if global.json {
        output::print_json(&drills)?;
        return Ok(exit::SUCCESS);
    }
    println!("id  system  started  verdict  measured RTO  achieved RPO  reasons");
    for d in &drills {
        println!(
            "{}  {}  {}  {}  {}  {}  {}",
            d.id,
            d.system,
            d.started_at.strftime("%Y-%m-%d %H:%M"),
            d.verdict.as_str(),
            format_duration(d.measured_rto),
            format_duration(d.achieved_rpo),
            d.reasons.join("; ")
        );
    }
    Ok(exit::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM, naming it.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// `haven drills show ID`: one drill as a report.
fn show(
    global: &GlobalArgs,
    settings: &haven_ops::instance::Settings,
    id: i64,
    format: &str,
) -> Result<u8> {
    let rt = instance::runtime()?;
    let query = DrillsQuery {
        id: Some(id),
        system: None,
        limit: None,
    };
    let found = rt.block_on(async {
        Ok::<_, anyhow::Error>(instance::connect(settings).await?.drills(&query).await?)
    })?;
    let Some(drill) = found.first() else {
        return Err(haven_ops::api::InstanceError::new(
            haven_model::errors::ErrorCode::NoSuchDrill,
            format!("no drill {id}"),
        )
        .hint("list them with `haven drills`")
        .into());
    };
    match (global.json, format) {
        (true, _) | (_, "json") => output::print_json(drill)?,
        (_, "html") => print!("{}", haven_ops::drills::report::html(drill)),
        _ => print!("{}", haven_ops::drills::report::markdown(drill)),
    }
    Ok(exit::SUCCESS)
}
