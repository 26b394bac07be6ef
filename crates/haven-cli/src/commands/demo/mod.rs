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
    let users = demo_users(&settings)?;
    let password = users.admin.clone();
    if !demo.reused {
        date_back(&settings, &setup::failing_systems(&catalog))?;
    }
    let systems: Vec<String> = catalog
        .systems
        .iter()
        .filter(|s| s.policy.is_some() && !s.backup_sets.is_empty())
        .map(|s| s.id.value.to_string())
        .collect();
    // The demo's real PostgreSQL databases are drilled once they are
    // backed up (the catalog's [[drill]] schedules take over later), and
    // the PLM vault, whose sample data lacks the index its check wants: a
    // failed drill.
    let drilled: Vec<String> = catalog
        .systems
        .iter()
        .filter(|s| {
            (s.kind.value == "database-postgres" && demo.postgres.is_some())
                || s.id.value == "plm-vault"
        })
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
                    drill(&handle, &drilled).await;
                    if let Some(requester) = &users.requester {
                        ask_for_a_recovery(&handle, requester, &data_dir).await;
                    }
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

/// The demo's people: the console's admin with a new password (printed
/// once, replaced at every start), and, the first time, `dana`, a restore
/// operator whose recovery request waits for the admin's approval.
struct DemoUsers {
    admin: String,
    /// Dana's name and password when she was just added.
    requester: Option<(String, String)>,
}

fn random_password() -> String {
    (0..4)
        .map(|_| format!("{:06x}", rand::random::<u32>() & 0xff_ffff))
        .collect::<Vec<_>>()
        .join("-")
}

fn demo_users(settings: &Settings) -> Result<DemoUsers> {
    use haven_ops::api::{NewUser, UserChange};
    let password = random_password();
    let dana = random_password();
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
                by: by.clone(),
            };
            instance.user_change(&change).await?;
        } else {
            let user = NewUser {
                name: "admin".into(),
                roles: vec![haven_model::access::Role::Admin],
                teams: Vec::new(),
                password: secret,
                by: by.clone(),
            };
            instance.user_add(&user).await?;
        }
        let requester = if instance.users().await?.iter().any(|u| u.name == "dana") {
            None
        } else {
            let user = NewUser {
                name: "dana".into(),
                roles: vec![haven_model::access::Role::RestoreOperator],
                teams: Vec::new(),
                password: dana.clone(),
                by: by.clone(),
            };
            instance.user_add(&user).await?;
            Some(("dana".to_string(), dana))
        };
        Ok::<_, anyhow::Error>(DemoUsers {
            admin: password,
            requester,
        })
    })
}

/// The failing systems' RPO clocks start [`setup::FAILING_SINCE`] before
/// the demo, as if Haven had protected them that long (said in the demo
/// data dir's README): their services show violated at once instead of
/// hours into the demo.
fn date_back(settings: &Settings, failing: &[(String, String)]) -> Result<()> {
    let database = settings.database.clone();
    let failing = failing.to_vec();
    crate::instance::runtime()?.block_on(async move {
        let store = haven_store::open(&database).await?;
        let since = jiff::Timestamp::now() - setup::FAILING_SINCE;
        for (system, set) in &failing {
            let state = haven_model::jobs::SetState::new(system, set, since, "");
            store.put_set_state(&state).await?;
        }
        Ok::<_, anyhow::Error>(())
    })
}

/// Dana asks for the ERP back beside production (a tier 1 service: it
/// waits for a second person, the admin, in the console's Requests).
async fn ask_for_a_recovery(
    handle: &haven_ops::server::Handle,
    (name, password): &(String, String),
    data_dir: &str,
) {
    use haven_model::recovery::Selection;
    use haven_model::recovery::run::RestoreTarget;
    use haven_ops::api::{Caller, LoginRequest, RecoverRequest};
    let instance = handle.clone().audited();
    let login = LoginRequest {
        name: name.clone(),
        password: password.clone(),
        totp: None,
    };
    let gate = instance.acting(Caller::owner("demo", "demo"));
    let asked = async {
        let granted = gate.login(&login).await?;
        let identity = gate.session(&granted.secret).await?.ok_or_else(|| {
            haven_ops::api::InstanceError::new(
                haven_model::errors::ErrorCode::LoginFailed,
                "the demo's session ended at once",
            )
        })?;
        let dana = instance.acting(Caller::identified(&identity, "demo"));
        let request = RecoverRequest {
            selection: Selection::Services(vec!["erp".into()]),
            at: None,
            target: RestoreTarget::Alternate(format!("{data_dir}/recovered")),
            reason: Some("check the invoices of last week against a copy of the ERP".into()),
            force: false,
            by: identity.actor.clone(),
        };
        let said = dana.recover(&request).await;
        let _ = gate.logout(&granted.secret).await;
        said
    };
    match asked.await {
        Err(e) if e.code == haven_model::errors::ErrorCode::ApprovalRequired => {
            println!("{name} asks to recover the ERP: {}", e.message);
            println!("  approve or reject it in the console (Requests), or: haven request list");
        }
        Err(e) => println!("{name}'s recovery request: {e}"),
        Ok(run) => println!("{name}'s recovery {} started", run.run.id),
    }
}

/// Drill each system for real (a database: a throwaway cluster loaded
/// from its dump, its checks run there) and say how it went.
async fn drill(handle: &haven_ops::server::Handle, systems: &[String]) {
    for system in systems {
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
