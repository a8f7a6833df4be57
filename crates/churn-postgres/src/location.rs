//! `postgres://` locations: the connection as libpq users write it (URL, `PG*`
//! environment variables, `~/.pgpass`), plus churn's own query parameters `schema` and
//! `table`. The password never appears in what a location shows of itself.

use crate::tls::{connector, Connector, TlsMode};
use crate::{PgError, Result};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use tokio_postgres::config::Host;

/// Whether `text` is a PostgreSQL location rather than a path.
pub fn is_postgres_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// A database, a schema in it, and maybe a table: where churn reads or writes.
#[derive(Clone)]
pub struct PgLocation {
    /// How to connect (host, port, user, password, database, TLS mode); the async
    /// client's type, so that a server's connection pool can use it too.
    pub config: tokio_postgres::Config,
    /// The schema tables are read from or written to (`public` unless given).
    pub schema: String,
    /// The table a sink writes (`?table=`), when given.
    pub table: Option<String>,
    /// libpq's `sslmode` (default `prefer`).
    pub tls: TlsMode,
    /// `sslrootcert`: the root certificates `verify-ca` and `verify-full` trust.
    pub root_cert: Option<PathBuf>,
    shown: String,
}

impl std::fmt::Debug for PgLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Display for PgLocation {
    /// `postgres://user@host:port/db?schema=s`: never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PgLocation {
    /// Parses `url` (`postgres://[user[:password]@]host[:port]/db?schema=..&table=..&
    /// sslmode=..&sslrootcert=..`), filling what it leaves out from `PGHOST`, `PGPORT`, `PGUSER`,
    /// `PGDATABASE`, `PGPASSWORD`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGCONNECT_TIMEOUT`, `PGAPPNAME` and
    /// then the password file (`PGPASSFILE` or `~/.pgpass`), as libpq does.
    pub fn parse(url: &str) -> Result<PgLocation> {
        PgLocation::parse_with(url, &|name| std::env::var(name).ok())
    }

