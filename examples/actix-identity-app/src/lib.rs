//! stepup with the login crates an actix-web application already has:
//! `actix-identity` (who is logged in) on `actix-session` (the session, in
//! a signed and encrypted cookie), users with argon2 password hashes in
//! SQLite, and stepup's factors (`stepup-sqlx`) in the same database file.
//!
//! Alice logs in with her password; `GET /api-key` asks her to confirm it's
//! really her (her authenticator app, level 2) and then stays open for five
//! minutes. What connects the two is the subject function,
//! [`IdentitySubjects`]: it tells stepup the user id, a per-login binding
//! kept in the session (logging out ends every assurance of that login)
//! and an epoch of the password hash (changing the password ends every
//! assurance of the user, in every session). actix-identity knows no
//! password, so a small middleware of this application ([`CurrentUser`])
//! loads the user's hash and stepup's factor epoch for the epoch to read.
//!
//! `cargo run -p actix-identity-app`, then open the printed URL. Users and
//! factors survive restarts (the database file), and so do sessions (the
//! cookie, sealed with a key kept in the database); the keys are generated
//! on the first start and kept in the same database — a demo's shortcut:
//! load yours from a secret store.

use std::fmt;
use std::time::Duration;

use actix_identity::{Identity, IdentityExt as _, IdentityMiddleware};
use actix_session::storage::CookieSessionStore;
use actix_session::{SessionExt as _, SessionMiddleware};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, cookie, web};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier as _, SaltString};
use serde::Deserialize;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use stepup_actix::identity::{IdentitySubjects, login_epoch};
use stepup_actix::{CookieSettings, StepUp};
use stepup_challenge::{Engine, PasswordVerifier, StoreError, TotpConfig, TotpSecret};
use stepup_core::{Key, KeyId, KeyRing, Policy, Subject, TokenConfig};
use stepup_sqlx::{SealingKey, SealingKeys, SqlStateStore, SqlStore};

/// Alice's password in a new database.
pub const ALICE_PASSWORD: &str = "correct horse battery";

/// The logged-in user, as [`load_user`] puts it in the request's
/// extensions on every request: the password hash and stepup's factor
/// epoch (for the subject's epoch), the name (for the pages).
#[derive(Clone)]
pub struct CurrentUser {
    id: i64,
    name: String,
    password_hash: String,
    stepup_epoch: u64,
}

impl fmt::Debug for CurrentUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentUser")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What the login form sends.
#[derive(Clone, Deserialize)]
pub struct Credentials {
    name: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The user table failed (or a hash could not be read).
#[derive(Debug)]
pub struct UsersError(String);

impl fmt::Display for UsersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the user table: {}", self.0)
    }
}

impl std::error::Error for UsersError {}

fn failed(e: impl fmt::Display) -> UsersError {
    UsersError(e.to_string())
}

/// The users (the login form's check and stepup's password check): a
/// SQLite table, and stepup's factor store for the epoch.
#[derive(Clone, Debug)]
pub struct Users {
    pool: SqlitePool,
    factors: SqlStore,
}

impl Users {
    async fn find(&self, column: &str, value: &str) -> Result<Option<CurrentUser>, UsersError> {
        let query = format!("SELECT id, name, password_hash FROM users WHERE {column} = ?");
        let Some(row) = sqlx::query(&query)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed)?
        else {
            return Ok(None);
        };
        let id: i64 = row.try_get("id").map_err(failed)?;
        let stepup_epoch = self.factors.epoch(&id.to_string()).await.map_err(failed)?;
        Ok(Some(CurrentUser {
            id,
            name: row.try_get("name").map_err(failed)?,
            password_hash: row.try_get("password_hash").map_err(failed)?,
            stepup_epoch,
        }))
    }

    /// The user `name` if `password` is theirs.
    async fn authenticate(&self, creds: Credentials) -> Result<Option<CurrentUser>, UsersError> {
        let user = self.find("name", &creds.name).await?;
        // An unknown name takes as long as a known one: its password is
        // checked against a hash of nobody's.
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let right = verify_password(hash, creds.password).await?;
        Ok(user.filter(|_| right))
    }

    /// Sets `user`'s password (a new argon2 hash): the subject's epoch
    /// changes, so every assurance of the user ends.
    pub async fn set_password(&self, user: i64, password: &str) -> Result<(), UsersError> {
        let hash = hash_password(password.to_owned()).await?;
        sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(hash)
            .bind(user)
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        Ok(())
    }
}

