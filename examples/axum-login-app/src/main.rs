//! `cargo run -p axum-login-app`: serves the app on `APP_ADDR` (default
//! `127.0.0.1:3100`), keeping users, sessions and factors in
//! `APP_DATABASE` (default `sqlite://axum-login-app.sqlite`, created on
//! first start).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("axum-login-app: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("APP_ADDR").unwrap_or_else(|_| "127.0.0.1:3100".to_owned());
    let database = std::env::var("APP_DATABASE")
        .unwrap_or_else(|_| "sqlite://axum-login-app.sqlite".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    // On loopback, the name browsers use (and passkeys would need).
    let origin = if local.ip().is_loopback() {
        format!("http://localhost:{}", local.port())
    } else {
        format!("http://{local}")
    };
    let app = axum_login_app::App::open(&database, &origin).await?;
    println!("Open {origin}/");
    if let Some(secret) = app.seeded_totp_secret() {
        println!("alice's password: {}", axum_login_app::ALICE_PASSWORD);
        println!("alice's TOTP secret: {secret}");
    }
    let service = app
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).await?;
    Ok(())
}
