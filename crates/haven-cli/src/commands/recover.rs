//! `haven recover`: bring services back in dependency order. Starts a
//! run (or resumes one) and follows it, printing each step as it moves,
//! until it completes or stops; `--dry-run` shows the waves, steps and
//! forecast instead. `status`, `confirm`, `retry`, `skip` and `report`
//! act on a recorded run (from another terminal while it runs).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use haven_model::catalog::duration::format_duration;
use haven_model::recovery::run::{Decision, RunState, RunView, StepState};
use haven_model::recovery::{Forecast, Selection, UnitKind};
use haven_ops::api::{
    AbandonRequest, ForecastRequest, Instance, RecoverRequest, ResumeRequest, StepDecision,
};

use crate::cli::{GlobalArgs, RecoverArgs, RecoverCommand};
use crate::{exit, instance, output};

/// How often a followed run is read again.
const FOLLOW_EVERY: Duration = Duration::from_millis(400);

pub fn run(global: &GlobalArgs, args: &RecoverArgs) -> Result<u8> {
    if let Some(command) = &args.command {
        return on_run(global, command);
    }
    let settings = instance::settings(global, Some(&args.instance), None)?;
    let selection = match (&args.plan, args.all) {
        (Some(plan), _) => Selection::Plan(plan.clone()),
        (None, true) => Selection::All,
        (None, false) => Selection::Services(args.services.clone()),
    };
    let rt = instance::runtime()?;
    if args.dry_run {
        let request = ForecastRequest { selection };
        let forecast = rt.block_on(async {
            Ok::<_, anyhow::Error>(
                instance::connect(&settings)
                    .await?
                    .recovery_forecast(&request)
                    .await?,
            )
        })?;
        if global.json {
            output::print_json(&forecast)?;
        } else {
            print_forecast(&forecast);
        }
        return Ok(exit::SUCCESS);
    }
    let by = instance::actor(None).to_string();
    rt.block_on(async {
        let instance = instance::connect(&settings).await?;
        let view = match args.resume {
            Some(run) => instance.resume_recovery(&ResumeRequest { run, by }).await?,
            None => {
                let request = RecoverRequest {
                    selection,
                    at: args.at,
                    target: args.target.clone(),
                    reason: args.reason.clone(),
                    force: args.force,
                    by,
                };
                instance.recover(&request).await?
            }
        };
        following(global, instance.as_ref(), view).await
    })
}

/// Follow run `id` (an approved request's) as `haven recover` follows
/// the runs it starts.
pub async fn follow_run(global: &GlobalArgs, instance: &dyn Instance, id: i64) -> Result<u8> {
    let view = instance.recovery(id).await?;
    following(global, instance, view).await
}

/// Follow a run until it stops, or until this command is interrupted.
async fn following(global: &GlobalArgs, instance: &dyn Instance, view: RunView) -> Result<u8> {
    {
        let id = view.run.id;
        tokio::select! {
            code = follow(global, instance, view) => code,
            signal = crate::commands::drill::interrupted() => {
                // A run executing in this process stops with it: its
                // commands are killed so nothing writes behind it.
                haven_ops::recovery::abort();
                eprintln!(
                    "{signal}: stopped following run {id}. A run executing in this command is interrupted (continue it with `haven recover --resume {id}`); one executing in a server goes on (`haven recover status {id}`)"
                );
                Ok(exit::FAILURE)
            }
        }
    }
}

