//! `cargo run -p axum-bank`: serves the demo bank on `BANK_ADDR`
//! (default `127.0.0.1:3000`), keeping users' factors in its data directory
//! (`bank-data/axum-bank`); see `bank-core` for every variable.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("axum-bank: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let startup = bank_core::Startup::from_env("axum-bank")?;
    let listener = tokio::net::TcpListener::bind(&startup.addr).await?;
    let config = startup.config(listener.local_addr()?.port());
    let app = axum_bank::app(config).await?;
    // The peer address feeds the per-address attempt budget.
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).await?;
    Ok(())
}
