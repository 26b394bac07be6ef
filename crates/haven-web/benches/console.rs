//! The console's overview for 2,000 services and 10,000 systems (a
//! benchmark, not a test; `bench/console.sh` runs it): server-side render
//! time of the whole page and of the htmx refresh, with their sizes, and
//! as the peer the API's JSON of the same status report, measured in the
//! same run. Prints `key value` lines.

use std::time::Instant;

use haven_ops::status::StatusReport;
use serde_json::{Value, json};

const SERVICES: usize = 2_000;
const SYSTEMS: usize = 10_000;
const RUNS: usize = 40;

/// A status report: every service with five systems; one in ten past its
/// RPO, one in fifty quarantined, one in twenty failing its drills.
fn estate() -> StatusReport {
    let states = |i: usize| match i {
        i if i % 50 == 0 => "quarantined",
        i if i % 10 == 0 => "violated",
        i if i % 7 == 0 => "at-risk",
        _ => "ok",
    };
    let services: Vec<Value> = (0..SERVICES)
        .map(|i| {
            json!({
                "service": format!("service-{i:04}"),
                "name": format!("Business service {i}"),
                "tier": 1 + (i % 4),
                "rpo": "PT24H",
                "last_good_at": "2026-11-29T01:00:00Z",
                "age": "PT13H",
                "state": states(i),
                "systems": (0..SYSTEMS / SERVICES).map(|k| format!("system-{:05}", i * 5 + k)).collect::<Vec<_>>(),
                "next_run": "2026-11-30T03:00:00Z",
                "readiness": if i % 20 == 0 { "failed" } else { "verified" },
                "impact_per_hour": 1000.0 + i as f64,
                "currency": "EUR",
            })
        })
        .collect();
    let systems: Vec<Value> = (0..SYSTEMS)
        .map(|k| {
            json!({
                "system": format!("system-{k:05}"),
                "rpo": "PT24H",
                "rpo_from": format!("service-{:04}", k / 5),
                "last_good_at": "2026-11-29T01:00:00Z",
                "age": "PT13H",
                "never_backed_up": false,
                "systemic": false,
                "state": states(k / 5),
                "last_outcome": "success",
                "next_run": "2026-11-30T03:00:00Z",
            })
        })
        .collect();
    serde_json::from_value(json!({
        "generated_at": "2026-11-29T14:00:00Z",
        "source": "server",
        "services": services,
        "systems": systems,
    }))
    .expect("a status report")
}

/// Median and 95th percentile of `RUNS` timings of `work`, in ms.
fn timed(mut work: impl FnMut() -> usize) -> (f64, f64, usize) {
    let mut times = Vec::with_capacity(RUNS);
    let mut size = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        size = work();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (times[RUNS / 2], times[(RUNS * 95).div_ceil(100) - 1], size)
}

fn main() {
    let status = estate();
    let (page_median, page_p95, page_bytes) =
        timed(|| haven_web::console::overview_html(&status, false).len());
    let (fragment_median, fragment_p95, fragment_bytes) =
        timed(|| haven_web::console::overview_html(&status, true).len());
    let (json_median, json_p95, json_bytes) =
        timed(|| serde_json::to_string(&status).map(|s| s.len()).unwrap_or(0));
    println!("services {SERVICES}");
    println!("systems {SYSTEMS}");
    println!("page_median_ms {page_median:.2}");
    println!("page_p95_ms {page_p95:.2}");
    println!("page_bytes {page_bytes}");
    println!("fragment_median_ms {fragment_median:.2}");
    println!("fragment_p95_ms {fragment_p95:.2}");
    println!("fragment_bytes {fragment_bytes}");
    println!("peer_json_median_ms {json_median:.2}");
    println!("peer_json_p95_ms {json_p95:.2}");
    println!("peer_json_bytes {json_bytes}");
}
