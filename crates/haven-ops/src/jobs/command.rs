//! Running shell commands: hooks with a timeout and captured output, and
//! dump commands whose stdout is streamed into a backup.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt;

/// Lines of a command's output kept for the log and for messages.
const MAX_LOGGED_LINES: usize = 200;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The command could not be started.
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The command exited unsuccessfully.
    #[error("`{command}` failed with {status}{}", last_line(.output))]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// The last lines it printed.
        output: Vec<String>,
    },
    /// The command ran longer than allowed and was killed.
    #[error("`{command}` did not finish within {timeout:?} and was killed")]
    TimedOut {
        /// The command line.
        command: String,
        /// The limit.
        timeout: Duration,
    },
    /// Waiting for the command failed.
    #[error("waiting for `{command}`: {source}")]
    Wait {
        /// The command line.
        command: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn last_line(output: &[String]) -> String {
    output.last().map(|l| format!(": {l}")).unwrap_or_default()
}

/// A shell command line, run with `sh -c` in its own process group (so a
/// timeout kills everything it started).
fn shell(command: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(command).process_group(0);
    cmd
}

/// Lines a command printed, filled by a thread that logs them as they come.
struct Captured {
    lines: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Captured {
    /// The last lines, once the stream ended or `wait` passed: a command
    /// that left a background child holding the pipe must not hang us.
    fn take(self, wait: Duration) -> Vec<String> {
        let _ = self.done.recv_timeout(wait);
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.iter().cloned().collect()
    }
}

/// Log each line of `stream` under `label` from a thread; keep the last lines.
fn drain_to_log(stream: impl Read + Send + 'static, label: String) -> Option<Captured> {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
    let (done_tx, done) = std::sync::mpsc::channel();
    let kept = lines.clone();
    std::thread::Builder::new()
        .name("haven-cmd-output".into())
        .spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                tracing::info!(target: "haven::command", "{label}: {line}");
                let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
                if kept.len() == MAX_LOGGED_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
            let _ = done_tx.send(());
        })
        .ok()?;
    Some(Captured { lines, done })
}

/// How long to wait for output after a command exited.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

fn kill_group(child: &Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// The process groups of the commands running now (dumps, hooks; each
/// command leads its own group) with the job that started them, so a
/// server that gives up on jobs at shutdown kills what they started
/// ([`kill_commands_of`]).
static RUNNING: std::sync::Mutex<std::collections::BTreeMap<u32, Option<i64>>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

thread_local! {
    /// The job this thread works for ([`for_job`]).
    static JOB: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
}

fn running() -> std::sync::MutexGuard<'static, std::collections::BTreeMap<u32, Option<i64>>> {
    RUNNING.lock().unwrap_or_else(|p| p.into_inner())
}

fn track(child: &Child) {
    running().insert(child.id(), JOB.get());
}

/// Run `work` on this thread on behalf of job `id`: the commands it
/// starts are that job's.
pub fn for_job<T>(id: i64, work: impl FnOnce() -> T) -> T {
    let before = JOB.replace(Some(id));
    let result = work();
    JOB.set(before);
    result
}

/// Reap a tracked command, then forget its group (in that order: until
/// it is reaped, its id cannot be reused).
fn wait_untracked(child: &mut Child) -> std::io::Result<ExitStatus> {
    let status = child.wait();
    running().remove(&child.id());
    status
}

/// Kill the process groups of the commands these jobs started (at
/// shutdown, once they are given up); returns how many.
pub fn kill_commands_of(jobs: &[i64]) -> usize {
    let groups = running();
    let mut killed = 0;
    for (id, _) in groups
        .iter()
        .filter(|(_, job)| job.is_some_and(|j| jobs.contains(&j)))
    {
        if let Some(pid) = rustix::process::Pid::from_raw(*id as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            killed += 1;
        }
    }
    killed
}