    /// [`parse`](PgLocation::parse) with the environment given (tests).
    pub fn parse_with(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<PgLocation> {
        let bad = |message: String| PgError::Url {
            message: message.replace(password_in(url).unwrap_or("\u{0}"), "****"),
        };
        if !is_postgres_url(url) {
            return Err(bad(format!(
                "`{url}` is not a postgres:// or postgresql:// URL"
            )));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut schema = None;
        let mut table = None;
        let mut sslmode = None;
        let mut root_cert = None;
        let mut passed = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "schema" => schema = Some(decode(value).map_err(bad)?),
                "table" => table = Some(decode(value).map_err(bad)?),
                "sslmode" => sslmode = Some(decode(value).map_err(bad)?),
                "sslrootcert" => root_cert = Some(PathBuf::from(decode(value).map_err(bad)?)),
                _ => passed.push(pair),
            }
        }
        let sslmode = sslmode.or_else(|| env("PGSSLMODE"));
        let tls = match sslmode.as_deref() {
            None => TlsMode::Prefer,
            Some(mode) => TlsMode::parse(mode).ok_or_else(|| {
                bad(format!(
                    "sslmode `{mode}`: expected disable, allow, prefer, require, verify-ca or verify-full"
                ))
            })?,
        };
        let root_cert = root_cert.or_else(|| env("PGSSLROOTCERT").map(PathBuf::from));
        let libpq_url = if passed.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", passed.join("&"))
        };
        let mut config = tokio_postgres::Config::from_str(&libpq_url)
            .map_err(|e| bad(format!("cannot read the connection URL: {e}")))?;
        if config.get_hosts().is_empty() {
            config.host(env("PGHOST").as_deref().unwrap_or("localhost"));
        }
        if config.get_ports().is_empty() {
            if let Some(p) = env("PGPORT") {
                config.port(
                    p.parse()
                        .map_err(|_| bad(format!("PGPORT `{p}` is not a port number")))?,
                );
            }
        }
        if config.get_user().is_none() {
            if let Some(u) = env("PGUSER").or_else(|| env("USER")) {
                config.user(&u);
            }
        }
        if config.get_dbname().is_none() {
            if let Some(d) = env("PGDATABASE") {
                config.dbname(&d);
            }
        }
        config.ssl_mode(tls.ssl_mode());
        if config.get_connect_timeout().is_none() {
            let seconds = env("PGCONNECT_TIMEOUT").and_then(|s| s.parse::<u64>().ok());
            config.connect_timeout(std::time::Duration::from_secs(seconds.unwrap_or(10).max(2)));
        }
        if config.get_application_name().is_none() {
            config.application_name(env("PGAPPNAME").as_deref().unwrap_or("churn"));
        }
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or_default().to_string();
        let dbname = config.get_dbname().unwrap_or(&user).to_string();
        if config.get_password().is_none() {
            let password = env("PGPASSWORD").or_else(|| {
                let file = env("PGPASSFILE")
                    .map(PathBuf::from)
                    .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
                pgpass_lookup(&file, &host, port, &dbname, &user)
            });
            if let Some(p) = password {
                config.password(p);
            }
        }
        let schema = schema.unwrap_or_else(|| "public".into());
        let mut shown = format!("postgres://{user}@{host}:{port}/{dbname}?schema={schema}");
        if let Some(t) = &table {
            shown.push_str(&format!("&table={t}"));
        }
        Ok(PgLocation {
            config,
            schema,
            table,
            tls,
            root_cert,
            shown,
        })
    }

    /// The TLS connector of this location's `sslmode` (see [`crate::tls`]).
    pub fn tls(&self) -> Result<Connector> {
        connector(self.tls, self.root_cert.as_deref()).map_err(|cause| PgError::Connect {
            target: self.to_string(),
            cause,
        })
    }

    /// Connects (TLS as `sslmode` says). The session reports only warnings and errors
    /// (not "table does not exist, skipping" notices), in UTC.
    pub fn connect(&self) -> Result<postgres::Client> {
        let failed = |e: postgres::Error| PgError::Connect {
            target: self.to_string(),
            cause: crate::describe(&e),
        };
        let mut client = postgres::Config::from(self.config.clone())
            .connect(self.tls()?)
            .map_err(failed)?;
        client.batch_execute(SESSION_SETTINGS).map_err(failed)?;
        Ok(client)
    }

    /// Connects an async client on a runtime of its own (see [`Session`]).
    pub fn session(&self) -> Result<Session> {
        let failed = |e: tokio_postgres::Error| PgError::Connect {
            target: self.to_string(),
            cause: crate::describe(&e),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PgError::Connect {
                target: self.to_string(),
                cause: e.to_string(),
            })?;
        let tls = self.tls()?;
        let client = rt.block_on(async {
            let (client, connection) = self.config.connect(tls).await?;
            tokio::spawn(connection);
            client.batch_execute(SESSION_SETTINGS).await?;
            Ok(client)
        });
        Ok(Session {
            client: client.map_err(failed)?,
            rt,
        })
    }

    /// `schema.name`, quoted for SQL; a `name` holding a dot already names its schema.
    pub fn qualified(&self, name: &str) -> String {
        match name.split_once('.') {
            Some((schema, table)) => format!("{}.{}", quote(schema), quote(table)),
            None => format!("{}.{}", quote(&self.schema), quote(name)),
        }
    }

    /// The schema and table of `name` (a dotted name names its schema).
    pub fn schema_and_table<'a>(&'a self, name: &'a str) -> (&'a str, &'a str) {
        name.split_once('.').unwrap_or((&self.schema, name))
    }
}

/// A connection whose async client runs on a single-threaded runtime of its own: each
/// statement is one `block_on`, and a `COPY ... TO STDOUT` is read whole inside one (the
/// synchronous client's reader enters its runtime once per message, that is per row,
/// which cost about half the time of reading a table).
pub struct Session {
    /// The runtime that drives the connection (polled inside every `block_on`).
    pub rt: tokio::runtime::Runtime,
    pub client: tokio_postgres::Client,
}

/// What every connection sets first: only warnings and errors reported (not "table does
/// not exist, skipping" notices), times in UTC.
const SESSION_SETTINGS: &str = "SET client_min_messages TO warning; SET TimeZone TO 'UTC'";

/// An SQL identifier, quoted.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The password written in a URL, so that messages can hide it.
fn password_in(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then_some(password)
}

