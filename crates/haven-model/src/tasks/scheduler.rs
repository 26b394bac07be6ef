//! The scheduler: which jobs are due, which may start now, which wait,
//! which are skipped. In memory and synchronous; the core persists what
//! it decides.
//!
//! Rules:
//! - a task comes due at each scheduled time plus its stagger offset;
//! - after downtime, all missed times of a task make one catch-up run
//!   (not a storm);
//! - a due job waits for capacity (global and per repository limits);
//!   if its window closes first, it is skipped and waits for the next
//!   scheduled time;
//! - a task never has two jobs running, and a time that comes due while
//!   its previous job still runs or waits is skipped (recorded);
//! - transient failures are retried with backoff until the attempts are
//!   used up or the failure is systemic;
//! - while a recovery restores a system, its scheduled jobs (and prunes
//!   of its repository) are skipped, saying why; manual runs are not.

use std::collections::{HashMap, HashSet};

use crate::jobs::NewJob;
use crate::jobs::{Job, Outcome, RetryPolicy, Trigger};
use jiff::{SignedDuration, Timestamp};

use super::JobSpec;
use super::plan::Plan;

/// A job waiting to start.
#[derive(Clone, Debug)]
pub struct Queued {
    /// Its task.
    pub task: String,
    /// The job, with trigger, attempt and due time filled in.
    pub spec: JobSpec,
    /// Not before this time (retries).
    pub not_before: Timestamp,
    /// Higher first.
    pub priority: i64,
}

/// What a tick decided.
#[derive(Debug, Default)]
pub struct Decisions {
    /// Start these now.
    pub start: Vec<JobSpec>,
    /// Record these as skipped, with why.
    pub skip: Vec<(NewJob, String)>,
    /// Remember these scheduled times as dispatched.
    pub marks: Vec<(String, Timestamp)>,
}

/// Limits on jobs running at once.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// In all.
    pub global: usize,
    /// Per repository.
    pub per_repository: usize,
}

/// The scheduler's state.
#[derive(Debug)]
pub struct Scheduler {
    plan: Plan,
    limits: Limits,
    retry: RetryPolicy,
    /// Next scheduled time (without offset) per scheduled task.
    next_slot: HashMap<String, Timestamp>,
    /// Jobs waiting to start.
    queue: Vec<Queued>,
    /// Their tasks.
    queued_tasks: HashSet<String>,
    /// Running jobs: task → repository.
    running: HashMap<String, String>,
    /// What live recoveries hold back.
    holds: crate::recovery::run::Holds,
}

impl Scheduler {
    /// A scheduler for `plan`. `marks` are the last dispatched times per
    /// task (from the store); a task without one starts at its next
    /// scheduled time after `now`.
    pub fn new(
        plan: Plan,
        limits: Limits,
        retry: RetryPolicy,
        marks: &HashMap<String, Timestamp>,
        now: Timestamp,
    ) -> (Self, Vec<(String, Timestamp)>) {
        let mut scheduler = Scheduler {
            plan: Plan::default(),
            limits,
            retry,
            next_slot: HashMap::new(),
            queue: Vec::new(),
            queued_tasks: HashSet::new(),
            running: HashMap::new(),
            holds: crate::recovery::run::Holds::default(),
        };
        let new_marks = scheduler.replace_plan(plan, marks, now);
        (scheduler, new_marks)
    }

