//! `cargo run -p axum-bank`: serves the demo bank on `BANK_ADDR`
//! (default `127.0.0.1:3000`).

use std::sync::Arc;

use base64::Engine as _;
use stepup_challenge::TotpSecret;
use stepup_core::SystemClock;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("BANK_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let key = match std::env::var("BANK_STEPUP_KEY") {
        Ok(text) => base64::engine::general_purpose::STANDARD.decode(text.trim())?,
        Err(_) => {
            let mut key = vec![0u8; 32];
            getrandom::fill(&mut key)?;
            println!("No BANK_STEPUP_KEY: generated a key; step-ups will not survive a restart.");
            key
        }
    };
    let alice_totp = match std::env::var("BANK_DEMO_TOTP_SECRET") {
        Ok(text) => TotpSecret::from_base32(&text)
            .ok_or("BANK_DEMO_TOTP_SECRET is not base32 (16+ bytes)")?,
        Err(_) => TotpSecret::generate()?,
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    // `localhost`, not 127.0.0.1: passkeys need a domain as relying party,
    // and challenge POSTs must come from exactly this origin.
    let origin = format!("http://localhost:{}", listener.local_addr()?.port());
    let totp = stepup_challenge::TotpConfig::new("axum-bank");
    println!("axum-bank on {origin}/ (use this URL: passkeys need `localhost`)");
    println!("Log in as alice / wonderland (TOTP enrolled) or bob / builder (no second factor).");
    println!("Alice's TOTP secret: {}", alice_totp.to_base32());
    println!(
        "Add it to an authenticator app: {}",
        totp.otpauth_uri(&alice_totp, "alice")?
    );
    let app = axum_bank::app(axum_bank::BankConfig {
        origin,
        key,
        alice_totp,
        clock: Arc::new(SystemClock),
    })
    .await?;
    axum::serve(listener, app).await?;
    Ok(())
}
