//! A real PostgreSQL server for tests: `initdb` and `pg_ctl` from the machine's
//! PostgreSQL (on `PATH`, or Debian's `/usr/lib/postgresql/*/bin`), a cluster in a temp
//! directory, listening on a free loopback port with password (SCRAM) authentication.
//! As root (CI containers), the server runs as the `postgres` system user, since
//! PostgreSQL refuses to run as root.
//!
//! When no server binaries exist, [`PgServer::start`] says so loudly on standard error
//! and returns `None`, so the suite reports which tests did not run; with
//! `CHURN_REQUIRE_POSTGRES=1` (set by `.ci/run`) it panics instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The password of the test server's `churn` user.
pub const PASSWORD: &str = "t0p-secret";

/// A running test server; stopped (immediately) when dropped.
pub struct PgServer {
    bin: PathBuf,
    data: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
    run_as: Option<String>,
    _dir: tempfile::TempDir,
}

fn find_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").is_file() && p.join("pg_ctl").is_file())
    });
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PgServer {
    /// Starts a fresh server, or explains on standard error why none could start.
    pub fn start(test: &str) -> Option<PgServer> {
        let Some(bin) = find_bin() else {
            let message = format!(
                "\n==== SKIPPED: {test}: no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin; install Debian's `postgresql` package to run it ====\n"
            );
            if std::env::var("CHURN_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("{message}(CHURN_REQUIRE_POSTGRES=1: PostgreSQL tests must run here)");
            }
            let _ = std::io::stderr().write_all(message.as_bytes());
            return None;
        };
        Some(PgServer::start_with(bin, &[]))
    }

    /// Starts a server with extra `postgres -c` settings.
    pub fn start_with(bin: PathBuf, settings: &[&str]) -> PgServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let run_as = is_root().then(|| "postgres".to_string());
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if let Some(user) = &run_as {
            // The server's user must reach its directory.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::create_dir(&data).unwrap();
            let status = Command::new("chown")
                .arg(user)
                .arg(&data)
                .status()
                .expect("chown");
            assert!(status.success(), "chown {user} {}", data.display());
        }
        let port = free_port();
        let server = PgServer {
            bin,
            data,
            port,
            run_as,
            _dir: dir,
        };
        server.run(
            "initdb",
            &[
                "-D",
                server.data.to_str().unwrap(),
                "-U",
                "churn",
                "--pwfile",
                pwfile.to_str().unwrap(),
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        let mut options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        );
        for s in settings {
            options.push_str(&format!(" -c {s}"));
        }
        server.pg_ctl_start(&options);
        server
    }

    fn pg_ctl_start(&self, options: &str) {
        let log = self.data.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                self.data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                options,
            ],
        );
    }

    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd.args(args).output().expect("run a PostgreSQL program");
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A URL for database `postgres` as user `churn`, schema `schema`, with the password.
    pub fn url(&self, schema: &str) -> String {
        format!(
            "postgres://churn:{PASSWORD}@127.0.0.1:{}/postgres?schema={schema}",
            self.port
        )
    }

    /// The same URL without the password (give it in `PGPASSWORD`).
    pub fn url_without_password(&self, schema: &str) -> String {
        format!(
            "postgres://churn@127.0.0.1:{}/postgres?schema={schema}",
            self.port
        )
    }

    /// Stops the server (fast shutdown).
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "stop",
                "-m",
                "fast",
                "-w",
                "-D",
                self.data.to_str().unwrap(),
            ],
        );
    }

    /// Starts it again after [`stop`](PgServer::stop), on the same port.
    pub fn restart(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off",
            self.port
        );
        self.pg_ctl_start(&options);
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl");
        let data = self.data.to_str().unwrap_or_default().to_string();
        let args = ["stop", "-m", "immediate", "-D", data.as_str()];
        let _ = match &self.run_as {
            Some(user) => Command::new("runuser")
                .arg("-u")
                .arg(user)
                .arg("--")
                .arg(&exe)
                .args(args)
                .output(),
            None => Command::new(&exe).args(args).output(),
        };
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
