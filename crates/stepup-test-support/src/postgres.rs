//! A throwaway PostgreSQL server for the tests: `initdb` into a private
//! temporary directory, listening on a free 127.0.0.1 port, tuned for speed
//! rather than durability, and stopped (its directory removed) when the
//! tests are done with it — however the test process ends.
//!
//! It drives the PostgreSQL programs (`initdb`, `pg_ctl`, `psql`); there is
//! no client library here. `scripts/test` installs them when they are
//! missing; a missing PostgreSQL is a failing test, never a skipped one.
//!
//! Most tests share one cluster per test process, [`shared`], and take a
//! database each from [`Cluster::fresh_database`], so they run in parallel
//! without seeing each other's rows. A test that stops or breaks its server
//! starts one of its own, [`start`].
//!
//! Clean-up does not rely on destructors (statics are never dropped). Each
//! cluster has a watchdog: a `sh` blocked reading a pipe whose only write
//! end this process holds. When the cluster is dropped, or the process
//! exits or is killed, the pipe closes and the watchdog stops the server
//! (`pg_ctl stop -m immediate`) and removes the directory. The watchdog has
//! a process group of its own and ignores SIGHUP, SIGINT and SIGTERM, so a
//! Ctrl-C or a test runner's signal to the test's group cannot take it down
//! before it has done its job.
//!
//! PostgreSQL's server programs refuse to run as root: as root, they run as
//! the `postgres` system user (through `runuser`), which then owns the
//! cluster's directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsString;
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The superuser every cluster is created with (trusted: no password).
const USER: &str = "stepup";

/// Who runs the server programs when this process is root.
const SERVER_USER_AS_ROOT: &str = "postgres";

/// The server's settings: TCP on 127.0.0.1 only, no Unix socket, and no
/// durability (nothing here needs to survive a crash).
const SETTINGS: &[&str] = &[
    "listen_addresses=127.0.0.1",
    "unix_socket_directories=''",
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
    "shared_buffers=16MB",
];

/// How long, in seconds, `pg_ctl` waits for a starting server to accept
/// connections.
const START_TIMEOUT_SECS: &str = "30";

/// How many free ports a start tries before giving up.
const PORT_ATTEMPTS: usize = 20;

/// One running PostgreSQL server with its own data directory, superuser
/// `stepup` (no password), on 127.0.0.1.
///
/// Stopped, and its directory removed, when dropped or when the test
/// process exits, whichever comes first.
#[derive(Debug)]
pub struct Cluster {
    port: u16,
    /// Private to this cluster: `data/` and `postgres.log`.
    dir: PathBuf,
    /// The watchdog, its standard input the pipe it waits on.
    watchdog: Child,
    /// The number of the next [`fresh_database`](Self::fresh_database).
    next_database: AtomicUsize,
}

/// The cluster of this test process, started on first use; each test takes
/// a database of its own on it with [`Cluster::fresh_database`].
///
/// It is stopped, and its directory removed, when the process exits.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(start)
}

/// Starts a cluster of its own (for a test that stops or breaks it) and
/// waits until it accepts connections. Dropping it stops it.
///
/// Panics, saying what to do, when PostgreSQL is not installed or the
/// server does not start.
pub fn start() -> Cluster {
    // Finds PostgreSQL (or panics) before anything is created.
    let pg_ctl = server_argv("pg_ctl");
    let dir = private_dir();
    // Right away, so that whatever happens next is cleaned up.
    let watchdog = spawn_watchdog(&dir, &pg_ctl);
    let mut cluster = Cluster {
        port: 0,
        dir,
        watchdog,
        next_database: AtomicUsize::new(1),
    };
    cluster.initdb();
    for _ in 0..PORT_ATTEMPTS {
        cluster.port = free_port();
        if cluster.try_start() {
            return cluster;
        }
    }
    panic!("PostgreSQL did not start on any of {PORT_ATTEMPTS} free ports");
}