/// Run `command` with extra environment, logging its output, and wait at
/// most `timeout`. Returns the last lines of output on success.
pub fn run_with_timeout(
    label: &str,
    command: &str,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Vec<String>, CommandError> {
    let mut cmd = shell(command);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .envs(env.iter().map(|(k, v)| (k, v)));
    let spawn_error = |source| CommandError::Spawn {
        command: command.to_string(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_error)?;
    track(&child);
    let stdout = child
        .stdout
        .take()
        .and_then(|s| drain_to_log(s, label.to_string()));
    let stderr = child
        .stderr
        .take()
        .and_then(|s| drain_to_log(s, label.to_string()));
    let waited = child.wait_timeout(timeout);
    let status = match waited {
        Ok(Some(status)) => {
            running().remove(&child.id());
            status
        }
        Ok(None) => {
            kill_group(&child);
            let _ = wait_untracked(&mut child);
            return Err(CommandError::TimedOut {
                command: command.to_string(),
                timeout,
            });
        }
        Err(source) => {
            kill_group(&child);
            let _ = wait_untracked(&mut child);
            return Err(CommandError::Wait {
                command: command.to_string(),
                source,
            });
        }
    };
    let mut output = Vec::new();
    for captured in [stdout, stderr].into_iter().flatten() {
        output.extend(captured.take(OUTPUT_GRACE));
    }
    if status.success() {
        Ok(output)
    } else {
        Err(CommandError::Failed {
            command: command.to_string(),
            status,
            output,
        })
    }
}

/// A command left running (a service a drill starts in its sandbox):
/// its whole process group is killed when this is dropped.
pub struct Background {
    child: Child,
    output: Vec<Captured>,
}

impl Background {
    /// Start `command` (through `sh -c`) with extra environment; what it
    /// prints goes to the log under `label`.
    pub fn spawn(
        label: &str,
        command: &str,
        env: &[(String, String)],
    ) -> Result<Self, CommandError> {
        let mut cmd = shell(command);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .envs(env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.spawn().map_err(|source| CommandError::Spawn {
            command: command.to_string(),
            source,
        })?;
        track(&child);
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let output = [
            stdout.and_then(|s| drain_to_log(s, label.to_string())),
            stderr.and_then(|s| drain_to_log(s, label.to_string())),
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok(Background { child, output })
    }

    /// Its exit status and last lines, if it has ended.
    pub fn exited(&mut self) -> Option<(ExitStatus, Vec<String>)> {
        let status = self.child.try_wait().ok().flatten()?;
        let lines = std::mem::take(&mut self.output)
            .into_iter()
            .flat_map(|c| c.take(OUTPUT_GRACE))
            .collect();
        Some((status, lines))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        kill_group(&self.child);
        let _ = wait_untracked(&mut self.child);
    }
}

/// The stdout of a running command, as a reader. At the end of the stream
/// it waits for the command: a non-zero exit turns the end of the stream
/// into an error, so a failed dump can never be saved as complete.
pub struct CommandStream {
    command: String,
    child: Child,
    stdout: ChildStdout,
    stderr: Option<Captured>,
    finished: bool,
}

impl CommandStream {
    /// Start `command` (through `sh -c`) with extra environment; its
    /// stderr goes to the log.
    pub fn spawn(command: &str, env: &[(String, String)]) -> Result<Self, CommandError> {
        let mut cmd = shell(command);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .envs(env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.spawn().map_err(|source| CommandError::Spawn {
            command: command.to_string(),
            source,
        })?;
        track(&child);
        let stdout = child.stdout.take().ok_or_else(|| CommandError::Spawn {
            command: command.to_string(),
            source: std::io::Error::other("no stdout pipe"),
        })?;
        let stderr = child
            .stderr
            .take()
            .and_then(|s| drain_to_log(s, "stdin-from".into()));
        Ok(CommandStream {
            command: command.to_string(),
            child,
            stdout,
            stderr,
            finished: false,
        })
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.finished = true;
        let status = wait_untracked(&mut self.child)?;
        let output = self
            .stderr
            .take()
            .map(|c| c.take(OUTPUT_GRACE))
            .unwrap_or_default();
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(CommandError::Failed {
                command: self.command.clone(),
                status,
                output,
            }))
        }
    }
}

impl Read for CommandStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.finished {
            return Ok(0);
        }
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.finish()?;
        }
        Ok(n)
    }
}