/// `status`, `confirm`, `retry`, `skip`, `report` on a recorded run.
fn on_run(global: &GlobalArgs, command: &RecoverCommand) -> Result<u8> {
    let (instance_args, run) = match command {
        RecoverCommand::Status { instance, run } => (instance, *run),
        RecoverCommand::Confirm { instance, run, .. }
        | RecoverCommand::Retry { instance, run, .. }
        | RecoverCommand::Skip { instance, run, .. }
        | RecoverCommand::Abandon { instance, run, .. }
        | RecoverCommand::Report { instance, run, .. } => (instance, Some(*run)),
    };
    let settings = instance::settings(global, Some(instance_args), None)?;
    let rt = instance::runtime()?;
    rt.block_on(async {
        let instance = instance::connect(&settings).await?;
        let decision =
            |step: u32, decision: Decision, by: &Option<String>, note: Option<String>| {
                StepDecision {
                    run: run.unwrap_or_default(),
                    step,
                    decision,
                    by: instance::actor(by.as_ref()).to_string(),
                    note,
                }
            };
        let view = match command {
            RecoverCommand::Status { run: None, .. } => {
                let runs = instance.recoveries().await?;
                if global.json {
                    output::print_json(&runs)?;
                } else {
                    for r in &runs {
                        println!(
                            "run {:>4}  {:<11}  started {} by {}  {} services{}",
                            r.id,
                            r.state.as_str(),
                            r.started_at,
                            r.by,
                            r.plan.services().len(),
                            r.reason
                                .as_ref()
                                .map(|x| format!("  ({x})"))
                                .unwrap_or_default()
                        );
                    }
                }
                return Ok(exit::SUCCESS);
            }
            RecoverCommand::Status { run: Some(id), .. } => instance.recovery(*id).await?,
            RecoverCommand::Confirm { step, by, note, .. } => {
                let d = decision(*step, Decision::Confirm, by, note.clone());
                instance.decide_step(&d).await?
            }
            RecoverCommand::Retry {
                step, by, reason, ..
            } => {
                let d = decision(*step, Decision::Retry, by, Some(reason.clone()));
                instance.decide_step(&d).await?
            }
            RecoverCommand::Skip {
                step, by, reason, ..
            } => {
                let d = decision(*step, Decision::Skip, by, Some(reason.clone()));
                instance.decide_step(&d).await?
            }
            RecoverCommand::Abandon {
                run, reason, by, ..
            } => {
                let request = AbandonRequest {
                    run: *run,
                    by: instance::actor(by.as_ref()).to_string(),
                    reason: reason.clone(),
                };
                instance.abandon_recovery(&request).await?
            }
            RecoverCommand::Report { format, run, .. } => {
                let view = instance.recovery(*run).await?;
                match format.as_str() {
                    "html" => print!("{}", haven_ops::recovery::report::html(&view)),
                    "json" => output::print_json(&view)?,
                    _ => print!("{}", haven_ops::recovery::report::markdown(&view)),
                }
                return Ok(exit::SUCCESS);
            }
        };
        if global.json {
            output::print_json(&view)?;
        } else {
            print_status(&view);
        }
        Ok(exit::SUCCESS)
    })
}