impl Cluster {
    /// Creates a new, empty database with a name no other database of this
    /// cluster has, and returns its URL.
    pub fn fresh_database(&self) -> String {
        let name = format!(
            "test_{}",
            self.next_database.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// The URL of `database` on this cluster:
    /// `postgres://stepup@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// The port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's private directory (the data directory and the server
    /// log are in it); removed when the cluster stops.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `sql` on `database` (a name, as in [`url`](Self::url)) with
    /// `psql` and returns what it printed, trimmed: the rows, unaligned
    /// (`|` between columns, one row a line), no headers and no command
    /// tags. Panics with psql's error when the statement fails.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let output = run(Command::new(program("psql"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", USER])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(database)
            .arg("-c")
            .arg(sql));
        assert!(
            output.status.success(),
            "psql failed on database {database:?} running {sql:?}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// A server program (`initdb`, `pg_ctl`) run as the cluster's owner,
    /// in the cluster's directory.
    fn server(&self, name: &str) -> Command {
        let mut command = server_command(name);
        command.current_dir(&self.dir);
        command
    }

    /// Creates the data directory: UTF-8, C locale, superuser `stepup`
    /// trusted on every connection.
    fn initdb(&self) {
        let output = run(self
            .server("initdb")
            .arg("-D")
            .arg(self.data())
            .args(["--auth=trust", "--username", USER])
            .args(["--encoding=UTF8", "--locale=C", "--no-sync"]));
        assert!(
            output.status.success(),
            "initdb failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts the server on `self.port` and waits until it accepts
    /// connections; `false` if the port was taken (by someone who bound it
    /// after [`free_port`] picked it).
    fn try_start(&self) -> bool {
        // The log then tells about this attempt only.
        std::fs::remove_file(self.log()).ok();
        let mut options = format!("-p {}", self.port);
        for setting in SETTINGS {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        let output = run(self
            .server("pg_ctl")
            .args(["start", "-w", "-s", "-t", START_TIMEOUT_SECS, "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .arg("-o")
            .arg(options));
        if output.status.success() {
            return true;
        }
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        if log.contains("Address already in use") {
            return false;
        }
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(20)..];
        panic!(
            "PostgreSQL did not start on port {}:\n{}\nserver log ({}), last lines:\n{}",
            self.port,
            String::from_utf8_lossy(&output.stderr).trim(),
            self.log().display(),
            tail.join("\n")
        );
    }
}

impl Drop for Cluster {
    /// Stops the server and removes its directory: closes the watchdog's
    /// pipe and waits for it to have done that.
    fn drop(&mut self) {
        drop(self.watchdog.stdin.take());
        self.watchdog.wait().ok();
    }
}

/// Starts the watchdog of the cluster in `dir`: a shell that waits for
/// end-of-file on its standard input, then stops the server (with `pg_ctl`,
/// the [`server_argv`] of `pg_ctl`) and removes `dir`. The write end of that pipe is the returned child's `stdin`, held
/// by this process only (std opens its pipes close-on-exec, so neither the
/// server nor any other child inherits it): it closes when the cluster is
/// dropped or this process is gone.
fn spawn_watchdog(dir: &Path, pg_ctl: &[OsString]) -> Child {
    const SCRIPT: &str = r#"
        trap '' HUP INT TERM
        dir=$1
        shift
        cat >/dev/null
        "$@" stop -D "$dir/data" -m immediate -s >/dev/null 2>&1
        rm -rf "$dir"
    "#;
    Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("stepup-postgres-watchdog")
        .arg(dir)
        .args(pg_ctl)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("could not start the PostgreSQL watchdog (sh): {e}"))
}

/// A new empty directory for one cluster, mode 700, owned by the user the
/// server runs as.
fn private_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "stepup-postgres-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .unwrap_or_else(|e| panic!("could not create {}: {e}", dir.display()));
    if is_root() {
        let output = run(Command::new("chown").arg(SERVER_USER_AS_ROOT).arg(&dir));
        assert!(
            output.status.success(),
            "as root, PostgreSQL runs as the `{SERVER_USER_AS_ROOT}` user, which the Debian \
             package creates (run scripts/test, which installs it): chown failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    dir
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// Runs `command` to completion, capturing its output; panics if it cannot
/// be started at all.
fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| {
        panic!(
            "could not run {:?}: {e}\n(PostgreSQL's programs, and runuser when root, are \
             needed: run scripts/test, which installs them)",
            command.get_program()
        )
    })
}

/// A command running the server program `name` as the clusters' owner.
fn server_command(name: &str) -> Command {
    let argv = server_argv(name);
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    command
}

/// How to run the server program `name` as the clusters' owner: this
/// process's user, or `postgres` when this is root (the server programs
/// refuse to run as root).
fn server_argv(name: &str) -> Vec<OsString> {
    let program = program(name).into_os_string();
    if is_root() {
        vec![
            "runuser".into(),
            "-u".into(),
            SERVER_USER_AS_ROOT.into(),
            "--".into(),
            program,
        ]
    } else {
        vec![program]
    }
}

/// Whether this process runs as root.
fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| match std::fs::metadata("/proc/self") {
        // /proc/self belongs to the process's effective user.
        Ok(metadata) => metadata.uid() == 0,
        Err(_) => {
            let output = run(Command::new("id").arg("-u"));
            String::from_utf8_lossy(&output.stdout).trim() == "0"
        }
    })
}

/// The PostgreSQL program `name`, from the directory of `initdb` (so all
/// are of one version), else from `PATH`.
fn program(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    if path.is_file() {
        path
    } else {
        PathBuf::from(name)
    }
}

/// The directory of `initdb`: the one on `PATH`, symbolic links resolved,
/// else the highest version's in `/usr/lib/postgresql/*/bin` (Debian keeps
/// the server programs off `PATH`).
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let initdb = initdb_on_path().or_else(debian_initdb).unwrap_or_else(|| {
            panic!("PostgreSQL is not installed: run scripts/test, which installs it")
        });
        let initdb = initdb.canonicalize().unwrap_or(initdb);
        initdb.parent().unwrap_or(Path::new("/")).to_path_buf()
    })
}

fn initdb_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("initdb"))
        .find(|initdb| initdb.is_file())
}

fn debian_initdb() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            // "15", or "9.6" before PostgreSQL 10.
            let version: Vec<u32> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<_>>()?;
            let initdb = entry.path().join("bin/initdb");
            initdb.is_file().then_some((version, initdb))
        })
        .max()
        .map(|(_, initdb)| initdb)
}