/// Percent-decoding of a query value.
fn decode(value: &str) -> std::result::Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = value
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent-escape in `{value}`"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{value}` is not UTF-8 once decoded"))
}

/// The password for a connection from a libpq password file: the first line whose
/// `host:port:database:user` fields match (`*` matches anything; `\:` and `\\` escape).
/// A file readable by group or others is ignored, as libpq ignores it.
fn pgpass_lookup(file: &Path, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                "password file {} has group or world access; ignored (chmod 0600 it)",
                file.display()
            );
            return None;
        }
    }
    let port = port.to_string();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() != 5 {
            continue;
        }
        let matches = |field: &str, value: &str| field == "*" || field == value;
        let host_matches =
            matches(&fields[0], host) || (fields[0] == "localhost" && host.starts_with('/'));
        if host_matches
            && matches(&fields[1], &port)
            && matches(&fields[2], db)
            && matches(&fields[3], user)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().expect("one field").push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn a_url_shows_no_password_and_keeps_churn_parameters() {
        let l = PgLocation::parse_with(
            "postgres://ana:s3cret@db.example:6543/crm?schema=billing&table=churn_scores&sslmode=disable",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(l.schema, "billing");
        assert_eq!(l.table.as_deref(), Some("churn_scores"));
        assert_eq!(l.config.get_password(), Some(&b"s3cret"[..]));
        let shown = format!("{l} {l:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://ana@db.example:6543/crm?schema=billing&table=churn_scores"),
            "{shown}"
        );
        assert_eq!(l.qualified("events"), "\"billing\".\"events\"");
        assert_eq!(l.qualified("raw.ev\"x"), "\"raw\".\"ev\"\"x\"");
        // A bad URL's message hides the password too.
        let e = PgLocation::parse_with("postgres://ana:s3cret@h/db?port=x", &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cret") && e.contains("connection URL"), "{e}");
    }

    #[test]
    fn the_environment_and_the_password_file_fill_what_the_url_leaves_out() {
        let dir = tempfile::tempdir().unwrap();
        let pgpass = dir.path().join("pgpass");
        std::fs::write(
            &pgpass,
            "# comment\nother:5432:*:ana:wrong\ndb\\:x:*:crm:ana:from\\:file\n*:*:*:*:fallback\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let file = pgpass.to_str().unwrap();
        let vars = [
            ("PGHOST", "db:x"),
            ("PGPORT", "6000"),
            ("PGUSER", "ana"),
            ("PGDATABASE", "crm"),
            ("PGPASSFILE", file),
        ];
        let l = PgLocation::parse_with("postgres://", &env(&vars)).unwrap();
        assert_eq!(l.config.get_password(), Some(&b"from:file"[..]));
        assert_eq!(l.to_string(), "postgres://ana@db:x:6000/crm?schema=public");
        let l = PgLocation::parse_with("postgres://bo@elsewhere/crm", &env(&vars)).unwrap();
        assert_eq!(l.config.get_password(), Some(&b"fallback"[..]));
        // PGPASSWORD wins over the file; the URL's password over both.
        let with_env = [("PGPASSWORD", "env"), ("PGPASSFILE", file)];
        let l = PgLocation::parse_with("postgres://bo@h/crm", &env(&with_env)).unwrap();
        assert_eq!(l.config.get_password(), Some(&b"env"[..]));
        let l = PgLocation::parse_with("postgres://bo:url@h/crm", &env(&with_env)).unwrap();
        assert_eq!(l.config.get_password(), Some(&b"url"[..]));
        let l = PgLocation::parse_with(
            "postgres://h/crm?sslmode=verify-full&sslrootcert=/r.pem",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(
            (l.tls, l.root_cert.as_deref()),
            (TlsMode::VerifyFull, Some(Path::new("/r.pem")))
        );
        let l =
            PgLocation::parse_with("postgres://h/crm", &env(&[("PGSSLMODE", "require")])).unwrap();
        assert_eq!(l.tls, TlsMode::Require);
        let e = PgLocation::parse_with("postgres://h/crm?sslmode=maybe", &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslmode `maybe`"), "{e}");
        assert!(PgLocation::parse_with("/data/dir", &env(&[])).is_err());
    }
}
