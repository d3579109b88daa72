//! A real three-master Redis Cluster for the tests of the cluster path:
//! three `redis-server`s in cluster mode, no replicas, no persistence of
//! data, joined by `redis-cli --cluster create` (`redis-cli` comes in the
//! Debian `redis-tools` package, a dependency of `redis-server`), killed
//! when dropped.
//!
//! Where they listen: a cluster node must be reachable on TCP (the other
//! nodes and the clients are told its address), so each node gets a free
//! 127.0.0.1 port P, picked by binding port 0, whose cluster bus port
//! P + 10000 is free too; a node that loses either port to someone else
//! before it binds it is started again on new ones. Each node has a
//! directory of its own (its log and its `nodes.conf`): a stopped node
//! restarts on the same port with the same id and slots, and rejoins.
//!
//! Self-contained (std only, nothing from the parent module), so it can be
//! checked without building the crate; its directories are named apart
//! from the single-server ones.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How many masters a cluster has.
const MASTERS: usize = 3;

/// Where Redis puts a node's cluster bus: its port plus this.
const BUS_OFFSET: u16 = 10_000;

/// How long a node may take to answer after it is spawned.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the cluster may take to be whole (created, or a node back).
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one connection waits to connect, send or receive: a hung node
/// fails the test instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// One node of the cluster.
struct Node {
    /// The running redis-server (`None` while stopped).
    child: Option<Child>,
    /// Its port on 127.0.0.1 (its cluster bus is on port + 10000).
    port: u16,
    /// Its own directory: its working dir, its log, its `nodes.conf`.
    dir: PathBuf,
}