async fn hash_password(password: String) -> Result<String, UsersError> {
    web::block(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(failed)?;
        let salt = SaltString::encode_b64(&salt).map_err(failed)?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(failed)
    })
    .await
    .map_err(failed)?
}

/// Whether `password` matches the argon2 `hash` (off the async threads).
async fn verify_password(hash: Option<String>, password: String) -> Result<bool, UsersError> {
    web::block(move || {
        let parsed =
            PasswordHash::new(hash.as_deref().unwrap_or_else(|| nobodys_hash())).map_err(failed)?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(failed)?
}

/// An argon2 hash no password matches by chance (of 32 random bytes,
/// made once): what a login for an unknown name is checked against.
fn nobodys_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let mut secret = [0u8; 32];
        let mut salt = [0u8; 16];
        let made = getrandom::fill(&mut secret).and(getrandom::fill(&mut salt));
        let salt = SaltString::encode_b64(&salt);
        match (made, salt) {
            (Ok(()), Ok(salt)) => Argon2::default()
                .hash_password(&secret, &salt)
                .map(|h| h.to_string())
                .unwrap_or_default(),
            _ => String::new(),
        }
    })
}

/// stepup's password step-up checks the same table.
impl PasswordVerifier for Users {
    async fn verify(&self, subject: &Subject, password: &str) -> Result<bool, StoreError> {
        let store = |e: UsersError| StoreError::new("users", e.0);
        let Some(user) = self.find("id", subject.id()).await.map_err(store)? else {
            return Ok(false);
        };
        verify_password(Some(user.password_hash), password.to_owned())
            .await
            .map_err(store)
    }
}

/// The application: its database, users, session key and stepup engine.
/// Cheap to clone: `HttpServer::new(move || app.web_app())`.
#[derive(Clone)]
pub struct App {
    users: Users,
    session_key: cookie::Key,
    stepup: StepUp<SqlStore, SqlStateStore, Users>,
    seeded: Option<String>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

impl App {
    /// Opens (creating on first use) the database at `url` and builds the
    /// application for pages served from `origin`.
    pub async fn open(url: &str, origin: &str) -> Result<App, Box<dyn std::error::Error>> {
        let options: SqliteConnectOptions = url.parse()?;
        let pool = SqlitePoolOptions::new()
            .connect_with(options.create_if_missing(true))
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL)",
        )
        .execute(&pool)
        .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS demo_keys (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        )
        .execute(&pool)
        .await?;
        let token_key: [u8; 32] = demo_key(&pool, "token").await?;
        let sealing_key: [u8; 32] = demo_key(&pool, "sealing").await?;
        // The session cookie's key: 64 bytes (signing and encryption).
        let session_key: [u8; 64] = demo_key(&pool, "session").await?;
        let session_key = cookie::Key::try_from(session_key.as_slice())?;

        let factors =
            SqlStore::connect(url, SealingKeys::new(SealingKey::new(1, sealing_key))).await?;
        factors.migrate().await?;
        let users = Users {
            pool,
            factors: factors.clone(),
        };
        let seeded = seed(&users).await?;

