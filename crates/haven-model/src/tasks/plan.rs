//! From the catalog to tasks: what the server schedules.
//!
//! - one backup task per backup set of a system with a policy
//!   (`backup:SYSTEM/SET`), on the policy's schedule, time zone, window
//!   and a per-set stagger offset;
//! - after each good backup: retention (`forget:SYSTEM/SET@REPO`) and a
//!   copy to each secondary repository (`copy:SYSTEM/SET>REPO`), which is
//!   itself followed by retention there;
//! - one integrity check per policy that asks for one (`check:POLICY`);
//! - one prune per repository in use (`prune:REPO`), on the instance's
//!   prune schedule (UTC).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::alert_rules::SetupProblem;
use crate::catalog::schedule::{next_start, stagger_offset};
use crate::catalog::{BackupSet, Catalog, CronSchedule, Policy, System, Window};
use crate::jobs::NewJob;
use crate::jobs::{JobKind, Trigger};
use crate::retention::KeepPolicy;
use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::{JobSpec, RepoTarget, Work};

/// When a task runs by itself.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// The cron expression.
    pub cron: Cron,
    /// Its time zone.
    pub tz: TimeZone,
    /// Local hours in which the job may start.
    pub window: Option<Window>,
    /// This task's stagger offset after each scheduled time.
    pub offset: SignedDuration,
}

impl Schedule {
    /// The first scheduled time strictly after `after` (without offset).
    pub fn next_slot(&self, after: Timestamp) -> Option<Timestamp> {
        next_start(&self.cron, &self.tz, self.window, after)
    }

    /// Every scheduled time in `[from, until)` (without offset).
    pub fn slots(&self, from: Timestamp, until: Timestamp) -> Vec<Timestamp> {
        crate::catalog::schedule::allowed_starts(&self.cron, &self.tz, self.window, from, until)
    }

    /// Is `at` inside the window?
    pub fn in_window(&self, at: Timestamp) -> bool {
        crate::catalog::schedule::in_window(self.window, self.tz.to_datetime(at).time())
    }

    /// The window, for messages (`00:00-05:00 Europe/Berlin`).
    pub fn describe_window(&self) -> String {
        match self.window {
            Some(w) => format!(
                "{}-{} {}",
                w.start.strftime("%H:%M"),
                w.end.strftime("%H:%M"),
                self.tz.iana_name().unwrap_or("UTC")
            ),
            None => "any time".into(),
        }
    }
}

/// One thing the server does, by itself or after another task.
#[derive(Clone, Debug)]
pub struct Task {
    /// Its key (also the store's task).
    pub key: String,
    /// The job it runs (trigger, attempt and due time filled in when
    /// it is queued).
    pub spec: JobSpec,
    /// Its own schedule, if any.
    pub schedule: Option<Schedule>,
    /// Tasks queued after it ends well.
    pub follow_ups: Vec<String>,
    /// Higher runs first when jobs wait for capacity.
    pub priority: i64,
    /// A fingerprint of its configuration (a change lifts a systemic
    /// verdict).
    pub config: String,
}

/// Every task of a catalog, by key.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Tasks by key.
    pub tasks: BTreeMap<String, Task>,
}

fn fingerprint(parts: &[&dyn erased::Json]) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(part.json().as_bytes());
        hasher.update(b"\0");
    }
    hasher.finalize().to_hex()[..16].to_string()
}

