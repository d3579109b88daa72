//! A bank binary as a real process — started with its environment on a
//! free port, its printed lines read, stopped with kill and wait — and the
//! restart scenarios that both banks' `tests/restart.rs` run against their
//! own binary (`env!("CARGO_BIN_EXE_…")`): users' factors live in the
//! bank's data directory, so they survive a restart.

use std::io::{BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use stepup_challenge::{RecordingSender, TotpConfig, TotpSecret};
use stepup_core::{Clock as _, SystemClock, TestClock};

use crate::{Adapter, Bank, SoftPasskey, client};

/// How long a bank may take to start (a debug build, a busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A directory of its own under the system's temporary directory, removed
/// on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory whose name starts with `prefix`.
    pub fn new(prefix: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).unwrap();
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a process printed so far, on stdout and stderr.
#[derive(Clone, Debug, Default)]
struct Output {
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Output {
    /// Copies `stream` into `into`, line by line, until it ends.
    fn collect(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let mut text = into.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

fn spawn(binary: &str, env: &[(&str, &str)]) -> (Child, Output) {
    let mut command = Command::new(binary);
    command
        .env("BANK_ADDR", "127.0.0.1:0")
        // Only what the test sets: nothing from the caller's environment.
        .env_remove("BANK_DATABASE_URL")
        .env_remove("BANK_SEALING_KEY")
        .env_remove("BANK_DATA_DIR")
        .env_remove("BANK_DEMO_TOTP_SECRET")
        .env_remove("BANK_STEPUP_KEY")
        .env_remove("BANK_SOAK_USERS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let output = Output::default();
    Output::collect(child.stdout.take().unwrap(), output.stdout.clone());
    Output::collect(child.stderr.take().unwrap(), output.stderr.clone());
    (child, output)
}

/// A bank binary running as a process on `127.0.0.1` (a port of its
/// choosing, `BANK_ADDR=127.0.0.1:0`), killed when dropped.
#[derive(Debug)]
pub struct BankProcess {
    child: Child,
    output: Output,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `http://localhost:PORT`, the origin it accepts POSTs from.
    pub origin: String,
}

impl BankProcess {
    /// Starts `binary` with `env` (every other `BANK_…` variable unset)
    /// and waits until it has printed its URL and what it holds for
    /// alice, i.e. until its factor store is open.
    pub fn start(binary: &str, env: &[(&str, &str)]) -> BankProcess {
        let (mut child, output) = spawn(binary, env);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let stdout = output.stdout();
            let port = stdout
                .split("http://localhost:")
                .nth(1)
                .and_then(|rest| rest.split('/').next().and_then(|p| p.parse::<u16>().ok()));
            // Whole lines: the `Factors:` line before them also names
            // "Alice's TOTP secret", and matching it raced the next line.
            let ready = stdout.lines().any(|line| {
                line.starts_with("Alice's TOTP secret: ") || line.starts_with("Alice has no TOTP")
            });
            if let (Some(port), true) = (port, ready) {
                return BankProcess {
                    child,
                    output,
                    base: format!("http://127.0.0.1:{port}"),
                    origin: format!("http://localhost:{port}"),
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "{binary} ended ({status}) before it served:\n{}\n{}",
                    output.stdout(),
                    output.stderr()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{binary} did not start within {START_TIMEOUT:?}:\n{stdout}\n{}",
                    output.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything it printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.output.stdout()
    }

    /// A client of this bank with its own cookies, as the harness's
    /// [`Bank`]: `secret` is the TOTP secret its [`Bank::code`] uses, on a
    /// clock set to the system's time now (call [`Bank::code`] soon, or set
    /// the clock again).
    pub fn client(&self, adapter: Adapter, secret: TotpSecret) -> Bank {
        Bank {
            adapter,
            base: self.base.clone(),
            origin: self.origin.clone(),
            clock: TestClock::new(SystemClock.now()),
            secret,
            codes: RecordingSender::new(),
            // Another process: its events are its own.
            events: crate::Events::default(),
            approvals: bank_core::Approvals::default(),
            client: client(),
        }
    }

    /// Stops it: kill, then wait for it to end.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BankProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `binary` with `env` expecting it to refuse to start: its exit
/// status, stdout and stderr once it ended (a bank still running after
/// a minute is a failure).
pub fn run_to_refusal(binary: &str, env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let (mut child, output) = spawn(binary, env);
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{binary} did not refuse to start:\n{}\n{}",
                output.stdout(),
                output.stderr()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The reader threads finish once the pipes close.
    std::thread::sleep(Duration::from_millis(100));
    (status, output.stdout(), output.stderr())
}

/// The current TOTP code of `secret` on the system clock.
fn code_now(secret: &TotpSecret) -> String {
    TotpConfig::new(bank_core::TOTP_ISSUER)
        .code_at(secret, SystemClock.now().as_unix_seconds())
        .unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// RFC 6238's test secret: what the first start seeds alice with.
const FIRST_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/// Another secret, given to the second start: it must not re-seed alice.
const SECOND_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// The level and methods `GET /step-up/status` reports for `bank`'s client.
async fn status(bank: &Bank) -> (u64, Vec<String>) {
    let (code, status) = bank.get_json("/step-up/status").await;
    assert_eq!(code, StatusCode::OK, "{status}");
    let methods = status["methods"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["method"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (status["level"].as_u64().unwrap_or(0), methods)
}

/// Alice enrolls a passkey and Bob (no second factor: a password step-up
/// first) a TOTP; the bank is stopped and started again on the same data
/// directory; both log in again and step up with what they enrolled.
///
/// Each start has another free port and a fresh random stepup key (no
/// `BANK_STEPUP_KEY`): logins live in memory and end with the process, so
/// nothing signed under the first key is needed again, and the factors
/// are shown to depend on the data directory (database and sealing key)
/// alone. The passkey's relying party is `localhost` whatever the port. The sealing key file is generated owner-only on
/// the first start and reused by the second, and the second start does not
/// seed alice again (another `BANK_DEMO_TOTP_SECRET` changes nothing).
pub async fn factors_survive_a_restart(adapter: Adapter, binary: &str) {
    let data = TempDir::new("stepup-restart");
    let data_dir = data.path().join("bank");
    let dir = data_dir.to_str().unwrap();
    let key_file = data_dir.join("sealing.key");
    let alice_secret = TotpSecret::from_base32(FIRST_SECRET).unwrap();

    // The first start: a new database, seeded.
    let bank = BankProcess::start(
        binary,
        &[
            ("BANK_DATA_DIR", dir),
            ("BANK_DEMO_TOTP_SECRET", FIRST_SECRET),
        ],
    );
    let printed = bank.stdout();
    assert!(
        printed.contains(&format!("Alice's TOTP secret: {FIRST_SECRET}")),
        "{printed}"
    );
    assert!(printed.contains("a new database"), "{printed}");
    assert!(
        printed.contains(
            &std::fs::canonicalize(&key_file)
                .unwrap()
                .display()
                .to_string()
        ),
        "{printed}"
    );
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    #[cfg(unix)]
    {
        assert_eq!(mode(&key_file), 0o600, "the key file is owner-only");
        assert_eq!(mode(&data_dir), 0o700, "the data directory is owner-only");
    }

    // Alice: a TOTP step-up (enrolling needs a fresh one), then a passkey.
    let alice = bank.client(adapter, alice_secret.clone());
    assert_eq!(
        alice.login("alice", "wonderland").await,
        StatusCode::SEE_OTHER
    );
    let r = alice
        .post_json("/step-up/totp", json!({"code": code_now(&alice_secret)}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut passkey = SoftPasskey::new(true);
    let r = alice.register_passkey(&mut passkey).await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);

    // Bob has no second factor: he re-confirms his password, then enrolls
    // a TOTP.
    let bob = bank.client(adapter, alice_secret.clone());
    assert_eq!(bob.login("bob", "builder").await, StatusCode::SEE_OTHER);
    let r = bob
        .post_json("/step-up/password", json!({"password": "builder"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = bob.post_json("/step-up/enroll/totp", json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let enrolled: Value = r.json().await.unwrap();
    let bob_secret =
        TotpSecret::from_base32(enrolled["manual_entry_key"].as_str().unwrap()).unwrap();
    let r = bob
        .post_json(
            "/step-up/enroll/totp/confirm",
            json!({"code": code_now(&bob_secret)}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    bank.stop();

    // The second start: the same data directory, another demo secret.
    let bank = BankProcess::start(
        binary,
        &[
            ("BANK_DATA_DIR", dir),
            ("BANK_DEMO_TOTP_SECRET", SECOND_SECRET),
        ],
    );
    let printed = bank.stdout();
    assert!(
        printed.contains(&format!("Alice's TOTP secret: {FIRST_SECRET}"))
            && !printed.contains(SECOND_SECRET),
        "the stored secret stands: {printed}"
    );
    assert!(
        printed.contains("BANK_DEMO_TOTP_SECRET applies to a new database only"),
        "{printed}"
    );
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        key_text,
        "the second start reuses the key file"
    );
    #[cfg(unix)]
    assert_eq!(mode(&key_file), 0o600);

    // Alice steps up with the passkey she registered before the restart.
    let alice = bank.client(adapter, alice_secret.clone());
    assert_eq!(
        alice.login("alice", "wonderland").await,
        StatusCode::SEE_OTHER
    );
    let r = alice.passkey_step_up(&mut passkey).await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    let (level, methods) = status(&alice).await;
    assert_eq!(level, 2);
    assert!(methods.iter().any(|m| m == "passkey"), "{methods:?}");

    // Bob steps up with the TOTP he enrolled before the restart.
    let bob = bank.client(adapter, bob_secret.clone());
    assert_eq!(bob.login("bob", "builder").await, StatusCode::SEE_OTHER);
    let r = bob
        .post_json("/step-up/totp", json!({"code": code_now(&bob_secret)}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    let (level, methods) = status(&bob).await;
    assert_eq!(level, 2);
    assert_eq!(methods, ["totp"]);
    // … and alice's seeded secret was not replaced.
    let r = alice
        .post_json("/step-up/totp", json!({"code": code_now(&alice_secret)}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    bank.stop();
}

/// A sealing key file its group may read is refused at start-up, with a
/// message that says why and what to do, before anything is opened.
#[cfg(unix)]
pub fn an_open_key_file_is_refused(binary: &str) {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

    let data = TempDir::new("stepup-open-key");
    let key_file = data.path().join("sealing.key");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(&key_file)
        .unwrap();
    std::io::Write::write_all(
        &mut file,
        bank_core::SealingKey::generate(1)
            .unwrap()
            .to_text()
            .as_bytes(),
    )
    .unwrap();
    drop(file);
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o640)).unwrap();

    let (status, stdout, stderr) =
        run_to_refusal(binary, &[("BANK_DATA_DIR", data.path().to_str().unwrap())]);
    assert!(!status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            &std::fs::canonicalize(&key_file)
                .unwrap()
                .display()
                .to_string()
        ) && stderr.contains("too open (permissions 0640)")
            && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!stdout.contains("http://localhost:"), "{stdout}");
    assert!(
        !data.path().join("factors.db").exists(),
        "nothing is opened with a key that is too open"
    );
}
