//! The page in the user's language: `Accept-Language` chooses among the
//! catalogue's languages (English when none fits), the application's
//! texts win, numbers come from the configuration, `<html lang>` and
//! `Content-Language` follow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use stepup_challenge::i18n::{Catalogue, Lang, Text};
use stepup_challenge::routes::{Body, ChallengeRoutes, Incoming, Reply, Settings};
use stepup_challenge::{
    Engine, FactorStore, InsecureFixedPasswords, MemoryFactorStore, MemoryStateStore, TotpConfig,
    TotpSecret,
};
use stepup_core::{Key, KeyId, KeyRing, Subject, TestClock, Timestamp, TokenConfig};
use stepup_http::Found;

const ORIGIN: &str = "https://bank.example";

type Routes = ChallengeRoutes<MemoryFactorStore, MemoryStateStore, InsecureFixedPasswords>;

fn alice() -> Subject {
    Subject::new("alice").with_session("s-1")
}

/// Alice has an authenticator app with 8-digit codes and a password.
async fn routes() -> Routes {
    let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_010));
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[9u8; 32]).unwrap(),
    ));
    let factors = MemoryFactorStore::new();
    factors
        .set_totp_secret(
            &alice(),
            TotpSecret::from_bytes(b"12345678901234567890").unwrap(),
        )
        .await
        .unwrap();
    let engine = Engine::new(
        config.issuer(),
        factors,
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_totp(TotpConfig::new("Bank").with_digits(8))
    .with_passwords(InsecureFixedPasswords::new([("alice", "correct horse")]));
    ChallengeRoutes::new(
        Settings::new(config.gate(), ORIGIN).with_clock(clock),
        Arc::new(engine),
    )
}

fn get<'a>(accept_language: Option<&'a [u8]>) -> Incoming<'a> {
    Incoming {
        method: "GET",
        path: "/",
        query: Some("return_to=%2Ftransfer"),
        subject: Some(alice()),
        origin: None,
        sec_fetch_site: None,
        referer: None,
        content_type: None,
        navigation: true,
        token: Found::None,
        body: Body::Read(b""),
        address: None,
        accept_language,
        user_agent: None,
        context: None,
    }
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply
        .headers()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

