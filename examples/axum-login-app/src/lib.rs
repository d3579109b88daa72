//! stepup with the login crates an axum application already has:
//! `axum-login` (who is logged in) on `tower-sessions` (the session), users
//! with argon2 password hashes in SQLite, the sessions
//! (`tower-sessions-sqlx-store`) and stepup's factors (`stepup-sqlx`) in the
//! same database file.
//!
//! Alice logs in with her password; `GET /api-key` asks her to confirm it's
//! really her (her authenticator app, level 2) and then stays open for five
//! minutes. What connects the two is one layer,
//! [`AxumLoginSubjects`]: it tells stepup the user id, a per-login
//! binding kept in the session (logging out ends every assurance of that
//! login) and an epoch of the password hash (changing the password ends
//! every assurance of the user).
//!
//! `cargo run -p axum-login-app`, then open the printed URL. Sessions and
//! factors survive restarts (the database file); the keys are generated on
//! the first start and kept in the same database — a demo's shortcut: load
//! yours from a secret store.

use std::fmt;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier as _, SaltString};
use axum::Router;
use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_login::{AuthManagerLayerBuilder, AuthSession, AuthUser, AuthnBackend, UserId};
use serde::Deserialize;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use stepup_axum::login::AxumLoginSubjects;
use stepup_axum::tower_sessions::SessionManagerLayer;
use stepup_axum::{CookieSettings, FromExtension, StepUp};
use stepup_challenge::{Engine, PasswordVerifier, StoreError, TotpConfig, TotpSecret};
use stepup_core::{Key, KeyId, KeyRing, Policy, Subject, TokenConfig};
use stepup_sqlx::{SealingKey, SealingKeys, SqlStore};
use tower_sessions_sqlx_store::SqliteStore;

/// Alice's password in a new database.
pub const ALICE_PASSWORD: &str = "correct horse battery";

