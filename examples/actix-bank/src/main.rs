//! `cargo run -p actix-bank`: serves the demo bank on `BANK_ADDR`
//! (default `127.0.0.1:3000`); see `bank-core` for the other variables.

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let startup = bank_core::Startup::from_env()?;
    let listener = std::net::TcpListener::bind(&startup.addr)?;
    let config = startup.config("actix-bank", listener.local_addr()?.port())?;
    let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    actix_bank::serve(config, listener, workers).await?.await?;
    Ok(())
}