    /// Swap in a new plan (catalog reload). Tasks that stay keep their
    /// schedule position; queued jobs of removed tasks are dropped;
    /// running jobs finish. Returns marks for tasks seen for the first
    /// time (their RPO clock starts now; they run at their next time).
    pub fn replace_plan(
        &mut self,
        plan: Plan,
        marks: &HashMap<String, Timestamp>,
        now: Timestamp,
    ) -> Vec<(String, Timestamp)> {
        let mut new_marks = Vec::new();
        let mut next_slot = HashMap::new();
        for (key, task) in &plan.tasks {
            let Some(schedule) = &task.schedule else {
                continue;
            };
            let since = match marks.get(key) {
                Some(mark) => *mark,
                None => {
                    new_marks.push((key.clone(), now - schedule.offset));
                    now - schedule.offset
                }
            };
            if let Some(next) = schedule.next_slot(since) {
                next_slot.insert(key.clone(), next);
            }
        }
        self.queue.retain(|q| plan.tasks.contains_key(&q.task));
        self.queued_tasks = self.queue.iter().map(|q| q.task.clone()).collect();
        self.next_slot = next_slot;
        self.plan = plan;
        new_marks
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    fn is_busy(&self, task: &str) -> bool {
        self.running.contains_key(task) || self.queued_tasks.contains(task)
    }

    fn enqueue(&mut self, task: &str, trigger: Trigger, attempt: u32, due: Timestamp) -> bool {
        let Some(t) = self.plan.tasks.get(task) else {
            return false;
        };
        let mut spec = t.spec.clone();
        spec.record.trigger = trigger;
        spec.record.attempt = attempt;
        spec.record.scheduled_at = due;
        self.queued_tasks.insert(task.to_string());
        self.queue.push(Queued {
            task: task.to_string(),
            spec,
            not_before: due,
            priority: t.priority,
        });
        true
    }

    /// Queue a task now (`haven run`). False when it is already running
    /// or waiting.
    pub fn run_now(&mut self, task: &str, now: Timestamp) -> bool {
        if self.is_busy(task) {
            return false;
        }
        self.enqueue(task, Trigger::Manual, 1, now)
    }

    /// Queue a job again that a dead server was running.
    pub fn recover(&mut self, job: &Job, now: Timestamp) -> bool {
        if self.is_busy(&job.planned.task) {
            return false;
        }
        self.enqueue(
            &job.planned.task,
            Trigger::Recovery,
            job.planned.attempt + 1,
            now,
        )
    }

    /// Decide what happens at `now`.
    pub fn tick(&mut self, now: Timestamp) -> Decisions {
        let mut decisions = Decisions::default();
        // 1. Scheduled times that came due.
        let due: Vec<(String, Timestamp)> = self
            .next_slot
            .iter()
            .filter_map(|(key, slot)| {
                let offset = self.plan.tasks.get(key)?.schedule.as_ref()?.offset;
                (*slot + offset <= now).then(|| (key.clone(), *slot))
            })
            .collect();
        // Tasks of one policy share their times: compute them once per
        // schedule, offset and first due time.
        type Times = (Timestamp, u32, Option<Timestamp>);
        let mut shared: HashMap<(String, SignedDuration, Timestamp), Times> = HashMap::new();
        for (key, first) in due {
            let Some(task) = self.plan.tasks.get(&key) else {
                continue;
            };
            let Some(schedule) = task.schedule.clone() else {
                continue;
            };
            let identity = format!(
                "{}:{}",
                task.spec.record.kind.as_str(),
                task.spec.record.policy.as_deref().unwrap_or(&key)
            );
            // Every time missed up to now collapses into the latest one.
            let (slot, missed, next) = *shared
                .entry((identity, schedule.offset, first))
                .or_insert_with(|| {
                    let until = now - schedule.offset + SignedDuration::from_secs(1);
                    let times = schedule.slots(first, until);
                    let slot = times.last().copied().unwrap_or(first);
                    let missed = times.len().saturating_sub(1) as u32;
                    (slot, missed, schedule.next_slot(slot))
                });
            match next {
                Some(next) => self.next_slot.insert(key.clone(), next),
                None => self.next_slot.remove(&key),
            };
            decisions.marks.push((key.clone(), slot));
            let due_at = slot + schedule.offset;
            // Late by more than a minute: the server was not running.
            let trigger = if missed > 0 || now.duration_since(due_at) > SignedDuration::from_mins(1)
            {
                Trigger::CatchUp
            } else {
                Trigger::Schedule
            };
            if self.is_busy(&key) {
                if let Some(task) = self.plan.tasks.get(&key) {
                    let mut record = task.spec.record.clone();
                    record.trigger = trigger;
                    record.scheduled_at = due_at;
                    decisions.skip.push((
                        record,
                        "the previous run of this task was still running or waiting".into(),
                    ));
                }
                continue;
            }
            self.enqueue(&key, trigger, 1, due_at);
        }
        // 2. Start what may start, best first.
        self.start_ready(now, &mut decisions);
        decisions
    }

    /// Start the queued jobs that may start now (capacity, windows,
    /// holds), best first; the others wait or are skipped.
    fn start_ready(&mut self, now: Timestamp, decisions: &mut Decisions) {
        self.queue.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.spec.record.scheduled_at.cmp(&b.spec.record.scheduled_at))
                .then(a.task.cmp(&b.task))
        });
        let mut per_repo: HashMap<String, usize> = HashMap::new();
        for repo in self.running.values() {
            *per_repo.entry(repo.clone()).or_default() += 1;
        }
        let mut waiting = Vec::new();
        for queued in std::mem::take(&mut self.queue) {
            if queued.not_before > now {
                waiting.push(queued);
                continue;
            }
            let schedule = self
                .plan
                .tasks
                .get(&queued.task)
                .and_then(|t| t.schedule.as_ref());
            // Manual runs are not bound to the window; scheduled ones are.
            let bound = !matches!(queued.spec.record.trigger, Trigger::Manual);
            if let Some(schedule) = schedule.filter(|s| bound && !s.in_window(now)) {
                let message = format!(
                    "could not start inside its window ({}); waits for the next scheduled time",
                    schedule.describe_window()
                );
                self.queued_tasks.remove(&queued.task);
                decisions.skip.push((queued.spec.record.clone(), message));
                continue;
            }
            if let Some(why) = self.held(&queued.spec.record).filter(|_| bound) {
                let message = format!("held: {why}; runs at its next scheduled time");
                self.queued_tasks.remove(&queued.task);
                decisions.skip.push((queued.spec.record.clone(), message));
                continue;
            }
            let repo = queued.spec.work.repository().id.clone();
            let in_repo = per_repo.get(&repo).copied().unwrap_or(0);
            if self.running.len() >= self.limits.global
                || in_repo >= self.limits.per_repository
                || self.running.contains_key(&queued.task)
            {
                waiting.push(queued);
                continue;
            }
            *per_repo.entry(repo.clone()).or_default() += 1;
            self.queued_tasks.remove(&queued.task);
            self.running.insert(queued.task.clone(), repo);
            decisions.start.push(queued.spec);
        }
        self.queue = waiting;
    }

    /// Hold back what live recoveries restore (replacing the holds
    /// before).
    pub fn hold(&mut self, holds: crate::recovery::run::Holds) {
        self.holds = holds;
    }

    /// Why a job is held back, if it is: its system is being restored,
    /// or it prunes a repository a restore reads.
    fn held(&self, record: &NewJob) -> Option<&String> {
        let system = record
            .system
            .as_ref()
            .and_then(|s| self.holds.systems.get(s));
        let prune = (record.kind == crate::jobs::JobKind::Prune)
            .then_some(record.repository.as_ref())
            .flatten()
            .and_then(|r| self.holds.repositories.get(r));
        system.or(prune)
    }

    /// Forget a job that was not started after all.
    pub fn release(&mut self, task: &str) {
        self.running.remove(task);
    }

    /// A job that was to start but could not be recorded as started (the
    /// store failed): it waits again, first in line, as it was.
    pub fn requeue(&mut self, spec: JobSpec, now: Timestamp) {
        let task = spec.record.task.clone();
        self.running.remove(&task);
        let priority = self.plan.tasks.get(&task).map_or(0, |t| t.priority);
        self.queued_tasks.insert(task.clone());
        self.queue.push(Queued {
            task,
            spec,
            not_before: now,
            priority,
        });
    }

    /// A job ended. Queues its follow-ups (after a good end) or a retry
    /// (after a transient failure that is not systemic).
    pub fn finished(&mut self, job: &Job, systemic: bool, now: Timestamp, jitter: f64) {
        self.running.remove(&job.planned.task);
        if job.outcome.is_good() {
            let follow_ups = self
                .plan
                .tasks
                .get(&job.planned.task)
                .map(|t| t.follow_ups.clone())
                .unwrap_or_default();
            for task in follow_ups {
                if !self.is_busy(&task) {
                    self.enqueue(&task, Trigger::FollowUp, 1, now);
                }
            }
            return;
        }
        if job.outcome != Outcome::Failed || systemic {
            return;
        }
        let transient = job.failure.as_ref().is_some_and(|f| f.class.is_transient());
        if !transient {
            return;
        }
        if let Some(delay) = self.retry.delay(job.planned.attempt, jitter)
            && self.enqueue(
                &job.planned.task,
                Trigger::Retry,
                job.planned.attempt + 1,
                now + delay,
            )
            && let Some(last) = self.queue.last_mut()
        {
            // Keep the original due time for the record: the retry's
            // start delay then shows how late the data really is.
            last.spec.record.scheduled_at = job.planned.scheduled_at;
        }
    }
}