mod erased {
    /// Anything that serialises, as JSON text (for fingerprints).
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

fn keep_policy(policy: &Policy) -> KeepPolicy {
    let r = &policy.retention;
    KeepPolicy {
        last: r.keep_last.unwrap_or(0),
        hourly: r.keep_hourly.unwrap_or(0),
        daily: r.keep_daily.unwrap_or(0),
        weekly: r.keep_weekly.unwrap_or(0),
        monthly: r.keep_monthly.unwrap_or(0),
        yearly: r.keep_yearly.unwrap_or(0),
        // A legal minimum: nothing younger is removed.
        within: r
            .min_days
            .as_ref()
            .map(|d| SignedDuration::from_hours(24 * i64::from(d.value))),
    }
}

fn record(kind: JobKind, task: &str) -> NewJob {
    NewJob {
        kind,
        task: task.to_string(),
        system: None,
        backup_set: None,
        policy: None,
        repository: None,
        trigger: Trigger::Schedule,
        attempt: 1,
        scheduled_at: Timestamp::UNIX_EPOCH,
    }
}

/// A problem that keeps a task from being planned (the catalog check
/// reports these as errors first; they can only appear here when a
/// catalog with errors is planned anyway). The server raises a `setup`
/// alert for each.
pub type PlanProblem = SetupProblem;

/// The instance's prune schedule (UTC) and grace period (settings).
#[derive(Clone, Debug)]
pub struct PruneSettings {
    /// When each repository in use is pruned.
    pub schedule: CronSchedule,
    /// Between marking data and deleting it.
    pub grace: SignedDuration,
}

/// Every task of `catalog`, and what could not be planned.
pub fn plan(catalog: &Catalog, prune: &PruneSettings) -> (Plan, Vec<PlanProblem>) {
    let mut planner = Planner::new(catalog);
    for system in &catalog.systems {
        planner.system(system);
    }
    planner.checks();
    planner.prunes(prune);
    planner.drills(catalog);
    (planner.plan, planner.problems)
}

/// A plan under construction.
struct Planner<'a> {
    repos: BTreeMap<&'a str, RepoTarget>,
    policies: BTreeMap<&'a str, &'a Policy>,
    /// Repositories and policies some system uses (checks and prunes
    /// are planned for those only).
    used_repos: BTreeMap<String, RepoTarget>,
    used_policies: BTreeMap<&'a str, &'a Policy>,
    plan: Plan,
    problems: Vec<PlanProblem>,
}

/// A backup set's context: its system, policy, primary repository and
/// the policy's schedule.
struct SetContext<'a> {
    system: &'a str,
    policy: &'a Policy,
    primary: RepoTarget,
    cron: Cron,
    tz: TimeZone,
}

