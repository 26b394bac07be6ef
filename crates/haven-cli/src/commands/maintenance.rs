//! `haven maintenance list|add|end`.

use anyhow::{Result, bail};
use haven_model::catalog::parse_duration;
use haven_model::catalog::watch::Scope;
use haven_ops::api::{AddWindow, EndWindow, NewWindow};
use haven_ops::clock::{Clock, SystemClock};
use jiff::Timestamp;

use crate::cli::{GlobalArgs, MaintenanceAddArgs, MaintenanceCommand};
use crate::context::UsageError;
use crate::instance;
use crate::{exit, output};

fn time(flag: &str, text: &str, now: Timestamp) -> Result<Timestamp> {
    if text == "now" {
        return Ok(now);
    }
    text.parse().map_err(|_| {
        UsageError(format!(
            "{flag} {text:?}: give a time such as 2026-12-05T22:00:00+01:00 (or `now`)"
        ))
        .into()
    })
}

fn new_window(args: &MaintenanceAddArgs, now: Timestamp) -> Result<NewWindow> {
    let scope = Scope {
        services: args.services.clone(),
        systems: args.systems.clone(),
        repositories: args.repositories.clone(),
    };
    let empty =
        scope.services.is_empty() && scope.systems.is_empty() && scope.repositories.is_empty();
    if empty && !args.all {
        bail!(UsageError(
            "say what the window covers: --service, --system or --repository (repeatable), or --all".into()
        ));
    }
    if !empty && args.all {
        bail!(UsageError(
            "--all covers everything: leave out --service/--system/--repository".into()
        ));
    }
    let start = args
        .start
        .as_deref()
        .map_or(Ok(now), |s| time("--start", s, now))?;
    let end = match (&args.duration, &args.end) {
        (Some(d), _) => {
            let d = parse_duration(d).map_err(|e| UsageError(format!("--for {d:?}: {e}")))?;
            start + d
        }
        (None, Some(e)) => time("--end", e, now)?,
        (None, None) => bail!(UsageError("say how long: --for 2h, or --end TIME".into())),
    };
    Ok(NewWindow {
        scope,
        start,
        end,
        reason: args.reason.clone(),
    })
}

pub fn run(global: &GlobalArgs, command: &MaintenanceCommand) -> Result<u8> {
    let args = match command {
        MaintenanceCommand::List { instance } | MaintenanceCommand::End { instance, .. } => {
            instance
        }
        MaintenanceCommand::Add(add) => &add.instance,
    };
    let settings = instance::settings(global, Some(args), None)?;
    let rt = instance::runtime()?;
    let now = SystemClock.now();
    match command {
        MaintenanceCommand::List { .. } => {
            let list = rt.block_on(async {
                Ok::<_, anyhow::Error>(instance::connect(&settings).await?.windows().await?)
            })?;
            if global.json {
                output::print_json(&list)?;
                return Ok(exit::SUCCESS);
            }
            if list.is_empty() {
                eprintln!("no maintenance windows");
                return Ok(exit::SUCCESS);
            }
            println!(
                "{:<18} {:<8} {:<7} {:<17} {:<17} {:<30} REASON",
                "ID", "SOURCE", "ACTIVE", "START (UTC)", "END (UTC)", "COVERS"
            );
            for w in list {
                let covers = [
                    w.scope
                        .services
                        .iter()
                        .map(|s| format!("service {s}"))
                        .collect::<Vec<_>>(),
                    w.scope
                        .systems
                        .iter()
                        .map(|s| format!("system {s}"))
                        .collect(),
                    w.scope
                        .repositories
                        .iter()
                        .map(|s| format!("repository {s}"))
                        .collect(),
                ]
                .concat();
                let at = |t: Option<Timestamp>| {
                    t.map_or("-".into(), |t| t.strftime("%Y-%m-%d %H:%M").to_string())
                };
                println!(
                    "{:<18} {:<8} {:<7} {:<17} {:<17} {:<30} {}{}",
                    w.id,
                    w.source,
                    if w.active { "yes" } else { "no" },
                    at(w.start),
                    at(w.end),
                    if covers.is_empty() {
                        "everything".into()
                    } else {
                        covers.join(", ")
                    },
                    w.reason.unwrap_or_default(),
                    w.recurrence.map_or(String::new(), |r| format!(" [{r}]"))
                );
            }
            Ok(exit::SUCCESS)
        }
        MaintenanceCommand::Add(add) => {
            let request = AddWindow {
                window: new_window(add, now)?,
                by: instance::actor(add.by.as_ref()),
            };
            let recorded = rt.block_on(async {
                Ok::<_, anyhow::Error>(
                    instance::connect(&settings)
                        .await?
                        .add_window(&request)
                        .await?,
                )
            })?;
            if global.json {
                output::print_json(&recorded)?;
            } else {
                println!(
                    "maintenance window m{} from {} to {}",
                    recorded.id, recorded.start, recorded.end
                );
            }
            Ok(exit::SUCCESS)
        }
        MaintenanceCommand::End { id, by, .. } => {
            let request = EndWindow {
                id: id.clone(),
                by: instance::actor(by.as_ref()),
            };
            let ended = rt.block_on(async {
                Ok::<_, anyhow::Error>(
                    instance::connect(&settings)
                        .await?
                        .end_window(&request)
                        .await?,
                )
            })?;
            if global.json {
                output::print_json(&ended)?;
            } else {
                println!("maintenance window {id} ended at {}", ended.end);
            }
            Ok(exit::SUCCESS)
        }
    }
}
