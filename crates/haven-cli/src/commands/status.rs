//! `haven status`: RPO compliance, worst first.

use anyhow::Result;
use haven_model::catalog::duration::format_duration;
use haven_model::compliance::RpoState;
use haven_ops::status::StatusReport;
use jiff::Timestamp;

use crate::cli::{GlobalArgs, StatusArgs};
use crate::instance;
use crate::{exit, output};

pub fn run(global: &GlobalArgs, args: &StatusArgs) -> Result<u8> {
    let settings = instance::settings(global, Some(&args.instance), None)?;
    let rt = instance::runtime()?;
    let mut status = rt.block_on(async {
        Ok::<_, anyhow::Error>(instance::connect(&settings).await?.status().await?)
    })?;
    if let Some(state) = args.state.as_deref().and_then(RpoState::parse) {
        status = status.only(state);
    }
    // At this state or worse (states sort worst first).
    let failing = args
        .fail_on
        .as_deref()
        .and_then(RpoState::parse)
        .filter(|limit| {
            status
                .services
                .iter()
                .map(|s| s.compliance.state)
                .chain(status.systems.iter().map(|s| s.compliance.state))
                .any(|s| s <= *limit)
        });
    if global.json {
        output::print_json(&status)?;
    } else {
        print_table(&status);
    }
    if let Some(limit) = failing {
        eprintln!(
            "error: services or systems are {} or worse (--fail-on {})",
            limit.as_str(),
            limit.as_str()
        );
        return Ok(exit::FAILURE);
    }
    Ok(exit::SUCCESS)
}

fn age(d: Option<jiff::SignedDuration>) -> String {
    d.map_or("-".into(), haven_model::catalog::duration::format_age)
}

fn next(at: Option<Timestamp>, now: Timestamp) -> String {
    at.map_or("-".into(), |t| {
        let d = t.duration_since(now).max(jiff::SignedDuration::ZERO);
        format!("in {}", age(Some(d + jiff::SignedDuration::from_secs(59))))
    })
}

pub(crate) fn print_table(status: &StatusReport) {
    let now = status.generated_at;
    println!(
        "{:<22} {:>4} {:>6} {:>10} {:<12} {:<19} NEXT RUN",
        "SERVICE", "TIER", "RPO", "AGE", "STATE", "READINESS"
    );
    for s in &status.services {
        let c = &s.compliance;
        println!(
            "{:<22} {:>4} {:>6} {:>10} {:<12} {:<19} {}",
            c.service,
            c.tier,
            c.rpo.map_or("-".into(), format_duration),
            age(c.age),
            c.state.as_str(),
            s.readiness.map_or("-", |r| r.as_str()),
            next(s.next_run, now)
        );
    }
    println!();
    println!(
        "{:<22} {:>6} {:>10} {:<12} {:<12} NEXT RUN",
        "SYSTEM", "RPO", "AGE", "STATE", "LAST JOB"
    );
    for s in &status.systems {
        let c = &s.compliance;
        let mut state = c.state.as_str().to_string();
        if c.systemic {
            state.push_str(" (systemic)");
        }
        println!(
            "{:<22} {:>6} {:>10} {:<12} {:<12} {}",
            c.system,
            c.rpo.map_or("-".into(), format_duration),
            if c.never_backed_up && c.last_good_at.is_none() {
                format!("{} (never)", age(c.age))
            } else {
                age(c.age)
            },
            state,
            s.last_outcome.map_or("-", |o| o.as_str()),
            next(s.next_run, now)
        );
    }
}
