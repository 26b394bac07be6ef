//! `haven alerts`, `haven alert show|ack|resolve` and `haven notify test`:
//! through the running server's API, or on the data dir when none runs.

use anyhow::Result;
use haven_model::alerts::{Alert, mean_times};
use haven_model::catalog::duration::format_duration;
use haven_ops::api::{AlertAction, AlertsQuery, RESOLVED_BY_HAND};

use crate::cli::{AlertCommand, AlertsArgs, GlobalArgs, NotifyCommand};
use crate::instance;
use crate::{exit, output};

pub fn list(global: &GlobalArgs, args: &AlertsArgs) -> Result<u8> {
    let settings = instance::settings(global, Some(&args.instance), None)?;
    let query = AlertsQuery {
        open: args.open,
        service: args.service.clone(),
        limit: Some(args.limit),
    };
    let rt = instance::runtime()?;
    let alerts = rt.block_on(async {
        Ok::<_, anyhow::Error>(instance::connect(&settings).await?.alerts(&query).await?)
    })?;
    if global.json {
        output::print_json(&alerts)?;
        return Ok(exit::SUCCESS);
    }
    if alerts.is_empty() {
        eprintln!("no alerts match");
        return Ok(exit::SUCCESS);
    }
    // Grouped per service (most critical tier first), newest first inside.
    let mut sorted: Vec<&Alert> = alerts.iter().collect();
    sorted.sort_by(|a, b| {
        (a.subject.tier.unwrap_or(9), &a.subject.service, -a.id).cmp(&(
            b.subject.tier.unwrap_or(9),
            &b.subject.service,
            -b.id,
        ))
    });
    let mut group: Option<Option<String>> = None;
    for alert in sorted {
        if group.as_ref() != Some(&alert.subject.service) {
            group = Some(alert.subject.service.clone());
            match (&alert.subject.service, alert.subject.tier) {
                (Some(s), Some(t)) => println!("service {s} (tier {t})"),
                _ => println!("no service"),
            }
            println!(
                "  {:>5} {:<12} {:<9} {:<23} {:<17} {:>5}  SUMMARY",
                "ID", "STATE", "SEVERITY", "RULE", "FIRST (UTC)", "SEEN"
            );
        }
        let mut state = alert.state.as_str().to_string();
        if alert.suppressed_by.is_some() && alert.notified_at.is_none() && alert.is_active() {
            state = "held".into();
        }
        println!(
            "  {:>5} {:<12} {:<9} {:<23} {:<17} {:>5}  {}",
            alert.id,
            state,
            alert.severity.as_str(),
            alert.rule.id(),
            alert.first_seen.strftime("%Y-%m-%d %H:%M"),
            format!("{}x", alert.occurrences),
            alert.summary
        );
    }
    let times = mean_times(&alerts);
    let show = |d: Option<jiff::SignedDuration>| d.map_or("-".into(), format_duration);
    println!(
        "{} alerts; MTTD {}, MTTA {}, MTTR {}",
        times.alerts,
        show(times.mttd),
        show(times.mtta),
        show(times.mttr)
    );
    Ok(exit::SUCCESS)
}

