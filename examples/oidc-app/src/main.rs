//! `cargo run -p oidc-app`: serves the app on `APP_ADDR` (default
//! `127.0.0.1:3200`). Without `OIDC_ISSUER` it starts the test provider
//! (`node tests/oidc-provider/provider.mjs`, its npm packages installed
//! first when missing) on a free 127.0.0.1 port with the app's redirect
//! URIs, and stops it on exit; with `OIDC_ISSUER`, `OIDC_CLIENT_ID` and
//! `OIDC_CLIENT_SECRET` it uses that provider (register the redirect URIs
//! it prints).

use std::process::ExitCode;

use oidc_app::{App, Provider, TestProvider, redirect_uris};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oidc-app: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("APP_ADDR").unwrap_or_else(|_| "127.0.0.1:3200".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    // The demo serves plain http: on this machine only (put TLS in front
    // and serve an https origin for anything else).
    if !local.ip().is_loopback() {
        return Err(
            format!("{local} is not a loopback address: the demo serves plain http").into(),
        );
    }
    let origin = format!("http://localhost:{}", local.port());
    let (_test_provider, provider) = match std::env::var("OIDC_ISSUER") {
        Ok(issuer) => (
            None,
            Provider {
                issuer,
                client_id: std::env::var("OIDC_CLIENT_ID")?,
                client_secret: std::env::var("OIDC_CLIENT_SECRET")?,
            },
        ),
        Err(_) => {
            let test_provider = TestProvider::start(&redirect_uris(&origin))?;
            let provider = test_provider.provider();
            println!(
                "test provider: {} (logs in as alice, no password asked)",
                provider.issuer
            );
            (Some(test_provider), provider)
        }
    };
    let app = App::new(&origin, &provider).await?;
    for uri in redirect_uris(&origin) {
        println!("redirect URI: {uri}");
    }
    println!("Open {origin}/");
    let service = app
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).await?;
    Ok(())
}
