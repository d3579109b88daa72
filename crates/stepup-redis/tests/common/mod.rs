//! A real `redis-server` for the tests, without persistence, stopped when
//! dropped. `scripts/test` installs the package when it is missing; a
//! missing server is a failing test, never a skipped one.
//!
//! Where it listens: by default on a Unix socket in a directory of its own
//! (and on no TCP port), so a stopped server can be restarted at the same
//! address and nothing else on the machine can have taken it in between
//! (a TCP port picked by bind-and-drop can be: by another test's server, or
//! as the local port of any outgoing connection). [`RedisServer::start_tcp`]
//! gives a server on 127.0.0.1 for the tests of the `redis://` path; its
//! port is picked by binding port 0, and a start that loses the port to
//! someone else is retried on a new one.
//!
//! Stores made here wait [`TEST_TIMEOUT`] for Redis, not the production
//! 500 ms: the tests race tens of tasks on two cores next to a compiler.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use stepup_redis::RedisStateStore;

pub(crate) mod cluster;

/// How long a test's store waits for a command: long enough for a loaded
/// machine, short enough that a hung server fails the test.
pub(crate) const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a server listens.
enum Address {
    /// A socket file in a directory only this server uses.
    Unix(PathBuf),
    /// A port on 127.0.0.1.
    Tcp(u16),
}

/// One connection to the server, either kind.
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// A running redis-server.
pub(crate) struct RedisServer {
    child: Option<Child>,
    address: Address,
    /// Its own directory (the socket, and redis-server's working dir).
    dir: PathBuf,
}

impl RedisServer {
    /// Starts one on a Unix socket of its own and waits until it answers.
    pub(crate) fn start() -> RedisServer {
        let dir = private_dir();
        let mut server = RedisServer {
            child: None,
            address: Address::Unix(dir.join("redis.sock")),
            dir,
        };
        assert!(server.spawn(), "redis-server did not start");
        server
    }

    /// Starts one on a free 127.0.0.1 port and waits until it answers; a
    /// port taken by someone else between picking and binding it is
    /// replaced by another. (Not for [`restart`](Self::restart): use
    /// [`start`](Self::start) for that.)
    pub(crate) fn start_tcp() -> RedisServer {
        for _ in 0..20 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut server = RedisServer {
                child: None,
                address: Address::Tcp(port),
                dir: private_dir(),
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on any of 20 free ports");
    }

    /// Starts redis-server at this server's address and waits until it
    /// answers with its own process id (not another server's that holds the
    /// address); `false` if the process exited first (its address was
    /// taken).
    fn spawn(&mut self) -> bool {
        let mut args: Vec<String> = match &self.address {
            // Port 0: no TCP listener at all.
            Address::Unix(path) => vec![
                "--port".into(),
                "0".into(),
                "--unixsocket".into(),
                path.display().to_string(),
                "--unixsocketperm".into(),
                "700".into(),
            ],
            Address::Tcp(port) => vec![
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
            ],
        };
        args.extend(
            [
                "--dir",
                &self.dir.display().to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ]
            .map(String::from),
        );
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed: run scripts/test, which installs it");
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(child) = self.child.as_mut()
                && child.try_wait().unwrap().is_some()
            {
                self.child = None;
                return false;
            }
            if let Some(mut stream) = self.connect()
                && server_pid(&mut stream) == Some(pid)
            {
                return true;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn connect(&self) -> Option<Stream> {
        match &self.address {
            Address::Unix(path) => UnixStream::connect(path).ok().map(Stream::Unix),
            Address::Tcp(port) => TcpStream::connect(("127.0.0.1", *port))
                .ok()
                .map(Stream::Tcp),
        }
    }

    /// The URL a store connects to: `redis+unix:///…/redis.sock` or
    /// `redis://127.0.0.1:PORT/`.
    pub(crate) fn url(&self) -> String {
        match &self.address {
            Address::Unix(path) => format!("redis+unix://{}", path.display()),
            Address::Tcp(port) => format!("redis://127.0.0.1:{port}/"),
        }
    }

    /// A store on this server with `prefix`, waiting [`TEST_TIMEOUT`].
    pub(crate) fn store(&self, prefix: &str) -> RedisStateStore {
        RedisStateStore::connect_with_timeout(&self.url(), prefix, TEST_TIMEOUT).unwrap()
    }

    /// Stops the server (its address stays this server's).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Starts it again at the same address (empty: no persistence).
    pub(crate) fn restart(&mut self) {
        assert!(
            matches!(self.address, Address::Unix(_)),
            "restart needs a server of its own address: RedisServer::start"
        );
        self.stop();
        assert!(self.spawn(), "redis-server did not restart");
    }

    /// The text of `INFO section`.
    pub(crate) fn info(&self, section: &str) -> String {
        let mut stream = self.connect().expect("the server answers");
        info(&mut stream, section).expect("an INFO answer")
    }

    /// Runs a raw command with redis-cli semantics over a plain socket:
    /// the reply's first line.
    pub(crate) fn command(&self, args: &[&str]) -> String {
        let mut stream = self.connect().expect("the server answers");
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(len) = line.strip_prefix('$') {
            let len: i64 = len.trim().parse().unwrap();
            if len < 0 {
                return "(nil)".to_owned();
            }
            let mut value = String::new();
            reader.read_line(&mut value).unwrap();
            return value.trim_end().to_owned();
        }
        line.trim_end().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// The `process_id` in the `INFO server` answer on `stream`.
fn server_pid(stream: &mut Stream) -> Option<u32> {
    info(stream, "server")?
        .lines()
        .find_map(|line| line.strip_prefix("process_id:"))?
        .trim()
        .parse()
        .ok()
}

/// The text of `INFO section` on `stream` (`None` if the server cannot
/// answer it yet).
fn info(stream: &mut Stream, section: &str) -> Option<String> {
    let request = format!("*2\r\n$4\r\nINFO\r\n${}\r\n{section}\r\n", section.len());
    stream.write_all(request.as_bytes()).ok()?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header).ok()?;
    let len: usize = header.strip_prefix('$')?.trim().parse().ok()?;
    let mut text = vec![0u8; len];
    reader.read_exact(&mut text).ok()?;
    String::from_utf8(text).ok()
}

/// A new empty directory for one server (mode 700).
fn private_dir() -> PathBuf {
    use std::os::unix::fs::DirBuilderExt;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "stepup-redis-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
    dir
}

/// Retries a TOTP step-up with `code` for `subject` on `engine` (up to
/// about 10 s) until the store answers again: whether it did. A server
/// restarted without persistence kept nothing, so the code may be taken
/// again, or be refused as the one already used this step: both are
/// answers.
pub(crate) async fn step_ups_recover<F: stepup_challenge::FactorStore>(
    engine: &stepup_challenge::Engine<F, RedisStateStore>,
    subject: &stepup_core::Subject,
    code: &str,
) -> bool {
    for _ in 0..100 {
        match engine
            .step_up_totp(stepup_challenge::Attempt::new(subject), code)
            .await
        {
            Ok(_) | Err(stepup_challenge::ChallengeError::AlreadyUsed) => return true,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    false
}
