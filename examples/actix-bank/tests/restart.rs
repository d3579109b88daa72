//! actix-bank as a real process, stopped and started again on the same data
//! directory: Alice's passkey and Bob's new TOTP survive the restart. The
//! scenarios live in the conformance harness (`stepup_conformance::restart`),
//! written once for both banks' `tests/restart.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stepup_conformance::Adapter;
use stepup_conformance::restart;

const BINARY: &str = env!("CARGO_BIN_EXE_actix-bank");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factors_survive_a_restart() {
    restart::factors_survive_a_restart(Adapter::Actix, BINARY).await;
}

#[cfg(unix)]
#[test]
fn an_open_key_file_is_refused() {
    restart::an_open_key_file_is_refused(BINARY);
}