/// A user as the application loads it on every request: the password
/// hash (axum-login's session hash) and stepup's factor epoch.
#[derive(Clone)]
pub struct User {
    id: i64,
    name: String,
    password_hash: String,
    stepup_epoch: u64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl AuthUser for User {
    type Id = i64;

    fn id(&self) -> i64 {
        self.id
    }

    fn session_auth_hash(&self) -> &[u8] {
        self.password_hash.as_bytes()
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

/// The users (axum-login's backend and stepup's password check): a SQLite
/// table, and stepup's factor store for the epoch.
#[derive(Clone, Debug)]
pub struct Users {
    pool: SqlitePool,
    factors: SqlStore,
}

impl Users {
    async fn find(&self, column: &str, value: &str) -> Result<Option<User>, UsersError> {
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
        Ok(Some(User {
            id,
            name: row.try_get("name").map_err(failed)?,
            password_hash: row.try_get("password_hash").map_err(failed)?,
            stepup_epoch,
        }))
    }

    /// Sets `user`'s password (a new argon2 hash): the session hash
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
    tokio::task::spawn_blocking(move || {
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
    tokio::task::spawn_blocking(move || {
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

impl AuthnBackend for Users {
    type User = User;
    type Credentials = Credentials;
    type Error = UsersError;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<User>, UsersError> {
        let user = self.find("name", &creds.name).await?;
        // An unknown name takes as long as a known one: its password is
        // checked against a hash of nobody's.
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let right = verify_password(hash, creds.password).await?;
        Ok(user.filter(|_| right))
    }

    async fn get_user(&self, id: &UserId<Self>) -> Result<Option<User>, UsersError> {
        self.find("id", &id.to_string()).await
    }
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

/// The application: its database, users and stepup engine.
pub struct App {
    users: Users,
    sessions: SqliteStore,
    stepup: StepUp<SqlStore, stepup_sqlx::SqlStateStore, Users>,
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
        let token_key = demo_key(&pool, "token").await?;
        let sealing_key = demo_key(&pool, "sealing").await?;

        let sessions = SqliteStore::new(pool.clone());
        sessions.migrate().await?;
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
            .with_totp(TotpConfig::new("axum-login-app"))
            .with_passwords(users.clone());
        // Plain http on localhost: the development cookie (no `__Host-`,
        // no `Secure`). Never in production.
        let stepup = StepUp::new(engine, FromExtension::<Subject>::new(), origin)
            .with_cookie(CookieSettings::insecure_local_development());
        Ok(App {
            users,
            sessions,
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

    /// The application's routes with stepup's, and the layers that connect
    /// them: axum-login outermost, then the subject, then stepup.
    pub fn router(&self) -> Router {
        // Plain http on localhost: the session cookie without `Secure`.
        let sessions = SessionManagerLayer::new(self.sessions.clone()).with_secure(false);
        let auth = AuthManagerLayerBuilder::new(self.users.clone(), sessions).build();
        let api_key = Policy::level(2)
            .max_age(Duration::from_secs(300))
            .with_reason("The API key opens your account: please confirm it's you.");
        // The application's own forms take POSTs from its origin only (a
        // login forced from another site, a sibling subdomain's form).
        let from_us = self.stepup.same_origin();
        Router::new()
            .route("/", get(home))
            .route("/login", post(login).route_layer(from_us.clone()))
            .route("/logout", post(logout).route_layer(from_us.clone()))
            .route("/password", post(change_password).route_layer(from_us))
            .route(
                "/api-key",
                get(api_key_page).route_layer(self.stepup.require(api_key)),
            )
            .merge(self.stepup.routes())
            .layer(self.stepup.layer())
            .layer(AxumLoginSubjects::<Users>::new().with_epoch(|user: &User| user.stepup_epoch))
            .layer(auth)
    }
}

/// A key of the demo kept in its database (made on first use).
async fn demo_key(pool: &SqlitePool, name: &str) -> Result<[u8; 32], Box<dyn std::error::Error>> {
    let mut fresh = [0u8; 32];
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
    let mut key = [0u8; 32];
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

const PAGE_HEAD: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>axum-login-app</title></head><body>";

async fn home(auth: AuthSession<Users>) -> Html<String> {
    Html(match auth.user {
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
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn login(mut auth: AuthSession<Users>, Form(creds): Form<Credentials>) -> Response {
    match auth.authenticate(creds).await {
        // A login over a logged-in session ends that one first: axum-login
        // cycles the session id only for a session without a user, and a
        // session planted by someone else must not become this login.
        Ok(Some(_)) if auth.user.is_some() && auth.logout().await.is_err() => {
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Ok(Some(user)) => match auth.login(&user).await {
            Ok(()) => Redirect::to("/").into_response(),
            Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        },
        Ok(None) => (StatusCode::UNAUTHORIZED, Html(format!("{PAGE_HEAD}<p>Wrong name or password. <a href=\"/\">Try again</a></p></body></html>"))).into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn logout(mut auth: AuthSession<Users>) -> Response {
    match auth.logout().await {
        Ok(_) => Redirect::to("/").into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// What the password form sends: the current password and the new one.
#[derive(Deserialize)]
struct NewPassword {
    current: String,
    password: String,
}

/// Changes the logged-in user's password and keeps this session logged in
/// (with the new hash); every other session of the user ends, and every
/// assurance of the user, this session's included, with it.
async fn change_password(mut auth: AuthSession<Users>, Form(form): Form<NewPassword>) -> Response {
    let Some(user) = auth.user.clone() else {
        return Redirect::to("/").into_response();
    };
    if form.password.len() < 8 {
        return (
            StatusCode::BAD_REQUEST,
            "a password has at least 8 characters",
        )
            .into_response();
    }
    let users = auth.backend.clone();
    // Whoever holds the session must also know the password.
    let check = Credentials {
        name: user.name.clone(),
        password: form.current,
    };
    match users.authenticate(check).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return (StatusCode::FORBIDDEN, "the current password is wrong").into_response();
        }
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
    if users.set_password(user.id, &form.password).await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match users.find("id", &user.id.to_string()).await {
        Ok(Some(updated)) if auth.login(&updated).await.is_ok() => {
            Redirect::to("/").into_response()
        }
        _ => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn api_key_page(auth: AuthSession<Users>) -> Html<String> {
    let name = auth.user.map(|u| u.name).unwrap_or_default();
    Html(format!(
        "{PAGE_HEAD}<h1>API key</h1><p>{}'s key: <code>ak_live_0123456789</code></p></body></html>",
        escape(&name)
    ))
}