impl<'a> Planner<'a> {
    fn new(catalog: &'a Catalog) -> Self {
        let repos = catalog
            .repositories
            .iter()
            .map(|r| (r.id.value.as_str(), RepoTarget::of(r)))
            .collect();
        let policies = catalog
            .policies
            .iter()
            .map(|p| (p.id.value.as_str(), p))
            .collect();
        Planner {
            repos,
            policies,
            used_repos: BTreeMap::new(),
            used_policies: BTreeMap::new(),
            plan: Plan::default(),
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, key: String, system: Option<&str>, message: String) {
        self.problems.push(SetupProblem {
            key,
            system: system.map(String::from),
            message,
        });
    }

    fn insert(&mut self, task: Task) -> String {
        let key = task.key.clone();
        self.plan.tasks.insert(key.clone(), task);
        key
    }

    /// A system's backup sets, with their retention and copies.
    fn system(&mut self, system: &'a System) {
        let sys = system.id.value.as_str();
        let Some(policy_id) = &system.policy else {
            if system.holds_data() || !system.backup_sets.is_empty() {
                self.problem(
                    format!("system:{sys}"),
                    Some(sys),
                    format!(
                        "system {sys} ({}) holds data but has no policy: it is not backed up. Give it `policy = \"…\"` and a backup set",
                        system.kind.value
                    ),
                );
            }
            return;
        };
        let Some(policy) = self.policies.get(policy_id.value.as_str()).copied() else {
            self.problem(
                format!("system:{sys}"),
                Some(sys),
                format!(
                    "system {sys} is not backed up: its policy {} does not exist",
                    policy_id.value
                ),
            );
            return;
        };
        let Some(primary) = self.repos.get(policy.repository.value.as_str()).cloned() else {
            self.problem(
                format!("system:{sys}"),
                Some(sys),
                format!(
                    "system {sys} is not backed up: repository {} of policy {} does not exist",
                    policy.repository.value, policy.id.value
                ),
            );
            return;
        };
        if system.backup_sets.is_empty() && system.holds_data() {
            self.problem(
                format!("system:{sys}"),
                Some(sys),
                format!("system {sys} has policy {} but no backup set: nothing is backed up. Add a [[system.backup_set]] with paths or a dump command", policy.id.value),
            );
        }
        let cron = policy.schedule.value.cron().clone();
        let tz = policy.timezone.value.tz().clone();
        self.used_policies.insert(&policy.id.value, policy);
        self.used_repos.insert(primary.id.clone(), primary.clone());
        let context = SetContext {
            system: sys,
            policy,
            primary,
            cron,
            tz,
        };
        for set in &system.backup_sets {
            self.backup_set(&context, set);
        }
    }

    /// One set: retention after it (in the primary and each copy
    /// target), a copy to each secondary repository, and the backup.
    fn backup_set(&mut self, c: &SetContext<'a>, set: &BackupSet) {
        let policy = c.policy;
        let base = format!("{}/{}", c.system, set.name);
        let record_for = |kind: JobKind, key: &str, repo: &RepoTarget| {
            let mut r = record(kind, key);
            r.system = Some(c.system.to_string());
            r.backup_set = Some(set.name.to_string());
            r.policy = Some(policy.id.value.to_string());
            r.repository = Some(repo.id.clone());
            r
        };
        let config = fingerprint(&[set, policy, &c.primary.url]);
        let task = |key: String, record: NewJob, work: Work, follow_ups: Vec<String>| Task {
            key,
            spec: JobSpec { record, work },
            schedule: None,
            follow_ups,
            priority: policy.priority.unwrap_or(0),
            config: config.clone(),
        };
        let keep = keep_policy(policy);
        let forget_in = |planner: &mut Self, repo: &RepoTarget| {
            let key = format!("forget:{base}@{}", repo.id);
            let work = Work::Forget {
                keep: keep.clone(),
                repository: repo.clone(),
            };
            planner.insert(task(
                key.clone(),
                record_for(JobKind::Forget, &key, repo),
                work,
                Vec::new(),
            ))
        };
        let mut follow_ups = Vec::new();
        // Retention task per copy target, by repository id.
        let mut forgets: BTreeMap<String, String> = BTreeMap::new();
        if !keep.is_empty() {
            follow_ups.push(forget_in(self, &c.primary));
            for copy in &policy.copies {
                if let Some(target) = self.repos.get(copy.value.as_str()).cloned() {
                    forgets.insert(target.id.clone(), forget_in(self, &target));
                }
            }
        }
        for copy in &policy.copies {
            let Some(target) = self.repos.get(copy.value.as_str()).cloned() else {
                self.problem(
                    format!("copy:{base}>{}", copy.value),
                    Some(c.system),
                    format!(
                        "{base} is not copied to {}: policy {} names it as a copy target and it does not exist",
                        copy.value, policy.id.value
                    ),
                );
                continue;
            };
            self.used_repos.insert(target.id.clone(), target.clone());
            let key = format!("copy:{base}>{}", target.id);
            let after_copy = forgets.get(&target.id).cloned().into_iter().collect();
            let work = Work::Copy {
                from: c.primary.clone(),
                to: target.clone(),
            };
            let record = record_for(JobKind::Copy, &key, &c.primary);
            follow_ups.push(self.insert(task(key, record, work, after_copy)));
        }
        let key = format!("backup:{base}");
        let work = Work::Backup {
            set: Box::new(set.clone()),
            repository: c.primary.clone(),
            pre_hook: policy.pre_hook.clone(),
            post_hook: policy.post_hook.clone(),
            hook_env: policy.hook_env.clone(),
            hook_timeout: policy
                .max_duration
                .as_ref()
                .map_or(Duration::from_secs(3600), |d| d.value.unsigned_abs()),
            immutability_days: policy.immutability_days.as_ref().map(|d| d.value),
        };
        let mut backup = task(
            key.clone(),
            record_for(JobKind::Backup, &key, &c.primary),
            work,
            follow_ups,
        );
        backup.schedule = Some(Schedule {
            cron: c.cron.clone(),
            tz: c.tz.clone(),
            window: policy.window.as_ref().map(|w| w.value),
            offset: stagger_offset(&base, policy.stagger),
        });
        self.insert(backup);
    }

    /// One integrity check per used policy that asks for one.
    fn checks(&mut self) {
        let policies: Vec<&Policy> = self.used_policies.values().copied().collect();
        for policy in policies {
            let Some(check) = &policy.integrity_check else {
                continue;
            };
            let Some(repo) = self.repos.get(policy.repository.value.as_str()).cloned() else {
                continue;
            };
            let cron = check.schedule.value.cron().clone();
            let tz = policy.timezone.value.tz().clone();
            let key = format!("check:{}", policy.id.value);
            let mut rec = record(JobKind::Check, &key);
            rec.policy = Some(policy.id.value.to_string());
            rec.repository = Some(repo.id.clone());
            self.insert(Task {
                key,
                spec: JobSpec {
                    record: rec,
                    work: Work::Check {
                        repository: repo.clone(),
                        read_data_percent: check.read_data_percent,
                    },
                },
                schedule: Some(Schedule {
                    cron,
                    tz,
                    window: None,
                    offset: SignedDuration::ZERO,
                }),
                follow_ups: Vec::new(),
                priority: -10,
                config: fingerprint(&[check, &repo.url]),
            });
        }
    }

    /// One prune per used repository, on the instance's schedule (UTC).
    fn prunes(&mut self, prune: &PruneSettings) {
        let cron = prune.schedule.cron();
        let repos: Vec<RepoTarget> = self.used_repos.values().cloned().collect();
        for repo in repos {
            let key = format!("prune:{}", repo.id);
            let mut rec = record(JobKind::Prune, &key);
            rec.repository = Some(repo.id.clone());
            self.insert(Task {
                key: key.clone(),
                spec: JobSpec {
                    record: rec,
                    work: Work::Prune {
                        repository: repo.clone(),
                        grace: prune.grace,
                    },
                },
                schedule: Some(Schedule {
                    cron: cron.clone(),
                    tz: TimeZone::UTC,
                    window: None,
                    offset: stagger_offset(&key, Some(SignedDuration::from_mins(30))),
                }),
                follow_ups: Vec::new(),
                priority: -20,
                config: fingerprint(&[&repo.url]),
            });
        }
    }
}

impl Planner<'_> {
    /// One drill per backed-up system a `[[drill]]` entry covers, on that
    /// entry's schedule and window, after the backups when both wait.
    fn drills(&mut self, catalog: &Catalog) {
        for system in &catalog.systems {
            let sys = system.id.value.as_str();
            let Some(entry) = catalog.drill_schedule_of_system(sys) else {
                continue;
            };
            let repo = catalog
                .policy_of(system)
                .and_then(|p| self.repos.get(p.repository.value.as_str()));
            let (Some(repo), false) = (repo.cloned(), system.backup_sets.is_empty()) else {
                // Not backed up (a setup problem already says so).
                continue;
            };
            let key = format!("drill:{sys}");
            let objectives = crate::drills::objectives_of(catalog, sys);
            let mut rec = record(JobKind::Drill, &key);
            rec.system = Some(sys.to_string());
            rec.repository = Some(repo.id.clone());
            let config = fingerprint(&[
                &crate::drills::system_config(system),
                &objectives,
                &repo.url,
            ]);
            self.insert(Task {
                key,
                spec: JobSpec {
                    record: rec,
                    work: Work::Drill {
                        system: Box::new(system.clone()),
                        repository: repo,
                        objectives,
                    },
                },
                schedule: Some(Schedule {
                    cron: entry.schedule.value.cron().clone(),
                    tz: entry.timezone.value.tz().clone(),
                    window: entry.window.as_ref().map(|w| w.value),
                    offset: SignedDuration::ZERO,
                }),
                follow_ups: Vec::new(),
                priority: -30,
                config,
            });
        }
    }
}

impl Plan {
    /// The backup tasks of one system.
    pub fn backups_of(&self, system: &str) -> Vec<&Task> {
        self.tasks
            .values()
            .filter(|t| {
                t.spec.record.kind == JobKind::Backup
                    && t.spec.record.system.as_deref() == Some(system)
            })
            .collect()
    }
}
