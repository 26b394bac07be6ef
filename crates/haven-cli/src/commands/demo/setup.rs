//! `haven demo`: a working instance from an example catalog on a fresh
//! machine. The catalog is copied into the data dir with its
//! repositories pointed at local directories and its systems at
//! generated sample data; database systems dump a real throwaway
//! PostgreSQL cluster when its binaries are installed.
//!
//! Everything lives inside the data dir; running the demo again reuses
//! it (the cluster is started again, nothing is regenerated).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use haven_engine::{InitOptions, Location, Repository};
use rand::{Rng, SeedableRng};
use toml_edit::{DocumentMut, Item, value};

/// What the demo set up.
#[derive(Debug)]
pub struct Demo {
    /// The data dir.
    pub data_dir: PathBuf,
    /// True when it already existed.
    pub reused: bool,
    /// How database systems are dumped (for the banner).
    pub databases: String,
    /// The PostgreSQL cluster, to stop when the demo ends.
    pub postgres: Option<Postgres>,
}

/// A throwaway PostgreSQL cluster listening on a Unix socket only.
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    run_as: Option<u32>,
}

const MARKER: &str = "demo.toml";

/// What a MySQL dump runs in the demo: the error mysqldump gives when
/// its server cannot be reached.
const FAILING_DUMP: &str = "sh -c 'echo \"mysqldump: Got error: 2002: Can not connect to MySQL server (the demo has none)\" >&2; exit 2'";

/// How long before the demo began its failing systems count as
/// protected (their RPO clock runs from then).
pub const FAILING_SINCE: jiff::SignedDuration = jiff::SignedDuration::from_mins(150);

/// The demo's systems whose backups fail on purpose (their dump is
/// [`FAILING_DUMP`]).
pub fn failing_systems(catalog: &haven_model::catalog::Catalog) -> Vec<(String, String)> {
    catalog
        .systems
        .iter()
        .flat_map(|s| {
            s.backup_sets
                .iter()
                .filter(|set| set.command.as_deref() == Some(FAILING_DUMP))
                .map(|set| (s.id.value.to_string(), set.name.to_string()))
        })
        .collect()
}

