//! `cargo run -p axum-bank`: serves the demo bank on `BANK_ADDR`
//! (default `127.0.0.1:3000`); see `bank-core` for the other variables.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let startup = bank_core::Startup::from_env()?;
    let listener = tokio::net::TcpListener::bind(&startup.addr).await?;
    let config = startup.config("axum-bank", listener.local_addr()?.port())?;
    axum::serve(listener, axum_bank::app(config).await?).await?;
    Ok(())
}
