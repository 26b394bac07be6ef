//! `haven drill SYSTEM`: restore into a sandbox, run the checks, measure,
//! judge (through the running server, or in this process).

use anyhow::Result;
use haven_model::catalog::duration::format_duration;
use haven_model::drills::Verdict;
use haven_model::errors::ErrorCode;
use haven_ops::api::{
    DrillOutcome, DrillRequest, DrillsQuery, ServiceDrillOutcome, ServiceDrillRequest,
    ServiceDrillsQuery,
};

use crate::cli::{DrillArgs, DrillsArgs, GlobalArgs};
use crate::instance;
use crate::{exit, output};

pub fn run(global: &GlobalArgs, args: &DrillArgs) -> Result<u8> {
    let settings = instance::settings(global, Some(&args.instance), None)?;
    if let Some(crate::cli::DrillsCommand::Show { id, format }) = &args.command {
        return show(global, &settings, *id, format);
    }
    let name = args.system.clone().unwrap_or_default();
    let by = instance::actor(None).to_string();
    let rt = instance::runtime()?;
    let bar = output::Bar::spinner(global, &format!("drilling {name}"));
    let outcome = rt.block_on(async {
        let instance = instance::connect(&settings).await?;
        tokio::select! {
            outcome = drill(instance.as_ref(), &name, args, by) => outcome,
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
    let verdict = match outcome? {
        Drilled::Service(outcome) => print_service(global, &outcome)?,
        Drilled::System(outcome) => print_system(global, &outcome)?,
    };
    Ok(match verdict {
        Verdict::Pass => exit::SUCCESS,
        Verdict::Fail => exit::FAILURE,
    })
}

/// What a drill of a name turned out to be.
enum Drilled {
    Service(ServiceDrillOutcome),
    System(DrillOutcome),
}

/// Drill NAME as a service when the catalog has one of that id (ids are
/// unique across services and systems), else as a system.
async fn drill(
    instance: &dyn haven_ops::api::Instance,
    name: &str,
    args: &DrillArgs,
    by: String,
) -> Result<Drilled> {
    if args.snapshot.is_none() {
        let request = ServiceDrillRequest {
            service: name.to_string(),
            at: args.at,
            keep: args.keep,
            by: by.clone(),
        };
        match instance.drill_service(&request).await {
            Ok(outcome) => return Ok(Drilled::Service(outcome)),
            Err(e) if e.code == ErrorCode::NoSuchService => {}
            Err(e) => return Err(e.into()),
        }
    }
    let request = DrillRequest {
        system: name.to_string(),
        snapshot: args.snapshot.clone(),
        at: args.at,
        keep: args.keep,
        by,
    };
    match instance.drill(&request).await {
        Ok(outcome) => Ok(Drilled::System(outcome)),
        Err(e) if e.code == ErrorCode::NoSuchSystem && args.snapshot.is_none() => {
            Err(haven_ops::api::InstanceError::new(
                ErrorCode::NoSuchSystem,
                format!("{} (nor a service of that id)", e.message),
            )
            .hint("list services and systems with `haven status`")
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

fn print_system(global: &GlobalArgs, outcome: &DrillOutcome) -> Result<Verdict> {
    let drill = &outcome.drill;
    if global.json {
        output::print_json(outcome)?;
        return Ok(drill.verdict);
    }
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
    println!(
        "measured RTO {} ({}), achieved RPO {} ({})",
        format_duration(drill.measured_rto),
        objective(drill.objectives.rto),
        format_duration(drill.achieved_rpo),
        objective(drill.objectives.rpo)
    );
    print_verdict(drill.verdict, &drill.reasons);
    if let Some(path) = &outcome.kept_sandbox {
        println!("sandbox kept at {}", path.display());
    }
    Ok(drill.verdict)
}

fn print_service(global: &GlobalArgs, outcome: &ServiceDrillOutcome) -> Result<Verdict> {
    let service = &outcome.drill;
    if global.json {
        output::print_json(outcome)?;
        return Ok(service.verdict);
    }
    println!("drill of service {}:", service.service);
    for (n, wave) in service.waves.iter().enumerate() {
        println!("  wave {}:", n + 1);
        for system in outcome
            .systems
            .iter()
            .filter(|s| wave.contains(&s.drill.system))
        {
            let d = &system.drill;
            println!(
                "    {} {:>8}  {} (drill {}, snapshot {}){}",
                if d.verdict == Verdict::Pass {
                    "ok  "
                } else {
                    "FAIL"
                },
                format_duration(d.measured_rto),
                d.system,
                d.id,
                d.snapshot_id,
                system
                    .kept_sandbox
                    .as_ref()
                    .map(|p| format!(", sandbox kept at {}", p.display()))
                    .unwrap_or_default()
            );
        }
    }
    for note in &service.not_drilled {
        println!("  not drilled: {note}");
    }
    println!(
        "measured RTO {} ({}), worst achieved RPO {} ({}), MTD {}",
        format_duration(service.measured_rto),
        objective(service.objectives.rto),
        format_duration(service.achieved_rpo),
        objective(service.objectives.rpo),
        objective(service.objectives.mtd)
    );
    print_verdict(service.verdict, &service.reasons);
    Ok(service.verdict)
}

fn objective(d: Option<jiff::SignedDuration>) -> String {
    d.map_or("none".into(), |d| {
        format!("objective {}", format_duration(d))
    })
}

fn print_verdict(verdict: Verdict, reasons: &[String]) {
    println!("verdict: {}", verdict.as_str());
    for reason in reasons {
        println!("  - {reason}");
    }
}

/// `haven drills`: the recorded drills, newest first (of systems, or of
/// services with `--service`), or the measured-RTO trends.
pub fn list(global: &GlobalArgs, args: &DrillsArgs) -> Result<u8> {
    let settings = instance::settings(global, Some(&args.instance), None)?;
    if let Some(crate::cli::DrillsCommand::Show { id, format }) = &args.command {
        return show(global, &settings, *id, format);
    }
    // The trend reads every drill.
    let limit = Some(if args.trend { u32::MAX } else { args.limit });
    let query = DrillsQuery {
        id: None,
        system: args.system.clone(),
        limit,
    };
    let services = ServiceDrillsQuery {
        service: args.service.clone(),
        limit,
    };
    let rt = instance::runtime()?;
    let (drills, service_drills) = rt.block_on(async {
        let instance = instance::connect(&settings).await?;
        let systems = if args.service.is_some() {
            Vec::new()
        } else {
            instance.drills(&query).await?
        };
        let services = if args.system.is_some() || !(args.trend || args.service.is_some()) {
            Vec::new()
        } else {
            instance.service_drills(&services).await?
        };
        Ok::<_, anyhow::Error>((systems, services))
    })?;
    if args.trend {
        print_trends(global, &drills, &service_drills)?;
    } else if args.service.is_some() {
        print_service_drills(global, &service_drills)?;
    } else {
        print_drills(global, &drills)?;
    }
    Ok(exit::SUCCESS)
}

/// Per service (drills of the service as a whole) and per system.
fn print_trends(
    global: &GlobalArgs,
    drills: &[haven_model::drills::Drill],
    service_drills: &[haven_model::drills::ServiceDrill],
) -> Result<()> {
    let services = haven_model::drills::service_rto_trends(service_drills);
    let systems = haven_model::drills::rto_trends(drills);
    if global.json {
        return output::print_json(&serde_json::json!({
            "services": services,
            "systems": systems,
        }));
    }
    for (what, trends) in [("service", &services), ("system", &systems)] {
        if trends.is_empty() {
            continue;
        }
        println!("{what}  drills  first  last  median  change per 30 days");
        for t in trends {
            println!(
                "{}  {}  {}  {}  {}  {}",
                t.id,
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
    Ok(())
}

fn print_drills(global: &GlobalArgs, drills: &[haven_model::drills::Drill]) -> Result<()> {
    if global.json {
        return output::print_json(&drills);
    }
    println!("id  system  started  verdict  measured RTO  achieved RPO  reasons");
    for d in drills {
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
    Ok(())
}

fn print_service_drills(
    global: &GlobalArgs,
    drills: &[haven_model::drills::ServiceDrill],
) -> Result<()> {
    if global.json {
        return output::print_json(&drills);
    }
    println!("id  service  started  verdict  measured RTO  system drills  reasons");
    for d in drills {
        println!(
            "{}  {}  {}  {}  {}  {}  {}",
            d.id,
            d.service,
            d.started_at.strftime("%Y-%m-%d %H:%M"),
            d.verdict.as_str(),
            format_duration(d.measured_rto),
            d.drills
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(","),
            d.reasons.join("; ")
        );
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM, naming it.
pub(crate) async fn interrupted() -> &'static str {
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
