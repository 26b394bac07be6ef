//! `haven recover`: a recovery's waves, steps and forecast (`--dry-run`).

use anyhow::Result;
use haven_model::catalog::duration::format_duration;
use haven_model::errors::ErrorCode;
use haven_model::recovery::{Forecast, Selection, UnitKind};
use haven_ops::api::{ForecastRequest, InstanceError};

use crate::cli::{GlobalArgs, RecoverArgs};
use crate::{exit, instance, output};

pub fn run(global: &GlobalArgs, args: &RecoverArgs) -> Result<u8> {
    if !args.dry_run {
        return Err(InstanceError::new(
            ErrorCode::InvalidArgument,
            "running a recovery is not available yet: `haven recover … --dry-run` shows the waves, the steps and the forecast",
        )
        .into());
    }
    let settings = instance::settings(global, Some(&args.instance), None)?;
    let selection = match (&args.plan, args.all) {
        (Some(plan), _) => Selection::Plan(plan.clone()),
        (None, true) => Selection::All,
        (None, false) => Selection::Services(args.services.clone()),
    };
    let request = ForecastRequest { selection };
    let rt = instance::runtime()?;
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
    Ok(exit::SUCCESS)
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