/// Create the demo data dir from `example` (or reuse it).
pub fn prepare(data_dir: &Path, example: &Path) -> anyhow::Result<Demo> {
    let data_dir = std::path::absolute(data_dir)?;
    if data_dir.join(MARKER).exists() {
        let postgres = start_existing_postgres(&data_dir)?;
        let databases = match &postgres {
            Some(pg) => format!("PostgreSQL cluster in {}", pg.data.display()),
            None => "sample dump files".into(),
        };
        return Ok(Demo {
            data_dir,
            reused: true,
            databases,
            postgres,
        });
    }
    if data_dir.exists() && std::fs::read_dir(&data_dir)?.next().is_some() {
        anyhow::bail!(
            "{} exists and is not a demo data dir: pass an empty or new --data-dir",
            data_dir.display()
        );
    }
    if !example.join("systems.toml").exists() {
        anyhow::bail!(
            "{} is not an example catalog (no systems.toml): run the demo from the Haven source tree or pass --from examples/acme",
            example.display()
        );
    }
    haven_ops::instance::private_dir(&data_dir)?;
    std::fs::create_dir_all(data_dir.join("catalog"))?;
    haven_ops::instance::private_dir(&data_dir.join("secrets"))?;
    // The repository password: random, in a file only the owner reads.
    let password_file = data_dir.join("secrets/repository.pw");
    let password: String = {
        let bytes: [u8; 24] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    haven_ops::instance::write_private(&password_file, format!("{password}\n").as_bytes())?;
    let postgres = match Postgres::create(&data_dir) {
        Ok(pg) => Some(pg),
        Err(e) => {
            tracing::warn!("no PostgreSQL for the demo, database systems dump sample files: {e:#}");
            None
        }
    };
    let mut readme = String::from(
        "# Haven demo data dir\n\nCreated by `haven demo` from the example catalog. Sample data is under\n`sample/`, repositories under `repos/`, the catalog under `catalog/`.\n\n",
    );
    for entry in std::fs::read_dir(example)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let name = path.file_name().map(PathBuf::from).unwrap_or_default();
        let text = std::fs::read_to_string(&path)?;
        let text = match name.to_str() {
            Some("repositories.toml") => rewrite_repositories(&text, &data_dir, &password_file)?,
            Some("systems.toml") => {
                rewrite_systems(&text, &data_dir, postgres.as_ref(), &mut readme)?
            }
            Some("watch.toml") => rewrite_channels(&text, &data_dir)?,
            _ => text,
        };
        std::fs::write(data_dir.join("catalog").join(name), text)?;
    }
    // Repositories for every catalog entry (primary and copies).
    let doc: DocumentMut =
        std::fs::read_to_string(data_dir.join("catalog/repositories.toml"))?.parse()?;
    if let Some(repos) = doc.get("repository").and_then(Item::as_array_of_tables) {
        for repo in repos {
            let Some(url) = repo.get("url").and_then(|u| u.as_str()) else {
                continue;
            };
            if !Path::new(url).join("config").exists() {
                Repository::init(
                    &Location::parse(url)?,
                    password.as_bytes(),
                    &InitOptions::default(),
                )?;
            }
        }
    }
    std::fs::write(
        data_dir.join("haven.toml"),
        "# Settings of this Haven instance (docs/server.md).\ncatalog = \"catalog\"\n# Demo: prune soon after marking (no backups run for long here).\nprune_grace = \"1h\"\n\n# Every event as a JSON line, for a SIEM (docs/events.md).\n[export]\nfile = \"events.jsonl\"\n\n# A recovery of a tier 1 or 2 service waits for a second person's\n# approval (docs/access.md).\n[access]\nfour_eyes = true\n",
    )?;
    std::fs::write(data_dir.join("README.md"), readme)?;
    let databases = match &postgres {
        Some(pg) => format!("PostgreSQL cluster in {}", pg.data.display()),
        None => "sample dump files (PostgreSQL binaries not found)".into(),
    };
    std::fs::write(
        data_dir.join(MARKER),
        format!(
            "# Marks a data dir made by `haven demo`.\nexample = {:?}\npostgres = {}\n",
            example.display().to_string(),
            postgres.is_some()
        ),
    )?;
    Ok(Demo {
        data_dir,
        reused: false,
        databases,
        postgres,
    })
}

fn rewrite_repositories(text: &str, data_dir: &Path, password: &Path) -> anyhow::Result<String> {
    let mut doc: DocumentMut = text.parse()?;
    if let Some(repos) = doc
        .get_mut("repository")
        .and_then(Item::as_array_of_tables_mut)
    {
        for repo in repos.iter_mut() {
            let id = repo
                .get("id")
                .and_then(|i| i.as_str())
                .unwrap_or("repo")
                .to_string();
            let dir = data_dir.join("repos").join(&id);
            repo["url"] = value(dir.display().to_string());
            repo["password"] = value(format!("file:{}", password.display()));
        }
    }
    Ok(format!(
        "# Rewritten by `haven demo`: every repository is a local directory.\n{doc}"
    ))
}

/// The demo never reaches outside the machine: every channel becomes a
/// command that appends the message to `notifications.log`.
fn rewrite_channels(text: &str, data_dir: &Path) -> anyhow::Result<String> {
    let mut doc: DocumentMut = text.parse()?;
    let log = data_dir.join("notifications.log");
    if let Some(channels) = doc
        .get_mut("channel")
        .and_then(Item::as_array_of_tables_mut)
    {
        for channel in channels.iter_mut() {
            let id = channel
                .get("id")
                .and_then(|i| i.as_str())
                .unwrap_or("channel")
                .to_string();
            let keys: Vec<String> = channel.iter().map(|(k, _)| k.to_string()).collect();
            for key in keys {
                if key != "id" {
                    channel.remove(&key);
                }
            }
            channel["type"] = value("command");
            channel["run"] = value(format!(
                "{{ echo \"== {id}: $HAVEN_SUBJECT\"; cat; echo; }} >> '{}'",
                log.display()
            ));
        }
    }
    Ok(format!(
        "# Rewritten by `haven demo`: every channel writes to notifications.log.\n{doc}"
    ))
}

