//! `cargo run -p actix-identity-app`: serves the app on `APP_ADDR` (default
//! `127.0.0.1:3200`), keeping users, factors and the keys in
//! `APP_DATABASE` (default `sqlite://actix-identity-app.sqlite`, created on
//! first start); sessions live in their (sealed) cookie.

use std::process::ExitCode;

use actix_web::HttpServer;

#[actix_web::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("actix-identity-app: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("APP_ADDR").unwrap_or_else(|_| "127.0.0.1:3200".to_owned());
    let database = std::env::var("APP_DATABASE")
        .unwrap_or_else(|_| "sqlite://actix-identity-app.sqlite".to_owned());
    let listener = std::net::TcpListener::bind(&addr)?;
    let origin = format!("http://{}", listener.local_addr()?);
    let app = actix_identity_app::App::open(&database, &origin).await?;
    println!("Listening on {origin}");
    if let Some(secret) = app.seeded_totp_secret() {
        println!("alice's password: {}", actix_identity_app::ALICE_PASSWORD);
        println!("alice's TOTP secret: {secret}");
    }
    HttpServer::new(move || app.web_app())
        .listen(listener)?
        .run()
        .await?;
    Ok(())
}
