//! The throwaway PostgreSQL clusters: one shared per test process, a
//! database per test, and nothing left behind — not after a drop, not after
//! the test process exits or is killed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stepup_test_support::postgres::{self, Cluster};

/// Set in the environment of the test process [`watchdog_child`] runs in:
/// `exit` to exit once the cluster is up, `hang` to wait to be killed.
const CHILD: &str = "STEPUP_POSTGRES_WATCHDOG_CHILD";

#[test]
fn shared_is_one_cluster_per_process() {
    let first = postgres::shared();
    let second = postgres::shared();
    assert!(std::ptr::eq(first, second));
    assert_eq!(first.psql("postgres", "SELECT 1"), "1");
}

#[test]
fn fresh_databases_are_distinct_and_usable() {
    let cluster = postgres::shared();
    let a = cluster.fresh_database();
    let b = cluster.fresh_database();
    assert_ne!(a, b);
    let prefix = format!("postgres://stepup@127.0.0.1:{}/", cluster.port());
    let a = a.strip_prefix(&prefix).expect("a URL on the cluster");
    let b = b.strip_prefix(&prefix).expect("a URL on the cluster");

    assert_eq!(cluster.psql(a, "SELECT 1"), "1");
    assert_eq!(cluster.psql(b, "SELECT 1"), "1");
    cluster.psql(a, "CREATE TABLE marker (id int)");
    cluster.psql(a, "INSERT INTO marker VALUES (7)");
    assert_eq!(cluster.psql(a, "SELECT id FROM marker"), "7");
    let tables = "SELECT count(*) FROM pg_tables WHERE tablename = 'marker'";
    assert_eq!(cluster.psql(a, tables), "1");
    assert_eq!(cluster.psql(b, tables), "0");
}

#[test]
fn psql_reports_the_error() {
    let cluster = postgres::shared();
    let database = cluster.fresh_database();
    let name = database.rsplit('/').next().unwrap().to_owned();
    let failure = std::panic::catch_unwind(|| cluster.psql(&name, "SELECT * FROM missing"))
        .expect_err("a failed statement panics");
    let message = failure.downcast_ref::<String>().unwrap();
    assert!(
        message.contains(r#"relation "missing" does not exist"#),
        "{message}"
    );
}

#[test]
fn own_cluster_is_gone_after_drop() {
    let cluster: Cluster = postgres::start();
    let (port, dir) = (cluster.port(), cluster.dir().to_owned());
    assert_ne!(port, postgres::shared().port());
    assert_eq!(cluster.psql("postgres", "SELECT 1"), "1");
    assert!(dir.is_dir());
    assert!(!server_processes(&dir).is_empty());

    drop(cluster);
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(!accepts_connections(port), "port {port} still accepts");
    assert_eq!(server_processes(&dir), Vec::<String>::new());
}

#[test]
fn shared_cluster_is_gone_after_the_process_exits() {
    let mut child = child_process("exit");
    let (dir, port) = cluster_of(&mut child);
    assert!(child.wait().unwrap().success());
    assert_gone_soon(&dir, port);
}

#[test]
fn shared_cluster_is_gone_after_the_process_is_killed() {
    let mut child = child_process("hang");
    let (dir, port) = cluster_of(&mut child);
    assert!(accepts_connections(port));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_gone_soon(&dir, port);
}

/// Not a test of its own: the test process the two above start, selected
/// by [`CHILD`]. Starts the shared cluster, prints where it is, then exits
/// or waits to be killed. Without [`CHILD`] it does nothing.
#[test]
fn watchdog_child() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let cluster = postgres::shared();
    println!("cluster-dir {}", cluster.dir().display());
    println!("cluster-port {}", cluster.port());
    if mode == "hang" {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// This test binary again, running only [`watchdog_child`] in `mode`.
fn child_process(mode: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["watchdog_child", "--exact", "--nocapture"])
        .env(CHILD, mode)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The directory and port of the cluster `child` printed.
fn cluster_of(child: &mut std::process::Child) -> (PathBuf, u16) {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut dir, mut port) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(d) = line.strip_prefix("cluster-dir ") {
            dir = Some(PathBuf::from(d));
        } else if let Some(p) = line.strip_prefix("cluster-port ") {
            port = Some(p.parse().unwrap());
            break;
        }
    }
    // The rest (libtest's report), so the child's writes do not fail.
    std::thread::spawn(move || lines.for_each(drop));
    let (dir, port) = (dir.unwrap(), port.expect("the child started a cluster"));
    assert!(dir.is_dir());
    (dir, port)
}

/// Waits a few seconds for the cluster's directory and processes to be gone
/// and its port to refuse connections.
fn assert_gone_soon(dir: &Path, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let processes = server_processes(dir);
        let gone = !dir.exists() && !accepts_connections(port) && processes.is_empty();
        if gone {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster outlived its process: dir exists: {}, port {port} accepts: {}, \
             processes: {processes:?}",
            dir.exists(),
            accepts_connections(port)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn accepts_connections(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// The command lines of the processes naming `dir`: the postmaster (`-D
/// dir/data`) and the watchdog.
fn server_processes(dir: &Path) -> Vec<String> {
    let dir = dir.to_str().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(dir))
        .collect()
}
