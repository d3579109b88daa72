//! The example over real HTTP: axum-login logs alice in, stepup asks for a
//! step-up, and the two stay tied — a step-up made after the login's
//! session-id cycle holds; logging out and in again, or changing the
//! password (in this session or another), ends it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};

use axum_login_app::{ALICE_PASSWORD, App};
use stepup_challenge::TotpSecret;

#[path = "../../../tests/login_scenarios.rs"]
mod scenarios;

use scenarios::Site;

/// The app's database file, removed when the test ends.
struct Running {
    file: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.file.clone().into_os_string();
            name.push(suffix);
            std::fs::remove_file(name).ok();
        }
    }
}

/// The app on a free loopback port, on a database of its own.
async fn start() -> (Running, Site) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let file = std::env::temp_dir().join(format!(
        "axum-login-app-{}-{}.sqlite",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::remove_file(&file).ok();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = App::open(&format!("sqlite://{}", file.display()), &origin)
        .await
        .unwrap();
    let secret = TotpSecret::from_base32(app.seeded_totp_secret().unwrap()).unwrap();
    let service = app
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    let site = Site {
        origin,
        secret,
        issuer: "axum-login-app",
        password: ALICE_PASSWORD,
    };
    (Running { file }, site)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_step_up_and_the_key_opens() {
    let (_app, site) = start().await;
    scenarios::log_in_step_up_and_the_key_opens(&site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_login_does_not_inherit_the_old_logins_assurance() {
    let (_app, site) = start().await;
    scenarios::a_new_login_does_not_inherit_the_old_logins_assurance(&site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_ends_the_assurance() {
    let (_app, site) = start().await;
    scenarios::changing_the_password_ends_the_assurance(&site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_changed_in_another_session_ends_this_ones_assurance() {
    let (_app, site) = start().await;
    scenarios::a_password_changed_in_another_session_ends_this_ones_assurance(&site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_used_once_is_refused_in_another_session() {
    let (_app, site) = start().await;
    scenarios::a_code_used_once_is_refused_in_another_session(&site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_forms_refuse_other_origins() {
    let (_app, site) = start().await;
    scenarios::the_apps_forms_refuse_other_origins(&site).await;
}
