//! Scheduled drills as jobs: the server's runner runs `drill:SYSTEM`
//! tasks here and everything else through the engine runner. The drill
//! travels back with the job's end, so the server records both together
//! and judges its alerts.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use haven_model::catalog::System;
use haven_model::drills::{DRILL_FAILED, Drill, Objectives, StepKind, Verdict};
use haven_model::jobs::{Failure, FailureClass, JobStats, Layer, Outcome, log_excerpt};
use haven_model::tasks::{JobSpec, RepoTarget, Work};
use haven_store::JobEnd;

use super::{DrillError, DrillRequest, run_resolved};
use crate::clock::Clock;
use crate::jobs::classify::classify;
use crate::jobs::{Runner, open_repository};

/// Runs drill jobs itself, and every other job through `inner`.
pub struct DrillingRunner {
    inner: Arc<dyn Runner>,
    data_dir: PathBuf,
    clock: Arc<dyn Clock>,
}

impl DrillingRunner {
    /// Sandboxes go under `data_dir`; drills are timed by `clock`.
    pub fn new(inner: Arc<dyn Runner>, data_dir: PathBuf, clock: Arc<dyn Clock>) -> Self {
        DrillingRunner {
            inner,
            data_dir,
            clock,
        }
    }

    fn drill(
        &self,
        spec: &JobSpec,
        system: &System,
        repository: &RepoTarget,
        objectives: Objectives,
    ) -> JobEnd {
        let request = DrillRequest {
            system: system.id.value.to_string(),
            snapshot: None,
            at: None,
            keep: false,
            by: format!("schedule ({})", spec.record.task),
        };
        let ran = open_repository(repository)
            .map_err(DrillError::Repository)
            .and_then(|repo| {
                run_resolved(
                    system,
                    &repo,
                    objectives,
                    &self.data_dir,
                    &request,
                    self.clock.now(),
                )
            });
        match ran {
            Ok(outcome) => drill_end(outcome.drill),
            Err(e) => could_not_start(&e),
        }
    }
}

impl Runner for DrillingRunner {
    fn run(&self, spec: &JobSpec) -> JobEnd {
        match &spec.work {
            Work::Drill {
                system,
                repository,
                objectives,
            } => self.drill(spec, system, repository, *objectives),
            _ => self.inner.run(spec),
        }
    }
}

/// A drill that ran: the job fails with it (not retried: a failed drill
/// is a finding, not a transient fault).
fn drill_end(drill: Drill) -> JobEnd {
    let mut log = String::new();
    for step in &drill.steps {
        let mark = if step.ok { "ok" } else { "FAILED" };
        let _ = writeln!(log, "{mark} {}: {}", step.name, step.detail);
    }
    let passed = drill.verdict == Verdict::Pass;
    let message = if passed {
        format!(
            "drill passed: measured RTO {}, achieved RPO {}",
            haven_model::catalog::duration::format_duration(drill.measured_rto),
            haven_model::catalog::duration::format_duration(drill.achieved_rpo)
        )
    } else {
        format!("drill failed: {}", drill.reasons.join("; "))
    };
    let _ = writeln!(log, "{message}");
    let restore_failed = drill
        .steps
        .iter()
        .any(|s| !s.ok && s.kind == StepKind::Restore);
    JobEnd {
        ended_at: None,
        outcome: Some(if passed {
            Outcome::Success
        } else {
            Outcome::Failed
        }),
        stats: JobStats {
            bytes_total: drill.bytes,
            ..JobStats::default()
        },
        snapshot_id: drill.snapshot_id.split(',').next().map(String::from),
        failure: (!passed).then(|| Failure {
            class: if restore_failed {
                FailureClass::DataIntegrity
            } else {
                FailureClass::ConfigurationDrift
            },
            detail: DRILL_FAILED.into(),
            layer: if restore_failed {
                Layer::Storage
            } else {
                Layer::Compute
            },
        }),
        message: Some(message),
        log: log_excerpt(&log),
        drill: Some(Box::new(drill)),
    }
}

/// A drill that could not start (no snapshot, no room, the repository
/// unreachable): an ordinary failed job, retried when transient.
fn could_not_start(error: &DrillError) -> JobEnd {
    let message = format!("the drill could not start: {error}");
    let failure = match error {
        DrillError::Repository(e) => classify(e),
        DrillError::Sandbox(detail) => Failure {
            class: FailureClass::Storage,
            detail: detail.clone(),
            layer: Layer::Storage,
        },
        other => Failure {
            class: FailureClass::ConfigurationDrift,
            detail: other.to_string(),
            layer: Layer::Compute,
        },
    };
    JobEnd {
        ended_at: None,
        outcome: Some(Outcome::Failed),
        stats: JobStats::default(),
        snapshot_id: None,
        failure: Some(failure),
        log: log_excerpt(&format!("error: {message}\n")),
        message: Some(message),
        drill: None,
    }
}