fn rewrite_systems(
    text: &str,
    data_dir: &Path,
    postgres: Option<&Postgres>,
    readme: &mut String,
) -> anyhow::Result<String> {
    let mut doc: DocumentMut = text.parse()?;
    let Some(systems) = doc.get_mut("system").and_then(Item::as_array_of_tables_mut) else {
        return Ok(text.to_string());
    };
    let mut seed = 0u64;
    for system in systems.iter_mut() {
        let id = system
            .get("id")
            .and_then(|i| i.as_str())
            .unwrap_or("system")
            .to_string();
        let Some(sets) = system
            .get_mut("backup_set")
            .and_then(Item::as_array_of_tables_mut)
        else {
            continue;
        };
        for set in sets.iter_mut() {
            seed += 1;
            if let Some(paths) = set.get("paths").and_then(|p| p.as_array()) {
                let mut new_paths = toml_edit::Array::new();
                for path in paths.iter().filter_map(|p| p.as_str()) {
                    let local = data_dir
                        .join("sample")
                        .join(&id)
                        .join(path.trim_start_matches('/'));
                    generate_files(&local, seed)?;
                    seed += 1;
                    new_paths.push(local.display().to_string());
                }
                set["paths"] = value(new_paths);
                set.remove("excludes");
                let _ = writeln!(readme, "- {id}: sample files under sample/{id}/");
            } else if let Some(command) = set.get("command").and_then(|c| c.as_str()) {
                let database = command
                    .split_whitespace()
                    .last()
                    .unwrap_or("db")
                    .to_string();
                let new = match postgres {
                    // The demo has no MySQL server: the dump fails as it
                    // would with the database host down, which is what
                    // shows a violated service.
                    _ if command.starts_with("mysqldump") => {
                        let _ = writeln!(
                            readme,
                            "- {id}: `{command}` fails on purpose (no MySQL server in the demo); Haven counts it protected since 2h30m before the demo began, so its service's RPO shows violated at once"
                        );
                        FAILING_DUMP.to_string()
                    }
                    Some(pg) if command.starts_with("pg_dump") => {
                        pg.create_database(&database, seed)?;
                        let _ = writeln!(
                            readme,
                            "- {id}: pg_dump of database {database} in the demo PostgreSQL cluster"
                        );
                        pg.dump_command(&database)
                    }
                    _ => {
                        let file = data_dir
                            .join("sample")
                            .join(&id)
                            .join(format!("{database}.dump"));
                        generate_dump(&file, seed)?;
                        let _ = writeln!(
                            readme,
                            "- {id}: stands in for `{command}` with a generated dump file"
                        );
                        format!("cat {}", file.display())
                    }
                };
                set["command"] = value(new);
            }
        }
    }
    Ok(format!(
        "# Rewritten by `haven demo`: backup sets read generated sample data.\n{doc}"
    ))
}

/// A few files of mixed, partly compressible content.
fn generate_files(dir: &Path, seed: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for i in 0..12 {
        let sub = dir.join(format!("folder-{}", i % 3));
        std::fs::create_dir_all(&sub)?;
        let len = rng.random_range(4_000..96_000);
        let mut content = Vec::with_capacity(len);
        while content.len() < len {
            if rng.random_bool(0.5) {
                content.extend_from_slice(
                    format!("record {} of sample data {seed}\n", rng.random::<u32>()).as_bytes(),
                );
            } else {
                let chunk: [u8; 32] = rng.random();
                content.extend_from_slice(&chunk);
            }
        }
        std::fs::write(sub.join(format!("document-{i}.dat")), content)?;
    }
    Ok(())
}

fn generate_dump(file: &Path, seed: u64) -> std::io::Result<()> {
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut text = String::from("-- generated sample dump\n");
    for i in 0..5000 {
        let _ = writeln!(
            text,
            "INSERT INTO items VALUES ({i}, 'item {}', {});",
            rng.random::<u32>(),
            rng.random_range(1..1000)
        );
    }
    std::fs::write(file, text)
}