        let tokens = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &token_key)?));
        let state = factors.state();
        let engine = Engine::new(tokens.issuer(), factors, state)
            .with_totp(TotpConfig::new("actix-identity-app"))
            .with_passwords(users.clone());
        // Who is logged in: actix-identity's id, the login's binding in the
        // session, and the epoch of what `load_user` found.
        let who = IdentitySubjects::new()
            .with_epoch(|request: &HttpRequest, _id: &str| {
                let extensions = request.extensions();
                let user = extensions.get::<CurrentUser>()?; // not loaded: no subject
                Some(login_epoch(
                    user.password_hash.as_bytes(),
                    user.stepup_epoch,
                ))
            })
            .into_fn();
        // Plain http on localhost: the development cookie (no `__Host-`,
        // no `Secure`). Never in production.
        let stepup = StepUp::new(engine, who, origin)
            .with_cookie(CookieSettings::insecure_local_development());
        Ok(App {
            users,
            session_key,
            stepup,
            seeded,
        })
    }

    /// Alice's TOTP secret (base 32) if this start created the database.
    pub fn seeded_totp_secret(&self) -> Option<&str> {
        self.seeded.as_deref()
    }

    /// The users table.
    pub fn users(&self) -> &Users {
        &self.users
    }

    /// The actix-web application: its routes with stepup's, and the
    /// middleware that connects them — the session outermost, then the
    /// identity, then [`load_user`]; stepup inside them all.
    pub fn web_app(
        &self,
    ) -> actix_web::App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody + use<>>,
            Error = actix_web::Error,
            InitError = (),
        > + use<>,
    > {
        // Plain http on localhost: the session cookie without `Secure`.
        let sessions =
            SessionMiddleware::builder(CookieSessionStore::default(), self.session_key.clone())
                .cookie_secure(false)
                .build();
        let api_key = Policy::level(2)
            .max_age(Duration::from_secs(300))
            .with_reason("The API key opens your account: please confirm it's you.");
        actix_web::App::new()
            .app_data(web::Data::new(self.users.clone()))
            .app_data(self.stepup.app_data())
            .configure(|c| self.stepup.configure(c))
            .route("/", web::get().to(home))
            // The application's own forms take POSTs from its origin only
            // (a login forced from another site, a sibling subdomain's form).
            .service(
                web::resource("/login")
                    .wrap(self.stepup.same_origin())
                    .route(web::post().to(login)),
            )
            .service(
                web::resource("/logout")
                    .wrap(self.stepup.same_origin())
                    .route(web::post().to(logout)),
            )
            .service(
                web::resource("/password")
                    .wrap(self.stepup.same_origin())
                    .route(web::post().to(change_password)),
            )
            .service(
                web::resource("/api-key")
                    .wrap(self.stepup.require(api_key))
                    .route(web::get().to(api_key_page)),
            )
            // The last `wrap` is the outermost.
            .wrap(from_fn(load_user))
            .wrap(IdentityMiddleware::default())
            .wrap(sessions)
    }
}

/// The middleware that loads the logged-in user (its password hash and
/// stepup's factor epoch) into the request's extensions as a
/// [`CurrentUser`]: inside `IdentityMiddleware`, around everything else.
/// An identity whose user is gone loads nothing (no subject, the login
/// page); a database failure answers 503.
pub async fn load_user(
    users: web::Data<Users>,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Ok(identity) = request.get_identity()
        && let Ok(id) = identity.id()
    {
        match users.find("id", &id).await {
            // Made with the current password: the user is loaded.
            Ok(Some(user))
                if request
                    .get_session()
                    .get::<u64>(PASSWORD_KEY)
                    .ok()
                    .flatten()
                    == Some(password_digest(&user)) =>
            {
                request.extensions_mut().insert(user);
            }
            // The password changed since this login (in another session),
            // or the user is gone: the login ends.
            Ok(_) => identity.logout(),
            Err(e) => return Err(actix_web::error::ErrorServiceUnavailable(e)),
        }
    }
    next.call(request).await
}

/// A key of the demo kept in its database (made on first use).
async fn demo_key<const N: usize>(
    pool: &SqlitePool,
    name: &str,
) -> Result<[u8; N], Box<dyn std::error::Error>> {
    let mut fresh = [0u8; N];
    getrandom::fill(&mut fresh)?;
    let hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
    sqlx::query("INSERT OR IGNORE INTO demo_keys (name, value) VALUES (?, ?)")
        .bind(name)
        .bind(hex)
        .execute(pool)
        .await?;
    let kept: String = sqlx::query_scalar("SELECT value FROM demo_keys WHERE name = ?")
        .bind(name)
        .fetch_one(pool)
        .await?;
    let mut key = [0u8; N];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(kept.get(2 * i..2 * i + 2).ok_or("a short demo key")?, 16)?;
    }
    Ok(key)
}

/// A new database gets alice, her password and a TOTP secret: the secret
/// in base 32, or `None` for a database that had her already.
async fn seed(users: &Users) -> Result<Option<String>, Box<dyn std::error::Error>> {
    if users.find("name", "alice").await?.is_some() {
        return Ok(None);
    }
    let hash = hash_password(ALICE_PASSWORD.to_owned()).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (name, password_hash) VALUES ('alice', ?) RETURNING id",
    )
    .bind(hash)
    .fetch_one(&users.pool)
    .await?;
    let secret = TotpSecret::generate()?;
    let base32 = secret.to_base32();
    use stepup_challenge::FactorStore as _;
    users
        .factors
        .set_totp_secret(&Subject::new(id.to_string()), secret)
        .await?;
    Ok(Some(base32))
}

const PAGE_HEAD: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>actix-identity-app</title></head><body>";

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

fn see_other(to: &'static str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, to))
        .finish()
}

