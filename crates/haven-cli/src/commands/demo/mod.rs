//! `haven demo`: a data dir from an example catalog, then the server in
//! the foreground with the first backups queued at once.

mod setup;

use std::time::Duration;

use anyhow::Result;
use haven_ops::api::{Instance, RunRequest};
use haven_ops::instance::{Overrides, Settings};

use crate::cli::{DemoArgs, GlobalArgs};
use crate::commands::{server, status};
use crate::exit;

pub fn run(global: &GlobalArgs, args: &DemoArgs) -> Result<u8> {
    let demo = setup::prepare(&global.data_dir, &args.from)?;
    let data_dir = demo.data_dir.display().to_string();
    eprintln!(
        "{} demo data dir {data_dir}; databases: {}",
        if demo.reused {
            "reusing the"
        } else {
            "created the"
        },
        demo.databases
    );
    if args.no_server {
        if let Some(pg) = &demo.postgres {
            pg.stop();
        }
        return Ok(exit::SUCCESS);
    }
    let settings = Settings::load(
        &demo.data_dir,
        &Overrides {
            listen: args.listen.clone(),
            ..Overrides::default()
        },
    )?;
    let catalog = crate::instance::catalog(&settings)?;
    let password = console_admin(&settings)?;
    let systems: Vec<String> = catalog
        .systems
        .iter()
        .filter(|s| s.policy.is_some() && !s.backup_sets.is_empty())
        .map(|s| s.id.value.to_string())
        .collect();
    // The demo's real PostgreSQL databases are drilled once they are
    // backed up (the catalog's [[drill]] schedules take over later).
    let databases: Vec<String> = catalog
        .systems
        .iter()
        .filter(|s| s.kind.value == "database-postgres" && demo.postgres.is_some())
        .filter(|s| s.policy.is_some() && !s.backup_sets.is_empty())
        .map(|s| s.id.value.to_string())
        .collect();
    let result = server::serve(settings, move |handle, address| {
        println!(
            "Console: http://{address}/ (user admin, password {password}: a new one at every start of the demo)"
        );
        tokio::spawn(async move {
            for system in &systems {
                let request = RunRequest {
                    system: system.clone(),
                    by: haven_model::actor::Actor::new("demo", None),
                };
                if let Err(e) = handle.run(&request).await {
                    eprintln!("cannot queue {system}: {e}");
                }
            }
            // Show the status once every system has a first result (or
            // after ten minutes, whatever it is then).
            let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
            let mut interval = tokio::time::interval(Duration::from_millis(500));
            loop {
                interval.tick().await;
                let Ok(report) = handle.status().await else {
                    continue;
                };
                let done = report.systems.iter().all(|s| s.last_outcome.is_some());
                if done || tokio::time::Instant::now() > deadline {
                    println!();
                    status::print_table(&report);
                    println!();
                    drill_databases(&handle, &databases).await;
                    println!(
                        "The server keeps running (Ctrl-C stops it). Meanwhile, in another shell:"
                    );
                    println!("  haven status --data-dir {data_dir}");
                    println!("  haven status --data-dir {data_dir} --state quarantined --json");
                    println!("  haven jobs --data-dir {data_dir} --failed");
                    println!("  haven run --data-dir {data_dir} erp-db");
                    println!("  haven drill --data-dir {data_dir} erp");
                    println!("  haven drills --data-dir {data_dir}");
                    println!(
                        "  curl -H \"Authorization: Bearer $(cat {data_dir}/api-token)\" http://{address}/api/v1/status"
                    );
                    break;
                }
            }
        });
    });
    if let Some(pg) = &demo.postgres {
        pg.stop();
    }
    result
}

/// The demo's console admin, with a new random password (printed once,
/// replaced at the next start).
fn console_admin(settings: &Settings) -> Result<String> {
    use haven_ops::api::{NewUser, UserChange};
    let password: String = (0..4)
        .map(|_| format!("{:06x}", rand::random::<u32>() & 0xff_ffff))
        .collect::<Vec<_>>()
        .join("-");
    let settings = settings.clone();
    let by = crate::instance::actor(None).to_string();
    let secret = password.clone();
    crate::instance::runtime()?.block_on(async move {
        let instance = haven_ops::datadir::DataDir::open(settings)
            .await?
            .audited()
            .await?;
        if instance.users().await?.iter().any(|u| u.name == "admin") {
            let change = UserChange {
                name: "admin".into(),
                password: Some(secret),
                roles: None,
                teams: None,
                by,
            };
            instance.user_change(&change).await?;
        } else {
            let user = NewUser {
                name: "admin".into(),
                roles: vec![haven_model::access::Role::Admin],
                teams: Vec::new(),
                password: secret,
                by,
            };
            instance.user_add(&user).await?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(password)
}

/// Drill each database for real (a throwaway cluster loaded from its
/// dump, its checks run there) and say how it went.
async fn drill_databases(handle: &haven_ops::server::Handle, databases: &[String]) {
    for system in databases {
        let request = haven_ops::api::DrillRequest {
            system: system.clone(),
            snapshot: None,
            at: None,
            keep: false,
            by: "demo".into(),
        };
        match handle.drill(&request).await {
            Ok(outcome) => {
                let d = &outcome.drill;
                println!(
                    "drill {} of {}: {} (measured RTO {}, achieved RPO {}){}",
                    d.id,
                    d.system,
                    d.verdict.as_str(),
                    haven_model::catalog::duration::format_duration(d.measured_rto),
                    haven_model::catalog::duration::format_duration(d.achieved_rpo),
                    if d.reasons.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", d.reasons.join("; "))
                    }
                );
            }
            Err(e) => println!("drill of {system}: {e}"),
        }
    }
}
