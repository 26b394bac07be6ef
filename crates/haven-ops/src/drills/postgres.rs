//! A throwaway PostgreSQL cluster for drilling a `pg_dump` set: initdb in
//! a private directory, listening on a socket inside it only (no TCP
//! port, so nothing can reach it and it can reach nothing production),
//! loaded with `pg_restore` (custom or directory format) or `psql`
//! (plain SQL). PostgreSQL refuses to run as root: then the cluster runs
//! as `nobody`, in a directory only `nobody` may enter. Stopped and
//! removed on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The database the dump is loaded into.
pub(super) const DATABASE: &str = "drill";

/// How to stop a cluster: its programs, directory and user.
#[derive(Clone)]
struct Stopper {
    bin: PathBuf,
    root: PathBuf,
    run_as: Option<u32>,
}

impl Stopper {
    fn stop(&self) {
        let cluster = Cluster {
            bin: self.bin.clone(),
            root: self.root.clone(),
            run_as: self.run_as,
            port: 0,
        };
        // Dropping it stops it and removes its directory.
        drop(cluster);
    }
}

/// The clusters of the drills running in this process.
static ACTIVE: std::sync::Mutex<Vec<Stopper>> = std::sync::Mutex::new(Vec::new());

fn active() -> std::sync::MutexGuard<'static, Vec<Stopper>> {
    ACTIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stop every active cluster (the process is interrupted).
pub(super) fn abort_all() {
    let stoppers: Vec<Stopper> = active().drain(..).collect();
    for s in stoppers {
        s.stop();
    }
}

/// A running throwaway cluster.
pub(super) struct Cluster {
    bin: PathBuf,
    root: PathBuf,
    run_as: Option<u32>,
    port: u16,
}

impl Cluster {
    /// initdb and start a cluster under a new private directory in `parent`.
    pub(super) fn start(parent: &Path, name: &str) -> Result<Cluster, String> {
        let bin = find_bin().ok_or("PostgreSQL's server programs (initdb, pg_ctl) are not installed: install them to drill pg_dump sets")?;
        let run_as = rustix::process::geteuid().is_root().then_some(65534);
        let root = parent.join(format!("{name}-postgres-{}", std::process::id()));
        std::fs::create_dir(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let mut cluster = Cluster {
            bin,
            root,
            run_as,
            // A number for the socket file's name only: no TCP listener.
            port: 55_000 + (std::process::id() % 1000) as u16,
        };
        cluster.own_root()?;
        active().push(Stopper {
            bin: cluster.bin.clone(),
            root: cluster.root.clone(),
            run_as: cluster.run_as,
        });
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-U",
                "haven",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        )?;
        let options = format!(
            "-k {} -p {} -c listen_addresses=''",
            cluster.root.display(),
            cluster.port
        );
        let log = cluster.root.join("postgres.log").display().to_string();
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                &cluster.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        )?;
        cluster.psql("postgres", &format!("CREATE DATABASE \"{DATABASE}\""))?;
        Ok(cluster)
    }

    fn data(&self) -> String {
        self.root.join("data").display().to_string()
    }

    /// Private to the user the cluster runs as.
    fn own_root(&mut self) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
        if let Some(uid) = self.run_as {
            let id = Some(rustix::process::Uid::from_raw(uid));
            let gid = Some(rustix::process::Gid::from_raw(uid));
            rustix::fs::chown(&self.root, id, gid).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.run_as {
            Some(uid) => {
                let mut c = Command::new("setpriv");
                c.args([
                    format!("--reuid={uid}"),
                    format!("--regid={uid}"),
                    "--clear-groups".into(),
                ])
                .arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let output = self
            .command(program)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr);
            return Err(format!("{program} failed: {}", said.trim()));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The environment a check (or a client) reaches the cluster with.
    pub(super) fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PGHOST".into(), self.root.display().to_string()),
            ("PGPORT".into(), self.port.to_string()),
            ("PGUSER".into(), "haven".into()),
            ("PGDATABASE".into(), DATABASE.into()),
        ]
    }

    /// One query's answer, unaligned and without headers.
    pub(super) fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let mut args: Vec<String> = self.connection().into();
        for arg in [
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-X",
            "-q",
            "-A",
            "-t",
            "-c",
            sql,
        ] {
            args.push(arg.to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run("psql", &args).map(|out| out.trim().to_string())
    }

    /// Load a dump: `pg_restore` for the custom format, `psql` for plain
    /// SQL. The dump is opened here and given to the client on its
    /// standard input (the client runs as the cluster's user, who may not
    /// enter the sandbox): no copy, whatever its size.
    pub(super) fn load(&self, dump: &Path) -> Result<String, String> {
        use std::io::Read as _;
        let open = || std::fs::File::open(dump).map_err(|e| format!("cannot open the dump: {e}"));
        let mut magic = [0u8; 5];
        let custom = open()?.read_exact(&mut magic).is_ok() && &magic == b"PGDMP";
        let (program, how, extra): (&str, &str, &[&str]) = if custom {
            (
                "pg_restore",
                "pg_restore (custom format)",
                &[
                    "-d",
                    DATABASE,
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                ],
            )
        } else {
            (
                "psql",
                "psql (plain SQL)",
                &["-d", DATABASE, "-v", "ON_ERROR_STOP=1", "-X", "-q"],
            )
        };
        let output = self
            .command(program)
            .args(self.connection())
            .args(extra)
            .stdin(open()?)
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr);
            return Err(format!("{program} failed: {}", said.trim()));
        }
        Ok(how.to_string())
    }

    /// `-h SOCKET_DIR -p PORT -U haven`: how a client reaches the cluster.
    fn connection(&self) -> [String; 6] {
        [
            "-h".into(),
            self.root.display().to_string(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            "haven".into(),
        ]
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        active().retain(|s| s.root != self.root);
        let _ = self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        if let Err(e) = std::fs::remove_dir_all(&self.root)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(
                "cannot remove the drill cluster {}: {e}",
                self.root.display()
            );
        }
    }
}

/// Where PostgreSQL's server programs are (`pg_config --bindir`, else the
/// newest `/usr/lib/postgresql/*/bin`), if installed.
pub fn find_bin() -> Option<PathBuf> {
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    candidates.sort();
    candidates.pop()
}