impl Node {
    /// Its log file (redis-server's stdout and stderr, every run appended).
    fn log(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    /// The last lines of its log, for a panic message.
    fn log_tail(&self) -> String {
        tail(&self.log(), 20)
    }

    /// Starts redis-server on this node's port and dir and waits until it
    /// answers with its own process id (not another server's that holds
    /// the port); `false` if the process exited first (its port or bus
    /// port was taken).
    fn spawn(&mut self) -> bool {
        let dir = self.dir.display().to_string();
        let nodes_conf = self.dir.join("nodes.conf").display().to_string();
        let port = self.port.to_string();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "yes",
                "--dir",
                &dir,
                "--save",
                "",
                "--appendonly",
                "no",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &nodes_conf,
                "--cluster-node-timeout",
                "2000",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("redis-server is not installed: run scripts/test, which installs it");
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + SPAWN_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && child.try_wait().unwrap().is_some()
            {
                self.child = None;
                return false;
            }
            if let Ok(info) = self.request(&["INFO", "server"])
                && info
                    .lines()
                    .find_map(|line| line.strip_prefix("process_id:"))
                    .and_then(|id| id.trim().parse::<u32>().ok())
                    == Some(pid)
            {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer within {SPAWN_TIMEOUT:?}; its log:\n{}",
                self.port,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process (SIGKILL: no goodbye to the other nodes).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// A new connection to the node.
    fn connect(&self) -> std::io::Result<TcpStream> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let stream = TcpStream::connect_timeout(&address, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(stream)
    }

    /// Sends one command on a new connection and reads its reply as text
    /// (see [`RedisCluster::command`]).
    fn request(&self, args: &[&str]) -> std::io::Result<String> {
        let mut stream = self.connect()?;
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(request.as_bytes())?;
        read_reply(&mut BufReader::new(stream))
    }
}

/// A running three-master Redis Cluster on 127.0.0.1.
pub(crate) struct RedisCluster {
    nodes: Vec<Node>,
}

impl RedisCluster {
    /// Starts three masters (no replicas) on free 127.0.0.1 ports, joins
    /// them with `redis-cli --cluster create`, and waits until every node
    /// reports the cluster whole (see [`wait_whole`](Self::wait_whole)).
    pub(crate) fn start() -> RedisCluster {
        // Built first, so that a panic below kills what has started.
        let mut cluster = RedisCluster { nodes: Vec::new() };
        for _ in 0..MASTERS {
            let node = start_node();
            cluster.nodes.push(node);
        }
        cluster.create();
        cluster.wait_whole("after `redis-cli --cluster create`");
        cluster
    }

    /// Runs `redis-cli --cluster create` on the nodes (bounded: a create
    /// that does not finish in time is killed and fails the start).
    fn create(&self) {
        let log_path = self.nodes[0].dir.join("cluster-create.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut args = vec!["--cluster".to_owned(), "create".to_owned()];
        args.extend(self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"].map(String::from));
        let mut child = Command::new("redis-cli")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect(
                "redis-cli is not installed (Debian package redis-tools, \
                 a dependency of redis-server): run scripts/test",
            );
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                child.kill().ok();
                child.wait().ok();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if status.is_none_or(|s| !s.success()) {
            panic!(
                "redis-cli {} {}; its output:\n{}\n{}",
                args.join(" "),
                match status {
                    Some(s) => format!("failed ({s})"),
                    None => format!("did not finish within {CLUSTER_TIMEOUT:?}"),
                },
                tail(&log_path, 40),
                self.logs()
            );
        }
    }

    /// `redis://127.0.0.1:PORT/` for each node, in node order.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}/", n.port))
            .collect()
    }

    /// Runs a raw command on node `node` over a plain socket, the reply as
    /// text: a status, error or integer as its line (`+OK`, `-MOVED 866
    /// 127.0.0.1:…`, `:3`), a bulk string as its whole text (`(nil)` for
    /// none), an array as its elements' texts on lines of their own
    /// (`(empty array)` for none). Panics if the node does not answer.
    pub(crate) fn command(&self, node: usize, args: &[&str]) -> String {
        self.try_command(node, args).unwrap_or_else(|e| {
            panic!(
                "node {node} (port {}) did not answer {args:?}: {e}; its log:\n{}",
                self.nodes[node].port,
                self.nodes[node].log_tail()
            )
        })
    }

    /// [`command`](Self::command), with a node that does not answer (a
    /// stopped one: connection refused) as an error.
    pub(crate) fn try_command(&self, node: usize, args: &[&str]) -> std::io::Result<String> {
        self.nodes[node].request(args)
    }

    /// The node that serves `key`: its slot (`CLUSTER KEYSLOT`) looked up
    /// in the slot ranges of the first running node's `CLUSTER NODES`
    /// (which lists a stopped node's slots too).
    pub(crate) fn node_for(&self, key: &str) -> usize {
        let mut views = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.child.is_none() {
                continue;
            }
            let Ok(slot) = node.request(&["CLUSTER", "KEYSLOT", key]) else {
                continue;
            };
            let Some(slot) = slot.strip_prefix(':').and_then(|s| s.parse::<u16>().ok()) else {
                panic!("CLUSTER KEYSLOT {key:?} on node {i}: {slot}");
            };
            let Ok(table) = node.request(&["CLUSTER", "NODES"]) else {
                continue;
            };
            if let Some(port) = owner_port(&table, slot)
                && let Some(owner) = self.nodes.iter().position(|n| n.port == port)
            {
                return owner;
            }
            views.push_str(&format!("node {i}'s CLUSTER NODES:\n{table}\n"));
        }
        panic!("no node serves the slot of {key:?}\n{views}");
    }

    /// Kills node `node` (SIGKILL) and waits until its port refuses
    /// connections. The other nodes keep running; they mark it failed
    /// (and the cluster down) after the 2 s node timeout.
    pub(crate) fn stop_node(&mut self, node: usize) {
        self.nodes[node].stop();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.nodes[node].port));
        let deadline = Instant::now() + SPAWN_TIMEOUT;
        while TcpStream::connect_timeout(&address, IO_TIMEOUT).is_ok() {
            assert!(
                Instant::now() < deadline,
                "port {} still accepts connections after node {node} was killed",
                self.nodes[node].port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts node `node` again (stopping it first if it runs) on the same
    /// port and dir: its `nodes.conf` makes it rejoin with its id and
    /// slots, without its data. Waits until the cluster is whole again.
    pub(crate) fn restart_node(&mut self, node: usize) {
        self.nodes[node].stop();
        if !self.nodes[node].spawn() {
            panic!(
                "node {node} did not restart on port {} (the port or its bus port {} \
                 taken by someone else?); its log:\n{}",
                self.nodes[node].port,
                u32::from(self.nodes[node].port) + u32::from(BUS_OFFSET),
                self.nodes[node].log_tail()
            );
        }
        self.wait_whole(&format!("after restarting node {node}"));
    }

    /// Waits (at most [`CLUSTER_TIMEOUT`]) until every node reports, in
    /// `CLUSTER INFO`, `cluster_state:ok` and `cluster_slots_assigned:16384`,
    /// and flags no node `fail` or `fail?` in `CLUSTER NODES`; panics with
    /// every node's view and log otherwise, or as soon as a node is
    /// stopped or has exited.
    pub(crate) fn wait_whole(&mut self, when: &str) {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        loop {
            let mut problems = Vec::new();
            let mut down = false;
            for (i, node) in self.nodes.iter_mut().enumerate() {
                match node.child.as_mut().map(Child::try_wait) {
                    None => problems.push(format!("node {i} is stopped")),
                    Some(Ok(Some(status))) => problems.push(format!("node {i} exited ({status})")),
                    Some(_) => continue,
                }
                down = true;
            }
            for (i, node) in self.nodes.iter().enumerate() {
                match node.request(&["CLUSTER", "INFO"]) {
                    Ok(info) => {
                        let lines: Vec<&str> = info.lines().map(str::trim).collect();
                        if !lines.contains(&"cluster_state:ok")
                            || !lines.contains(&"cluster_slots_assigned:16384")
                        {
                            problems.push(format!("node {i}'s CLUSTER INFO:\n{info}"));
                        }
                    }
                    Err(e) => problems.push(format!("node {i}: {e}")),
                }
                if let Ok(table) = node.request(&["CLUSTER", "NODES"])
                    && table.lines().any(|line| {
                        line.split_whitespace()
                            .nth(2)
                            .is_some_and(|flags| flags.split(',').any(|f| f.starts_with("fail")))
                    })
                {
                    problems.push(format!("node {i}'s CLUSTER NODES:\n{table}"));
                }
            }
            if problems.is_empty() {
                return;
            }
            if down || Instant::now() >= deadline {
                panic!(
                    "the cluster is not whole {when} (within {CLUSTER_TIMEOUT:?}):\n{}\n{}",
                    problems.join("\n"),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every node's port and log tail, for a panic message.
    fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("node {i} (port {}) log:\n{}", n.port, n.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
        for node in &self.nodes {
            std::fs::remove_dir_all(&node.dir).ok();
        }
    }
}

/// Starts one cluster node on a free port whose bus port is free too,
/// trying new ports when one is taken before redis-server binds it.
fn start_node() -> Node {
    for _ in 0..50 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Ephemeral ports reach 60999: a bus port must stay below 65536.
        let Some(bus) = port.checked_add(BUS_OFFSET) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", bus)).is_err() {
            continue;
        }
        let mut node = Node {
            child: None,
            port,
            dir: private_dir(),
        };
        if node.spawn() {
            return node;
        }
        std::fs::remove_dir_all(&node.dir).ok();
    }
    panic!("no cluster node started on any of 50 free ports");
}

/// The port of the node whose slot ranges, in a `CLUSTER NODES` answer,
/// hold `slot`.
fn owner_port(table: &str, slot: u16) -> Option<u16> {
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // id address flags master ping-sent pong-recv epoch link slot…;
        // the address is ip:port@cport[,hostname].
        let serves = fields.iter().skip(8).any(|range| {
            // `[slot->-id]` / `[slot-<-id]`: migrating or importing.
            if range.starts_with('[') {
                return false;
            }
            let (low, high) = range.split_once('-').unwrap_or((range, range));
            match (low.parse::<u16>(), high.parse::<u16>()) {
                (Ok(low), Ok(high)) => (low..=high).contains(&slot),
                _ => false,
            }
        });
        if !serves {
            return None;
        }
        let address = fields.get(1)?.split('@').next()?;
        address.rsplit(':').next()?.parse().ok()
    })
}

/// One RESP2 reply from `reader` as text (see [`RedisCluster::command`]).
fn read_reply(reader: &mut impl BufRead) -> std::io::Result<String> {
    let invalid = |what: &str| std::io::Error::new(ErrorKind::InvalidData, what.to_owned());
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(len) = line.strip_prefix('$') {
        let Ok(len) = usize::try_from(len.parse::<i64>().map_err(|_| invalid(line))?) else {
            return Ok("(nil)".to_owned());
        };
        let mut value = vec![0u8; len + 2];
        reader.read_exact(&mut value)?;
        value.truncate(len);
        return Ok(String::from_utf8_lossy(&value).into_owned());
    }
    if let Some(count) = line.strip_prefix('*') {
        let Ok(count) = usize::try_from(count.parse::<i64>().map_err(|_| invalid(line))?) else {
            return Ok("(nil)".to_owned());
        };
        if count == 0 {
            return Ok("(empty array)".to_owned());
        }
        let items = (0..count)
            .map(|_| read_reply(reader))
            .collect::<std::io::Result<Vec<_>>>()?;
        return Ok(items.join("\n"));
    }
    if line.is_empty() {
        return Err(invalid("an empty reply line"));
    }
    Ok(line.to_owned())
}

/// The last `lines` lines of the file at `path` (a note if it is unreadable).
fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("({}: {e})", path.display()),
    }
}

/// A new empty directory for one node (mode 700), named apart from the
/// single-server ones.
fn private_dir() -> PathBuf {
    use std::os::unix::fs::DirBuilderExt;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "stepup-redis-cluster-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
    dir
}
