//! The engine runner on real repositories: every kind of job the server
//! plans (backup with hooks, retention, copy, check, prune) through
//! `EngineRunner`, as the server runs them.

use std::time::Duration;

use haven_engine::{InitOptions, KdfParams, Location, Repository};
use haven_model::catalog::{BackupSet, Origin, SecretRef};
use haven_model::jobs::NewJob;
use haven_model::jobs::{FailureClass, JobKind, Outcome, Trigger};
use haven_model::retention::KeepPolicy;
use haven_model::tasks::{JobSpec, RepoTarget, Work};
use haven_ops::jobs::{EngineRunner, Runner};
use jiff::{SignedDuration, Timestamp};

fn repo(dir: &std::path::Path, name: &str, password_file: &std::path::Path) -> RepoTarget {
    let path = dir.join(name);
    Repository::init(
        &Location::parse(&path.display().to_string()).expect("location"),
        b"runner test",
        &InitOptions {
            // Cheap keys: these tests are about jobs, not key strength.
            kdf: KdfParams {
                m_cost: 1024,
                t_cost: 1,
                p_cost: 1,
            },
            ..InitOptions::default()
        },
    )
    .expect("init");
    RepoTarget {
        id: name.into(),
        url: path.display().to_string(),
        password: Some(SecretRef::File(password_file.display().to_string())),
    }
}

fn spec(kind: JobKind, work: Work) -> JobSpec {
    JobSpec {
        record: NewJob {
            kind,
            task: format!("{}:sys/files", kind.as_str()),
            system: Some("sys".into()),
            backup_set: Some("files".into()),
            policy: Some("p".into()),
            repository: Some(work.repository().id.clone()),
            trigger: Trigger::Manual,
            attempt: 1,
            scheduled_at: Timestamp::now(),
        },
        work,
    }
}

fn backup(set_dir: &std::path::Path, target: &RepoTarget, post_hook: Option<String>) -> JobSpec {
    spec(
        JobKind::Backup,
        Work::Backup {
            set: Box::new(BackupSet {
                name: "files".into(),
                paths: vec![set_dir.display().to_string()],
                excludes: Vec::new(),
                command: None,
                env: Vec::new(),
                restore_command: None,
                recover_command: None,
                start: None,
                at: Origin::default(),
            }),
            repository: target.clone(),
            pre_hook: None,
            post_hook,
            hook_env: Vec::new(),
            hook_timeout: Duration::from_secs(30),
            immutability_days: None,
        },
    )
}

#[test]
fn every_job_kind_runs_on_real_repositories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let password = dir.path().join("password");
    std::fs::write(&password, "runner test\n").expect("password");
    let primary = repo(dir.path(), "primary", &password);
    let second = repo(dir.path(), "second", &password);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let runner = EngineRunner;
    for round in 0..3 {
        std::fs::write(
            data.join(format!("file-{round}.txt")),
            format!("round {round}\n"),
        )
        .expect("write");
        let end = runner.run(&backup(&data, &primary, None));
        assert_eq!(end.outcome, Some(Outcome::Success), "{:?}", end.message);
        assert_eq!(end.stats.files_new, 1);
        // The repository's size, known from the backup without a second
        // index read: exactly the pack files on disk.
        assert_eq!(
            end.stats.repository_bytes,
            Some(pack_bytes(&dir.path().join("primary")))
        );
        assert!(end.snapshot_id.is_some());
        assert!(end.log.contains("backing up"), "{}", end.log);
    }
    // A post-hook that fails after a good backup: partial, with why.
    let end = runner.run(&backup(&data, &primary, Some("exit 3".into())));
    assert_eq!(end.outcome, Some(Outcome::Partial));
    assert!(
        end.message
            .as_deref()
            .unwrap_or("")
            .contains("the post-hook failed")
    );

    let copy = runner.run(&spec(
        JobKind::Copy,
        Work::Copy {
            from: primary.clone(),
            to: second.clone(),
        },
    ));
    assert_eq!(copy.outcome, Some(Outcome::Success), "{:?}", copy.message);
    assert_eq!(
        copy.message.as_deref(),
        Some("copied 4 snapshots to second (0 already there)")
    );
    assert_eq!(
        copy.stats.repository_bytes,
        Some(pack_bytes(&dir.path().join("second")))
    );

    let keep_two = KeepPolicy {
        last: 2,
        ..KeepPolicy::default()
    };
    let forget = runner.run(&spec(
        JobKind::Forget,
        Work::Forget {
            keep: keep_two,
            repository: primary.clone(),
        },
    ));
    assert_eq!(
        forget.message.as_deref(),
        Some("kept 2, removed 2 snapshots")
    );

    let prune = runner.run(&spec(
        JobKind::Prune,
        Work::Prune {
            repository: primary.clone(),
            grace: SignedDuration::from_hours(1),
        },
    ));
    assert_eq!(prune.outcome, Some(Outcome::Success), "{:?}", prune.message);
    assert!(prune.stats.repository_bytes.is_some());

    let check = runner.run(&spec(
        JobKind::Check,
        Work::Check {
            repository: primary.clone(),
            read_data_percent: 100.0,
        },
    ));
    assert_eq!(check.outcome, Some(Outcome::Success), "{:?}", check.message);

    // A damaged pack: the check fails as a data-integrity problem.
    let pack = walkdir(&dir.path().join("primary/data"));
    let mut bytes = std::fs::read(&pack).expect("read pack");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&pack, bytes).expect("damage");
    let check = runner.run(&spec(
        JobKind::Check,
        Work::Check {
            repository: primary.clone(),
            read_data_percent: 100.0,
        },
    ));
    assert_eq!(check.outcome, Some(Outcome::Failed));
    assert_eq!(
        check.failure.as_ref().map(|f| f.class),
        Some(FailureClass::DataIntegrity)
    );

    // A missing password file: an authentication failure, nothing run.
    let mut no_password = second.clone();
    no_password.password = Some(SecretRef::File("/nonexistent/password".into()));
    let end = runner.run(&backup(&data, &no_password, None));
    assert_eq!(end.outcome, Some(Outcome::Failed));
    let failure = end.failure.expect("classified");
    assert_eq!(
        (failure.class, failure.detail.as_str()),
        (FailureClass::Authentication, "credentials-missing")
    );
    assert!(!end.message.unwrap_or_default().contains("runner test"));
}

/// The first file below `dir` (a pack).
/// Every file under `dir`.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn walkdir(dir: &std::path::Path) -> std::path::PathBuf {
    files(dir)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no pack under {}", dir.display()))
}

/// Bytes of the pack files on disk: what `repository_bytes` measures.
fn pack_bytes(repo: &std::path::Path) -> u64 {
    files(&repo.join("data"))
        .iter()
        .map(|f| std::fs::metadata(f).expect("size").len())
        .sum()
}