pub fn alert(global: &GlobalArgs, command: &AlertCommand) -> Result<u8> {
    let args = match command {
        AlertCommand::Show { instance, .. }
        | AlertCommand::Ack { instance, .. }
        | AlertCommand::Resolve { instance, .. } => instance,
    };
    let settings = instance::settings(global, Some(args), None)?;
    let rt = instance::runtime()?;
    match command {
        AlertCommand::Show { id, .. } => {
            let detail = rt.block_on(async {
                Ok::<_, anyhow::Error>(instance::connect(&settings).await?.alert(*id).await?)
            })?;
            if global.json {
                output::print_json(&detail)?;
                return Ok(exit::SUCCESS);
            }
            print_alert(&detail.alert);
            if !detail.deliveries.is_empty() {
                println!("  deliveries:");
                for d in &detail.deliveries {
                    println!(
                        "    {} step {} {} ({}) attempt {}: {}",
                        d.at.strftime("%Y-%m-%d %H:%M:%S"),
                        d.step.map_or("-".into(), |s| (s + 1).to_string()),
                        d.channel,
                        d.channel_type,
                        d.attempt,
                        d.error.as_deref().unwrap_or("delivered")
                    );
                }
            }
            Ok(exit::SUCCESS)
        }
        AlertCommand::Ack { id, by, .. } | AlertCommand::Resolve { id, by, .. } => {
            let reason = match command {
                AlertCommand::Resolve { reason, .. } => {
                    Some(reason.clone().unwrap_or_else(|| RESOLVED_BY_HAND.into()))
                }
                _ => None,
            };
            let action = AlertAction {
                id: *id,
                by: instance::actor(by.as_ref()),
                reason,
            };
            let alert = rt.block_on(async {
                let instance = instance::connect(&settings).await?;
                Ok::<_, anyhow::Error>(match &action.reason {
                    Some(_) => instance.resolve(&action).await?,
                    None => instance.acknowledge(&action).await?,
                })
            })?;
            if global.json {
                output::print_json(&alert)?;
            } else {
                print_alert(&alert);
            }
            Ok(exit::SUCCESS)
        }
    }
}

fn print_alert(alert: &Alert) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let time = |t: Option<jiff::Timestamp>| t.map_or("-".into(), |t| t.to_string());
    println!(
        "alert {}: {} ({}) — {}",
        alert.id,
        alert.rule.id(),
        alert.severity.as_str(),
        alert.state.as_str()
    );
    println!("  {}", alert.summary);
    println!("  key:          {}", alert.key);
    println!(
        "  service:      {}{}",
        opt(&alert.subject.service),
        alert
            .subject
            .tier
            .map_or(String::new(), |t| format!(" (tier {t})"))
    );
    println!("  system:       {}", opt(&alert.subject.system));
    println!("  backup set:   {}", opt(&alert.subject.backup_set));
    println!("  repository:   {}", opt(&alert.subject.repository));
    println!("  since:        {}", alert.condition_since);
    println!(
        "  first seen:   {} (detected after {})",
        alert.first_seen,
        format_duration(alert.time_to_detect())
    );
    println!("  last seen:    {}", alert.last_seen);
    println!("  occurrences:  {}", alert.occurrences);
    if let Some(window) = &alert.suppressed_by {
        println!("  maintenance:  raised inside window {window}");
    }
    println!("  notified:     {}", time(alert.notified_at));
    if let Some(progress) = &alert.escalation {
        println!("  escalation:   {}", progress);
    }
    let who = |by: &Option<String>, declared: &Option<String>| match declared {
        Some(name) => format!("{} (declared: {name})", opt(by)),
        None => opt(by),
    };
    if let Some(at) = alert.acknowledged_at {
        println!(
            "  acknowledged: {at} by {}",
            who(&alert.acknowledged_by, &alert.acknowledged_declared)
        );
    }
    if let Some(at) = alert.resolved_at {
        println!(
            "  resolved:     {at} by {}: {}",
            who(&alert.resolved_by, &alert.resolved_declared),
            opt(&alert.resolution)
        );
    }
    for (key, value) in &alert.facts {
        println!("  {key:<13} {value}");
    }
}

pub fn notify(global: &GlobalArgs, command: &NotifyCommand) -> Result<u8> {
    let NotifyCommand::Test {
        instance: args,
        channel,
    } = command;
    let settings = instance::settings(global, Some(args), None)?;
    let rt = instance::runtime()?;
    let report = rt.block_on(async {
        Ok::<_, anyhow::Error>(
            instance::connect(&settings)
                .await?
                .notify_test(channel)
                .await?,
        )
    })?;
    if global.json {
        output::print_json(&report)?;
    } else {
        for a in &report.attempts {
            println!(
                "attempt {} through {} ({}): {}",
                a.attempt,
                a.channel,
                a.channel_type,
                a.error.as_deref().unwrap_or("delivered")
            );
        }
        match &report.delivered_by {
            Some(c) => println!("delivered through {c}"),
            None => println!("not delivered"),
        }
    }
    Ok(if report.delivered_by.is_some() {
        exit::SUCCESS
    } else {
        exit::FAILURE
    })
}
