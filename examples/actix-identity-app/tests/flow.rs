//! The example over real HTTP: actix-identity logs alice in, stepup asks
//! for a step-up, and the two stay tied — a step-up made after the login's
//! session renewal holds; logging out and in again, or changing the
//! password (in this session or another), ends it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};

use actix_identity_app::{ALICE_PASSWORD, App};
use actix_web::HttpServer;
use actix_web::dev::ServerHandle;
use stepup_challenge::TotpSecret;

#[path = "../../../tests/login_scenarios.rs"]
mod scenarios;

use scenarios::Site;

/// The server and its database file, stopped and removed when the test
/// ends.
struct Running {
    file: std::path::PathBuf,
    server: ServerHandle,
}

impl Drop for Running {
    fn drop(&mut self) {
        // The stop command is sent now; nothing waits for it.
        drop(self.server.stop(false));
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
        "actix-identity-app-{}-{}.sqlite",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::remove_file(&file).ok();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = App::open(&format!("sqlite://{}", file.display()), &origin)
        .await
        .unwrap();
    let secret = TotpSecret::from_base32(app.seeded_totp_secret().unwrap()).unwrap();
    let server = HttpServer::new(move || app.web_app())
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let site = Site {
        origin,
        secret,
        issuer: "actix-identity-app",
        password: ALICE_PASSWORD,
    };
    (
        Running {
            file,
            server: handle,
        },
        site,
    )
}

#[actix_web::test]
async fn log_in_step_up_and_the_key_opens() {
    let (_app, site) = start().await;
    scenarios::log_in_step_up_and_the_key_opens(&site).await;
}

#[actix_web::test]
async fn a_new_login_does_not_inherit_the_old_logins_assurance() {
    let (_app, site) = start().await;
    scenarios::a_new_login_does_not_inherit_the_old_logins_assurance(&site).await;
}

#[actix_web::test]
async fn changing_the_password_ends_the_assurance() {
    let (_app, site) = start().await;
    scenarios::changing_the_password_ends_the_assurance(&site).await;
}

#[actix_web::test]
async fn a_password_changed_in_another_session_ends_this_ones_assurance() {
    let (_app, site) = start().await;
    scenarios::a_password_changed_in_another_session_ends_this_ones_assurance(&site).await;
}

#[actix_web::test]
async fn a_code_used_once_is_refused_in_another_session() {
    let (_app, site) = start().await;
    scenarios::a_code_used_once_is_refused_in_another_session(&site).await;
}

#[actix_web::test]
async fn the_apps_forms_refuse_other_origins() {
    let (_app, site) = start().await;
    scenarios::the_apps_forms_refuse_other_origins(&site).await;
}
