//! Where a bank keeps its data: the data directory, the factor database's
//! URL (and how it is printed), and the sealing key file.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use stepup_sqlx::{SealingKey, SealingKeys};

/// The file in the data directory that holds the sealing key when
/// `BANK_SEALING_KEY` is not given.
pub const SEALING_KEY_FILE: &str = "sealing.key";
/// The SQLite database in the data directory when `BANK_DATABASE_URL` is
/// not given.
pub const DATABASE_FILE: &str = "factors.db";

/// Creates `dir` and any missing parent with mode 0700 (owner only), and
/// returns its absolute path. An existing directory is left as it is.
pub(crate) fn create_data_dir(dir: &Path) -> io::Result<PathBuf> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    fs::canonicalize(dir)
}

/// The `sqlite://` URL of the database file `path` (`?`, `#` and `%`
/// percent-encoded: sqlx reads the file name up to a `?` and decodes it).
pub(crate) fn sqlite_url(path: &Path) -> Result<String, String> {
    let path = path
        .to_str()
        .ok_or_else(|| format!("{}: not a UTF-8 path", path.display()))?;
    let mut url = String::from("sqlite://");
    for c in path.chars() {
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            '#' => url.push_str("%23"),
            c => url.push(c),
        }
    }
    Ok(url)
}

/// The sealing keys in the key file `path`: read when it exists — and
/// refused when anyone but its owner may read or write it, as ssh refuses
/// a private key that is too open — or else generated (`SealingKey::generate(1)`)
/// and written to a new file with mode 0600. `true` when generated.
pub(crate) fn load_or_generate_key(path: &Path) -> Result<(SealingKeys, bool), String> {
    let shown = path.display();
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            let key = SealingKey::generate(1).map_err(|e| format!("{shown}: {e}"))?;
            let written = file
                .write_all(key.to_text().as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.sync_all());
            if let Err(e) = written {
                // No half-written key file left behind for the next start.
                drop(file);
                let _ = fs::remove_file(path);
                return Err(format!("cannot write the sealing key to {shown}: {e}"));
            }
            Ok((SealingKeys::new(key), true))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            check_owner_only(path)?;
            let text = fs::read_to_string(path)
                .map_err(|e| format!("cannot read the sealing key {shown}: {e}"))?;
            let keys = SealingKeys::parse(text.trim()).map_err(|e| {
                format!("{shown} is not a sealing key ({e}); it holds what BANK_SEALING_KEY would")
            })?;
            Ok((keys, false))
        }
        Err(e) => Err(format!("cannot create the sealing key {shown}: {e}")),
    }
}

/// Refuses a key file that its group or others may read or write.
#[cfg(unix)]
fn check_owner_only(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(path)
        .map_err(|e| format!("cannot read the sealing key {}: {e}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "the sealing key {path} is too open (permissions {mode:04o}): it opens every user's \
             TOTP secret and passkeys, so only its owner may read it. \
             Run `chmod 600 {path}` and start again.",
            path = path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_path: &Path) -> Result<(), String> {
    Ok(())
}

/// `url` as it may be printed: a password in it (`user:PASSWORD@host`, or a
/// `password=` parameter) replaced by `****`. SQLite URLs name a file and
/// are printed as they are.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    if scheme.starts_with("sqlite") {
        return url.to_owned();
    }
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    // The user information ends at the last `@` (a password may hold a `/`
    // or an `@` a careless URL left unencoded).
    let mut redacted = format!("{scheme}://");
    match before_query.rsplit_once('@') {
        Some((userinfo, host_and_path)) => {
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    redacted.push_str(user);
                    redacted.push_str(":****");
                }
                None => redacted.push_str(userinfo),
            }
            redacted.push('@');
            redacted.push_str(host_and_path);
        }
        None => redacted.push_str(before_query),
    }
    if let Some(query) = query {
        let parameters: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=****"),
                _ => pair.to_owned(),
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&parameters.join("&"));
    }
    redacted
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn printed_urls_carry_no_password() {
        for (url, printed) in [
            (
                "postgres://bank:s3cret@db.example:5432/bank",
                "postgres://bank:****@db.example:5432/bank",
            ),
            (
                "postgresql://bank:p/a@ss@db/bank?sslmode=require",
                "postgresql://bank:****@db/bank?sslmode=require",
            ),
            (
                "postgres://db/bank?user=bank&password=s3cret&sslmode=require",
                "postgres://db/bank?user=bank&password=****&sslmode=require",
            ),
            ("postgres://bank@db/bank", "postgres://bank@db/bank"),
            ("postgres://db/bank", "postgres://db/bank"),
            (
                "sqlite:///tmp/a@b:c/factors.db",
                "sqlite:///tmp/a@b:c/factors.db",
            ),
            ("sqlite::memory:", "sqlite::memory:"),
        ] {
            assert_eq!(redact_url(url), printed, "{url}");
        }
    }

    #[test]
    fn sqlite_urls_encode_what_sqlx_would_read_otherwise() {
        assert_eq!(
            sqlite_url(Path::new("/tmp/x?y#z%/factors.db")).unwrap(),
            "sqlite:///tmp/x%3Fy%23z%25/factors.db"
        );
        assert_eq!(
            sqlite_url(Path::new("bank-data/factors.db")).unwrap(),
            "sqlite://bank-data/factors.db"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_generated_private_then_reused_and_refused_when_open() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!(
            "bank-core-key-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        let dir = create_data_dir(&dir.join("bank")).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let path = dir.join(SEALING_KEY_FILE);
        let (first, generated) = load_or_generate_key(&path).unwrap();
        assert!(generated);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (again, generated) = load_or_generate_key(&path).unwrap();
        assert!(!generated);
        assert_eq!(again.current().to_text(), first.current().to_text());

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let refused = load_or_generate_key(&path).unwrap_err();
        assert!(
            refused.contains("too open (permissions 0640)") && refused.contains("chmod 600"),
            "{refused}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, "not a key").unwrap();
        let refused = load_or_generate_key(&path).unwrap_err();
        assert!(refused.contains("is not a sealing key"), "{refused}");
        fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
