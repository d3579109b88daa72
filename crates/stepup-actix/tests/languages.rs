//! The challenge page in the user's language on actix-web, over real HTTP
//! on 127.0.0.1: `Accept-Language: de` gives the German page with
//! `lang="de"`; an application's French text and its own choice of
//! language reach the routes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;

use actix_web::{App, HttpRequest, HttpServer};
use reqwest::StatusCode;
use stepup_actix::StepUp;
use stepup_actix::i18n::{Catalogue, Lang, Text};
use stepup_challenge::{Engine, InsecureFixedPasswords, MemoryFactorStore, MemoryStateStore};
use stepup_core::{Key, KeyId, KeyRing, Subject, TokenConfig};

const ORIGIN: &str = "https://bank.example";

fn who(request: &HttpRequest) -> Option<Subject> {
    let user = request.headers().get("x-user")?.to_str().ok()?;
    Some(Subject::new(user).with_session("s-1"))
}

#[actix_web::test]
async fn accept_language_de_gives_the_german_page() {
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[6u8; 32]).unwrap(),
    ));
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::default(),
    )
    .with_passwords(InsecureFixedPasswords::new([("alice", "wonderland")]));
    let fr = Lang::parse("fr").unwrap();
    let stepup = StepUp::new(engine, who, ORIGIN)
        .with_catalogue(Catalogue::new().with(fr, Text::PasswordLabel, "Votre mot de passe"))
        // The application's choice: bob always reads French.
        .with_language(move |request| {
            let bob = request.subject.as_ref().is_some_and(|s| s.id() == "bob");
            bob.then_some(fr)
        });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || App::new().configure(|c| stepup.configure(c)))
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let http = reqwest::Client::new();
    let page = |user: &'static str, accept: &'static str| {
        http.get(format!("{base}/step-up?return_to=/"))
            .header("x-user", user)
            .header("accept-language", accept)
            .send()
    };

    let r = page("alice", "de-CH, en;q=0.5").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-language"], "de");
    assert_eq!(r.headers()["vary"], "accept-language");
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"<html lang="de">"#), "{html}");
    assert!(html.contains("Bestätigen Sie, dass Sie es sind"));
    assert!(html.contains("Ihr Passwort"));

    let html = page("alice", "xx").await.unwrap().text().await.unwrap();
    assert!(html.contains(r#"<html lang="en">"#) && html.contains("Your password"));

    let html = page("bob", "de").await.unwrap().text().await.unwrap();
    assert!(html.contains(r#"<html lang="fr">"#), "{html}");
    assert!(html.contains("Votre mot de passe"), "{html}");

    handle.stop(true).await;
}
