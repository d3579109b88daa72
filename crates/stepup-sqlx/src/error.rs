//! Errors: a store failure names the operation and the kind of failure,
//! never a value from a row (a secret, a user id, an address).

use stepup_store::StoreError;

/// A failed statement of `operation` on the `store` ("factor", "state"),
/// described by its kind only. Database messages can quote values (a
/// unique violation's detail, a bad input), so only the class is kept:
/// SQLSTATE or SQLite code, and a missing table is named as such.
pub(crate) fn failed(store: &'static str, operation: &'static str, e: &sqlx::Error) -> StoreError {
    StoreError::new(store, format!("{operation}: {}", kind(e)))
}

fn kind(e: &sqlx::Error) -> String {
    use sqlx::error::ErrorKind;
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let missing_table =
                code == "42P01" || (code == "1" && db.message().starts_with("no such table"));
            if missing_table {
                return "a table is missing (run SqlStore::migrate first)".to_owned();
            }
            let what = match db.kind() {
                ErrorKind::UniqueViolation => "unique violation",
                ErrorKind::ForeignKeyViolation => "foreign key violation",
                ErrorKind::NotNullViolation => "not-null violation",
                ErrorKind::CheckViolation => "check violation",
                _ => "database error",
            };
            if code.is_empty() {
                what.to_owned()
            } else {
                format!("{what} (code {code})")
            }
        }
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".to_owned(),
        sqlx::Error::PoolClosed => "the connection pool is closed".to_owned(),
        sqlx::Error::Io(io) => format!("I/O error ({})", io.kind()),
        sqlx::Error::Tls(_) => "TLS error".to_owned(),
        sqlx::Error::Protocol(_) => "protocol error".to_owned(),
        sqlx::Error::Configuration(_) => "configuration error".to_owned(),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            "a stored value does not decode".to_owned()
        }
        sqlx::Error::ColumnNotFound(_) | sqlx::Error::ColumnIndexOutOfBounds { .. } => {
            "the table does not have the expected columns (run SqlStore::migrate)".to_owned()
        }
        sqlx::Error::WorkerCrashed => "the database worker stopped".to_owned(),
        _ => "database failure".to_owned(),
    }
}

/// A value that does not fit its column (a counter beyond `i64`).
pub(crate) fn out_of_range(store: &'static str, operation: &'static str) -> StoreError {
    StoreError::new(store, format!("{operation}: a value is out of range"))
}
