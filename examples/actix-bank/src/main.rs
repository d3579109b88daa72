//! `cargo run -p actix-bank`: serves the demo bank on `BANK_ADDR`
//! (default `127.0.0.1:3000`), keeping users' factors in its data directory
//! (`bank-data/actix-bank`); see `bank-core` for every variable.

use std::process::ExitCode;

#[actix_web::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("actix-bank: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let startup = bank_core::Startup::from_env("actix-bank")?;
    let listener = std::net::TcpListener::bind(&startup.addr)?;
    let config = startup.config(listener.local_addr()?.port());
    let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    actix_bank::serve(config, listener, workers).await?.await?;
    Ok(())
}