#[tokio::test]
async fn accept_language_de_gives_the_german_page() {
    let reply = routes()
        .await
        .handle(get(Some(b"de-DE,de;q=0.9,en;q=0.8")))
        .await;
    assert_eq!(reply.status(), 200);
    let html = reply.body();
    assert!(html.contains(r#"<html lang="de">"#), "{html}");
    assert!(html.contains("Bestätigen Sie, dass Sie es sind"), "{html}");
    assert!(
        html.contains("Bevor Sie fortfahren, müssen wir bestätigen"),
        "the generic reason in German: {html}"
    );
    assert!(
        html.contains("Der 8-stellige Code aus Ihrer Authenticator-App"),
        "the configured digits: {html}"
    );
    assert!(html.contains(r#"maxlength="8""#));
    assert!(html.contains("Ihr Passwort") && html.contains(">Bestätigen</button>"));
    assert!(html.contains("Zurück, ohne zu bestätigen"));
    assert!(
        !html.contains("Confirm it&#39;s you"),
        "no English left: {html}"
    );
    assert_eq!(header(&reply, "content-language"), Some("de"));
    assert_eq!(header(&reply, "vary"), Some("accept-language"));
}

#[tokio::test]
async fn swiss_and_austrian_german_are_german() {
    let routes = routes().await;
    for tag in [&b"de-CH"[..], b"de-AT, en;q=0.3", b"fr;q=0.9, de;q=0.95"] {
        let reply = routes.handle(get(Some(tag))).await;
        assert!(reply.body().contains(r#"lang="de""#), "{tag:?}");
    }
}

#[tokio::test]
async fn an_unknown_language_falls_back_to_english() {
    let routes = routes().await;
    for accept in [
        Some(&b"xx"[..]),
        Some(b"fr-FR, it;q=0.5"),
        Some(b"\xff;;q=="),
        None,
    ] {
        let reply = routes.handle(get(accept)).await;
        assert_eq!(reply.status(), 200);
        let html = reply.body();
        assert!(html.contains(r#"<html lang="en">"#), "{accept:?}: {html}");
        assert!(html.contains("Confirm it&#39;s you"));
        assert!(html.contains("The 8-digit code from your authenticator app"));
        assert!(html.contains("We need to confirm it&#39;s really you before you continue."));
        assert_eq!(header(&reply, "content-language"), Some("en"));
    }
}

#[tokio::test]
async fn an_application_supplied_french_text_wins() {
    let fr = Lang::parse("fr").unwrap();
    let catalogue = Catalogue::new()
        .with(fr, Text::ChallengeTitle, "Confirmez qu'il s'agit de vous")
        .with(
            fr,
            Text::TotpLabel,
            "Le code à {digits} chiffres de votre application",
        )
        .with(Lang::DE, Text::Confirm, "Weiter");
    let routes = routes().await.with_catalogue(catalogue);

    let reply = routes.handle(get(Some(b"fr-CH, de;q=0.5"))).await;
    let html = reply.body();
    assert!(html.contains(r#"<html lang="fr">"#), "{html}");
    assert!(
        html.contains("Confirmez qu&#39;il s&#39;agit de vous"),
        "{html}"
    );
    assert!(html.contains("Le code à 8 chiffres de votre application"));
    assert!(
        html.contains("Your password"),
        "a text French lacks is in English: {html}"
    );
    assert_eq!(header(&reply, "content-language"), Some("fr"));

    let german = routes.handle(get(Some(b"de"))).await;
    let html = german.body();
    assert!(
        html.contains(">Weiter</button>"),
        "the application's German: {html}"
    );
    assert!(!html.contains(">Bestätigen</button>"));
    assert!(html.contains("Ihr Passwort"), "the other German texts stay");
}

#[tokio::test]
async fn the_application_can_choose_the_language() {
    let routes = routes()
        .await
        .with_language(Arc::new(|_: &Incoming<'_>| Some(Lang::DE)));
    let reply = routes.handle(get(Some(b"en"))).await;
    assert!(reply.body().contains(r#"lang="de""#));
    let routes = routes.with_language(Arc::new(|_: &Incoming<'_>| None));
    let reply = routes.handle(get(Some(b"en"))).await;
    assert!(
        reply.body().contains(r#"lang="en""#),
        "None: Accept-Language chooses"
    );
}

#[tokio::test]
async fn a_wrong_password_is_said_in_german() {
    let routes = routes().await;
    let reply = routes
        .handle(Incoming {
            method: "POST",
            path: "/password",
            origin: Some(ORIGIN.as_bytes()),
            content_type: Some(b"application/x-www-form-urlencoded"),
            body: Body::Read(b"password=wrong&return_to=%2Ftransfer"),
            ..get(Some(b"de"))
        })
        .await;
    assert_eq!(reply.status(), 400);
    let html = reply.body();
    assert!(html.contains(r#"lang="de""#));
    assert!(
        html.contains("Das war nicht richtig. Bitte versuchen Sie es erneut."),
        "{html}"
    );

    let json = routes
        .handle(Incoming {
            method: "POST",
            path: "/password",
            origin: Some(ORIGIN.as_bytes()),
            content_type: Some(b"application/json"),
            body: Body::Read(br#"{"password":"wrong"}"#),
            navigation: false,
            ..get(Some(b"de"))
        })
        .await;
    let body: serde_json::Value = serde_json::from_str(json.body()).unwrap();
    assert_eq!(body["error"], "wrong", "the machine code stays: {body}");
}

#[tokio::test]
async fn the_enrollment_page_says_the_configured_digits() {
    // Enrolling needs a fresh proof: without one the answer is a
    // challenge, so check the page itself.
    let html = stepup_challenge::EnrollPage::new("/step-up", &stepup_core::ReturnTo::root())
        .in_language(Catalogue::built_in(), Lang::DE)
        .digits(8)
        .start()
        .html()
        .unwrap();
    assert!(html.contains("8-stelligen Code"), "{html}");
    assert!(html.contains("Authenticator-App einrichten"));
}

#[tokio::test]
async fn the_passkey_script_gets_its_texts_from_the_page() {
    let html =
        stepup_challenge::ChallengePage::new("/step-up", &stepup_core::ReturnTo::root(), "x")
            .in_language(Catalogue::built_in(), Lang::DE)
            .with_passkey()
            .html()
            .unwrap();
    assert!(
        html.contains(
            r#"data-failed="Das hat nicht funktioniert. Bitte versuchen Sie es erneut.""#
        ),
        "{html}"
    );
    assert!(html.contains("data-failed-others=\"Das hat nicht funktioniert."));
    assert!(html.contains(">Passkey verwenden</button>"));
    assert!(!html.contains("<script>"), "no inline script");
    assert!(stepup_challenge::PASSKEY_JS.contains("dataset.failedOthers"));
}

#[tokio::test]
async fn the_code_message_is_in_the_pages_language() {
    use std::time::Duration;
    use stepup_challenge::{Channel, CodeSettings, RecordingSender};

    let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_010));
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[9u8; 32]).unwrap(),
    ));
    let factors = MemoryFactorStore::new();
    factors
        .set_code_destination(&alice(), Channel::Email, "alice@example.com")
        .unwrap();
    let sender = RecordingSender::new();
    let engine = Engine::new(
        config.issuer(),
        factors,
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_code_sender(sender.clone())
    .with_code_settings(CodeSettings::default().valid_for(Duration::from_secs(5 * 60)));
    let routes = ChallengeRoutes::new(
        Settings::new(config.gate(), ORIGIN).with_clock(clock),
        Arc::new(engine),
    );
    let reply = routes
        .handle(Incoming {
            method: "POST",
            path: "/code/send",
            origin: Some(ORIGIN.as_bytes()),
            content_type: Some(b"application/x-www-form-urlencoded"),
            body: Body::Read(b"channel=email&return_to=%2F"),
            ..get(Some(b"de"))
        })
        .await;
    assert_eq!(reply.status(), 200);
    assert!(
        reply.body().contains("Code gesendet an"),
        "{}",
        reply.body()
    );
    let text = sender.last_message_to("alice@example.com").unwrap();
    let code = sender.last_code_to("alice@example.com").unwrap();
    assert_eq!(
        text,
        format!(
            "Ihr Bestätigungscode lautet {code}. Er ist 5 Minuten gültig. \
             Wenn Sie ihn nicht angefordert haben, geben Sie ihn nicht weiter."
        )
    );
}

#[tokio::test]
async fn stepups_own_reasons_are_translated() {
    let routes = routes().await;
    // Changing a factor without a fresh proof: the browser goes to the page.
    let reply = routes
        .handle(Incoming {
            path: "/enroll/totp",
            query: None,
            ..get(Some(b"de"))
        })
        .await;
    assert_eq!(reply.status(), 303);
    let location = reply.header_value("location").unwrap().to_owned();
    let (_, query) = location.split_once('?').unwrap();
    let page = routes
        .handle(Incoming {
            query: Some(query),
            ..get(Some(b"de"))
        })
        .await;
    let html = page.body();
    assert!(
        html.contains("Bestätigen Sie Ihre Identität, bevor Sie ändern, wie Sie sich anmelden."),
        "{html}"
    );
    let english = routes
        .handle(Incoming {
            query: Some(query),
            ..get(None)
        })
        .await;
    assert!(
        english
            .body()
            .contains("Confirm it&#39;s you before changing how you sign in."),
        "{}",
        english.body()
    );
}