/// Follow a run until it completes or stops, printing each step as it
/// moves (on stderr under --json, whose answer is the final run).
async fn follow(global: &GlobalArgs, instance: &dyn Instance, mut view: RunView) -> Result<u8> {
    let say = |line: String| {
        if global.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    let id = view.run.id;
    if view.run.state == RunState::Refused {
        say(format!(
            "recovery run {id} refused by pre-flight; nothing was touched:"
        ));
        for f in view.run.preflight.iter().filter(|f| f.blocking) {
            say(format!("  - {}: {}", f.check, f.detail));
        }
        say("fix these, or run again with --force --reason TEXT".into());
        if global.json {
            output::print_json(&view)?;
        }
        return Ok(exit::FAILURE);
    }
    say(format!(
        "recovery run {id}: {} units, {} steps, {} side by side at most (follow it elsewhere with `haven recover status {id}`)",
        view.run.plan.units.len(),
        view.steps.len(),
        view.run.plan.concurrency
    ));
    for f in &view.run.preflight {
        let level = if f.blocking { "overridden" } else { "warning" };
        say(format!("  pre-flight {level} ({}): {}", f.check, f.detail));
    }
    let mut shown: HashMap<u32, (StepState, u32)> = HashMap::new();
    loop {
        for step in &view.steps {
            let now = (step.state, step.attempts);
            if shown.get(&step.number) == Some(&now) || step.state == StepState::Pending {
                continue;
            }
            shown.insert(step.number, now);
            say(step_line(id, step));
        }
        if matches!(
            view.run.state,
            RunState::Completed | RunState::Interrupted | RunState::Abandoned
        ) {
            break;
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
        view = instance.recovery(id).await?;
    }
    if global.json {
        output::print_json(&view)?;
    } else {
        print_outcome(&view);
    }
    let whole = view.steps.iter().all(|s| s.state == StepState::Done)
        && view.services.iter().all(|s| s.verdict == "met");
    Ok(match view.run.state {
        RunState::Completed if whole => exit::SUCCESS,
        RunState::Completed => exit::PARTIAL,
        _ => exit::FAILURE,
    })
}

fn step_line(run: i64, s: &haven_model::recovery::run::StepRecord) -> String {
    let took = match (s.started_at, s.ended_at) {
        (Some(a), Some(b)) => format!(" ({})", format_duration(b.duration_since(a))),
        _ => String::new(),
    };
    if let Some(decided) = &s.pending {
        return format!(
            "step {:>3}  deciding  {}: {} by {}, about to be acted on",
            s.number,
            s.name,
            decided.decision.as_str(),
            decided.by
        );
    }
    // A checkpoint's name holds its prompt already.
    let detail = |s: &haven_model::recovery::run::StepRecord| {
        if s.name.contains(&s.detail) {
            String::new()
        } else {
            format!(": {}", s.detail)
        }
    };
    match s.state {
        StepState::Waiting => format!(
            "step {:>3}  WAITING   {}{} — confirm with `haven recover confirm {run} {}`",
            s.number,
            s.name,
            detail(s),
            s.number
        ),
        StepState::Failed if s.critical => format!(
            "step {:>3}  FAILED    {}{took}: {} — the run is halted: `haven recover retry|skip {run} {} --reason TEXT`",
            s.number, s.name, s.detail, s.number
        ),
        StepState::Failed => format!(
            "step {:>3}  failed    {}{took}: {} (not critical: the run goes on)",
            s.number, s.name, s.detail
        ),
        StepState::Running => format!("step {:>3}  running   {}", s.number, s.name),
        StepState::Done => format!("step {:>3}  done      {}{took}", s.number, s.name),
        StepState::Skipped => format!("step {:>3}  skipped   {}{}", s.number, s.name, detail(s)),
        StepState::Pending => format!("step {:>3}  pending   {}", s.number, s.name),
    }
}

fn print_outcome(view: &RunView) {
    let r = &view.run;
    println!();
    println!("recovery run {}: {}", r.id, r.state.as_str());
    if r.state == RunState::Interrupted {
        println!("  continue it with `haven recover --resume {}`", r.id);
    }
    for s in &view.services {
        let measured = s
            .measured_rto
            .map_or_else(|| "not back".into(), format_duration);
        let rto = s.rto.map_or_else(|| "none".into(), format_duration);
        println!(
            "  service {}: back after {measured} (RTO {rto}): {}",
            s.service, s.verdict
        );
    }
    for s in &r.snapshots {
        println!(
            "  system {} set {}: snapshot {} of {}, {} of data lost",
            s.system,
            s.set,
            &s.snapshot[..s.snapshot.len().min(8)],
            s.time,
            format_duration(s.data_lost)
        );
    }
}

fn print_status(view: &RunView) {
    let r = &view.run;
    println!(
        "recovery run {}: {}  (started {} by {}{}; target {})",
        r.id,
        r.state.as_str(),
        r.started_at,
        r.by,
        r.reason
            .as_ref()
            .map(|x| format!(": {x}"))
            .unwrap_or_default(),
        r.target
    );
    for step in &view.steps {
        println!("{}", step_line(r.id, step));
    }
    for s in &view.services {
        let measured = s
            .measured_rto
            .map_or_else(|| "not back".into(), format_duration);
        println!("  service {}: {measured} ({})", s.service, s.verdict);
    }
}

fn print_forecast(f: &Forecast) {
    let plan = &f.plan;
    let waves = plan.units.iter().map(|u| u.wave + 1).max().unwrap_or(0);
    println!(
        "recovery{}: {waves} waves, {} units side by side at most{}",
        plan.plan
            .as_ref()
            .map(|p| format!(" plan {p}"))
            .unwrap_or_default(),
        plan.concurrency,
        if plan.deferred.is_empty() {
            String::new()
        } else {
            format!("; deferred: {}", plan.deferred.join(", "))
        }
    );
    let mut wave = None;
    for (unit, item) in plan.units.iter().zip(&f.items) {
        if wave.is_some_and(|w| w != unit.wave) {
            println!();
        }
        wave = Some(unit.wave);
        let kind = match unit.kind {
            UnitKind::System => "system",
            UnitKind::Service => "service",
            UnitKind::Vendor => "vendor",
        };
        let objective = match (item.rto, item.mtd) {
            (Some(rto), Some(mtd)) => format!(
                ", RTO {}, MTD {}",
                format_duration(rto),
                format_duration(mtd)
            ),
            (Some(rto), None) => format!(", RTO {}", format_duration(rto)),
            _ => String::new(),
        };
        println!(
            "wave {}  {kind} {}: {} → {} ({}: {}){objective}{}",
            unit.wave + 1,
            unit.id,
            format_duration(item.start),
            format_duration(item.end),
            format_duration(item.estimate),
            item.basis,
            match item.late.as_deref() {
                Some("mtd") => "  LATE: past its MTD",
                Some(_) => "  LATE: past its RTO",
                None => "",
            }
        );
        for step in &unit.steps {
            println!(
                "    step {:>3}  {}{}",
                step.number,
                step.name,
                if step.critical { "" } else { " (not critical)" }
            );
        }
    }
    println!();
    println!(
        "critical path: {} ({})",
        f.critical_path.join(" → "),
        format_duration(f.completion)
    );
    if f.breaches.is_empty() {
        println!("every service is predicted back within its RTO and MTD");
    } else {
        println!("predicted breaches:");
        for b in &f.breaches {
            println!("  - {b}");
        }
    }
}