impl Drop for CommandStream {
    fn drop(&mut self) {
        // A backup that stopped early must not leave the dump running.
        if !self.finished {
            kill_group(&self.child);
            let _ = wait_untracked(&mut self.child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_kept_and_failures_carry_the_last_line() {
        let out = run_with_timeout("t", "echo one; echo two >&2", &[], Duration::from_secs(10))
            .expect("runs");
        assert!(out.contains(&"one".to_string()) && out.contains(&"two".to_string()));
        let err = run_with_timeout("t", "echo broken >&2; exit 4", &[], Duration::from_secs(10))
            .expect_err("fails");
        let text = err.to_string();
        assert!(
            text.contains("exit status: 4") && text.contains("broken"),
            "{text}"
        );
    }

    #[test]
    fn a_background_child_holding_the_pipe_does_not_hang_the_hook() {
        let started = std::time::Instant::now();
        let out = run_with_timeout("t", "sleep 30 & echo $!", &[], Duration::from_secs(20))
            .expect("the hook itself succeeded");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "must not wait for the daemon"
        );
        // Clean up the "daemon" the hook left behind.
        let pid = out
            .first()
            .and_then(|p| p.parse::<i32>().ok())
            .expect("pid printed");
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }

    #[test]
    fn environment_reaches_the_command() {
        let out = run_with_timeout(
            "t",
            "echo \"status=$HAVEN_BACKUP_STATUS\"",
            &[("HAVEN_BACKUP_STATUS".into(), "failed".into())],
            Duration::from_secs(10),
        )
        .expect("runs");
        assert_eq!(out, vec!["status=failed".to_string()]);
    }

    /// Is `pid` gone (exited, or a zombie waiting to be reaped)?
    fn process_gone(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        }
    }

    #[test]
    fn a_command_over_its_timeout_is_killed_with_its_children() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("grandchild.pid");
        // A grandchild that would run for a minute; its pid is recorded.
        let cmd = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
        let started = std::time::Instant::now();
        let err =
            run_with_timeout("t", &cmd, &[], Duration::from_millis(300)).expect_err("times out");
        assert!(matches!(err, CommandError::TimedOut { .. }), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the timeout must not wait for children"
        );
        let pid = std::fs::read_to_string(&pid_file).expect("pid recorded");
        let pid = pid.trim();
        // SIGKILL is delivered asynchronously: allow the kernel a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !process_gone(pid) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(
            process_gone(pid),
            "the hook's child {pid} must be killed with it"
        );
    }

    #[test]
    fn the_commands_of_a_job_given_up_are_killed_with_their_children() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("grandchild.pid");
        // A dump that would run for a minute, with a child of its own.
        let cmd = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
        let mut stream = for_job(41, || CommandStream::spawn(&cmd, &[])).expect("spawn");
        let other = for_job(42, || CommandStream::spawn("sleep 60", &[])).expect("spawn");
        // The file exists (empty) before the shell writes the pid into it.
        let recorded = || {
            std::fs::read_to_string(&pid_file)
                .ok()
                .filter(|t| t.trim().parse::<u32>().is_ok())
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while recorded().is_none() && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let grandchild = recorded().expect("pid recorded");
        assert_eq!(kill_commands_of(&[41]), 1, "only job 41's command");
        let mut sink = Vec::new();
        assert!(
            stream.read_to_end(&mut sink).is_err(),
            "a killed dump is a failed dump"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !process_gone(grandchild.trim()) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(process_gone(grandchild.trim()), "its child died with it");
        assert!(
            !process_gone(&other.child.id().to_string()),
            "job 42's command runs on"
        );
        drop(other);
    }

    #[test]
    fn a_stream_reports_the_commands_failure_at_its_end() {
        let mut ok = CommandStream::spawn("printf 'abc'", &[]).expect("spawn");
        let mut text = String::new();
        ok.read_to_string(&mut text).expect("clean end");
        assert_eq!(text, "abc");

        let mut failing = CommandStream::spawn("printf 'partial'; exit 3", &[]).expect("spawn");
        let mut sink = Vec::new();
        let err = failing
            .read_to_end(&mut sink)
            .expect_err("exit 3 must fail the stream");
        assert!(err.to_string().contains("exit status: 3"), "{err}");
    }
}