/// Where the demo's PostgreSQL cluster lives: beside the data dir, not in
/// it. The data dir is private to its owner (0700), and the cluster runs
/// as another user when the demo runs as root (PostgreSQL refuses root).
pub fn cluster_dir(data_dir: &Path) -> PathBuf {
    let name = data_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "haven-demo".into());
    data_dir.with_file_name(format!("{name}.postgres"))
}

impl Postgres {
    fn create(data_dir: &Path) -> anyhow::Result<Postgres> {
        let bin =
            haven_ops::drills::postgres_bin().ok_or_else(|| anyhow::anyhow!("initdb not found"))?;
        let root = cluster_dir(data_dir);
        let data = root.join("data");
        let socket_dir = root.join("socket");
        std::fs::create_dir_all(&socket_dir)?;
        // PostgreSQL refuses to run as root: run it as `nobody` then.
        let run_as = rustix::process::geteuid().is_root().then_some(65534);
        if let Some(uid) = run_as {
            chown_tree(&root, uid)?;
        }
        // A port for the socket file's name only: the cluster listens on
        // no TCP address.
        let port = 54_000 + (std::process::id() % 1000) as u16;
        let pg = Postgres {
            bin,
            data,
            socket_dir,
            port,
            run_as,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data.display().to_string(),
                "-U",
                "haven",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        )?;
        std::fs::write(root.join("port"), format!("{port}\n"))?;
        pg.start()?;
        Ok(pg)
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

    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let output = self.command(program).args(args).output()?;
        if !output.status.success() {
            anyhow::bail!(
                "{program} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-k {} -p {} -c listen_addresses=''",
            self.socket_dir.display(),
            self.port
        );
        let log = self
            .data
            .parent()
            .unwrap_or(&self.data)
            .join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-o",
                &options,
                "-l",
                &log.display().to_string(),
                "-w",
                "start",
            ],
        )?;
        Ok(())
    }

    /// Stop the cluster (at the end of the demo).
    pub fn stop(&self) {
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    fn psql(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        self.run(
            "psql",
            &[
                "-h",
                &self.socket_dir.display().to_string(),
                "-p",
                &self.port.to_string(),
                "-U",
                "haven",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                sql,
            ],
        )
    }

    fn create_database(&self, name: &str, seed: u64) -> anyhow::Result<()> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        self.psql(
            name,
            &format!(
                "CREATE TABLE invoices (id serial PRIMARY KEY, customer text, amount numeric, issued date); \
                 INSERT INTO invoices (customer, amount, issued) \
                 SELECT 'customer ' || (g % 97), round((random() * 1000)::numeric, 2), date '2026-01-01' + (g % 300) \
                 FROM generate_series(1, {}) g;",
                2000 + seed * 10
            ),
        )?;
        Ok(())
    }

    fn dump_command(&self, database: &str) -> String {
        let pg_dump = self.bin.join("pg_dump");
        // Only the server refuses root; the client runs as whoever runs
        // Haven.
        format!(
            "{} -h {} -p {} -U haven -Fc {database}",
            pg_dump.display(),
            self.socket_dir.display(),
            self.port
        )
    }
}

fn chown_tree(path: &Path, uid: u32) -> std::io::Result<()> {
    let id = Some(rustix::process::Uid::from_raw(uid));
    let gid = Some(rustix::process::Gid::from_raw(uid));
    rustix::fs::chown(path, id, gid)?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid)?;
        }
    }
    Ok(())
}

fn start_existing_postgres(data_dir: &Path) -> anyhow::Result<Option<Postgres>> {
    let root = cluster_dir(data_dir);
    let Ok(port) = std::fs::read_to_string(root.join("port")) else {
        return Ok(None);
    };
    let Some(bin) = haven_ops::drills::postgres_bin() else {
        return Ok(None);
    };
    let pg = Postgres {
        bin,
        data: root.join("data"),
        socket_dir: root.join("socket"),
        port: port.trim().parse()?,
        run_as: rustix::process::geteuid().is_root().then_some(65534),
    };
    // Already running (a previous demo still up)? Then leave it.
    if pg
        .run("pg_ctl", &["-D", &pg.data.display().to_string(), "status"])
        .is_err()
    {
        pg.start()?;
    }
    Ok(Some(pg))
}