async fn home(user: Option<web::ReqData<CurrentUser>>) -> HttpResponse {
    html(
        StatusCode::OK,
        match user {
            Some(user) => format!(
                "{PAGE_HEAD}<h1>Hello, {}</h1><p><a href=\"/api-key\">Show my API key</a></p>\
                 <form method=\"post\" action=\"/password\"><label>Current password <input type=\"password\" name=\"current\" autocomplete=\"current-password\"></label> <label>New password <input type=\"password\" name=\"password\" autocomplete=\"new-password\"></label> <button>Change password</button></form>\
                 <form method=\"post\" action=\"/logout\"><button>Log out</button></form></body></html>",
                escape(&user.name)
            ),
            None => format!(
                "{PAGE_HEAD}<h1>Log in</h1><form method=\"post\" action=\"/login\">\
                 <label>Name <input name=\"name\" autocomplete=\"username\"></label> \
                 <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\"></label> \
                 <button>Log in</button></form></body></html>"
            ),
        },
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn login(
    request: HttpRequest,
    users: web::Data<Users>,
    web::Form(creds): web::Form<Credentials>,
) -> HttpResponse {
    match users.authenticate(creds).await {
        Ok(Some(user)) => {
            // One borrow of the extensions at a time: the login, then the
            // session.
            let logged_in = Identity::login(&request.extensions(), user.id.to_string()).is_ok();
            if logged_in && remember_password(&request, &user).is_ok() {
                see_other("/")
            } else {
                HttpResponse::ServiceUnavailable().finish()
            }
        }
        Ok(None) => html(
            StatusCode::UNAUTHORIZED,
            format!(
                "{PAGE_HEAD}<p>Wrong name or password. <a href=\"/\">Try again</a></p></body></html>"
            ),
        ),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

/// Ends the login: actix-identity purges the session, the login's binding
/// with it.
async fn logout(identity: Option<Identity>) -> HttpResponse {
    if let Some(identity) = identity {
        identity.logout();
    }
    see_other("/")
}

/// What the password form sends: the current password and the new one.
#[derive(Deserialize)]
struct NewPassword {
    current: String,
    password: String,
}

/// Changes the logged-in user's password; this session stays logged in
/// (actix-identity keeps no hash), other sessions too — but the subject's
/// epoch is of the hash, so every assurance of the user, this session's
/// included, ends.
async fn change_password(
    request: HttpRequest,
    user: Option<web::ReqData<CurrentUser>>,
    users: web::Data<Users>,
    web::Form(form): web::Form<NewPassword>,
) -> HttpResponse {
    let Some(user) = user else {
        return see_other("/");
    };
    if form.password.len() < 8 {
        return HttpResponse::BadRequest().body("a password has at least 8 characters");
    }
    // Whoever holds the session must also know the password.
    let check = Credentials {
        name: user.name.clone(),
        password: form.current,
    };
    match users.authenticate(check).await {
        Ok(Some(_)) => {}
        Ok(None) => return HttpResponse::Forbidden().body("the current password is wrong"),
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    }
    if users.set_password(user.id, &form.password).await.is_err() {
        return HttpResponse::ServiceUnavailable().finish();
    }
    // This session stays logged in under the new password; the others end
    // at their next request (`load_user`).
    match users.find("id", &user.id.to_string()).await {
        Ok(Some(updated)) if remember_password(&request, &updated).is_ok() => see_other("/"),
        _ => HttpResponse::ServiceUnavailable().finish(),
    }
}

/// The session key under which a login remembers which password it was
/// made with (a digest of the hash), as axum-login does with its
/// `session_auth_hash`.
const PASSWORD_KEY: &str = "app.password";

/// The digest of `user`'s password hash a login remembers.
fn password_digest(user: &CurrentUser) -> u64 {
    login_epoch(user.password_hash.as_bytes(), 0)
}

fn remember_password(request: &HttpRequest, user: &CurrentUser) -> Result<(), ()> {
    request
        .get_session()
        .insert(PASSWORD_KEY, password_digest(user))
        .map_err(|_| ())
}

async fn api_key_page(user: Option<web::ReqData<CurrentUser>>) -> HttpResponse {
    let name = user.map(|u| u.name.clone()).unwrap_or_default();
    html(
        StatusCode::OK,
        format!(
            "{PAGE_HEAD}<h1>API key</h1><p>{}'s key: <code>ak_live_0123456789</code></p></body></html>",
            escape(&name)
        ),
    )
}
