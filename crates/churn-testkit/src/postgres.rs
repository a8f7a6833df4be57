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

/// The server binaries' directory, or `None` after saying loudly on standard error that
/// `test` did not run (a panic with `CHURN_REQUIRE_POSTGRES=1`).
fn binaries(test: &str) -> Option<PathBuf> {
    let bin = find_bin();
    if bin.is_none() {
        let message = format!(
            "\n==== SKIPPED: {test}: no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin; install Debian's `postgresql` package to run it ====\n"
        );
        if std::env::var("CHURN_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
            panic!("{message}(CHURN_REQUIRE_POSTGRES=1: PostgreSQL tests must run here)");
        }
        let _ = std::io::stderr().write_all(message.as_bytes());
    }
    bin
}

impl PgServer {
    /// Starts a fresh server, or explains on standard error why none could start.
    pub fn start(test: &str) -> Option<PgServer> {
        Some(PgServer::start_with(binaries(test)?, false))
    }

    /// Starts a server that accepts TLS connections only, with a certificate for
    /// `localhost` signed by a test authority (`root.crt` in
    /// [`data_dir`](PgServer::data_dir)), made with `openssl`; or explains why none
    /// could start.
    pub fn start_tls(test: &str) -> Option<PgServer> {
        Some(PgServer::start_with(binaries(test)?, true))
    }

    fn start_with(bin: PathBuf, tls: bool) -> PgServer {
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
        let mut server = PgServer {
            bin,
            data,
            port: 0,
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
        if tls {
            server.make_certificate();
        }
        // The port was free when asked for, but a server starting beside this one (tests
        // run in parallel) may take it first: a start that fails is tried again on
        // another port, and the last failure shows the server's log.
        for attempt in 1..=3 {
            server.port = free_port();
            let mut options = format!(
                "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                server.port
            );
            if tls {
                options.push_str(" -c ssl=on");
            }
            match server.pg_ctl_start(&options) {
                Ok(()) => return server,
                Err(e) if attempt == 3 => {
                    let log =
                        std::fs::read_to_string(server.data.join("server.log")).unwrap_or_default();
                    panic!("{e}\nserver log:\n{log}");
                }
                Err(_) => {}
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// A test certificate authority (`root.crt` in the data directory, what clients
    /// trust), a server certificate for `localhost` it signed, and a `pg_hba.conf` that
    /// rejects connections without TLS.
    fn make_certificate(&self) {
        let file = |name: &str| self.data.join(name);
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .current_dir(&self.data)
                .args(args)
                .output()
                .expect("openssl (Debian's openssl package) makes the test certificates");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=churn test CA",
            "-keyout",
            "root.key",
            "-out",
            "root.crt",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            file("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "root.crt",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ]);
        let (crt, key) = (file("server.crt"), file("server.key"));
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::fs::set_permissions(&crt, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let hba = self.data.join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(&hba, format!("hostnossl all all all reject\n{rules}")).unwrap();
        if let Some(user) = &self.run_as {
            for f in [&crt, &key, &hba] {
                let status = Command::new("chown").arg(user).arg(f).status().unwrap();
                assert!(status.success());
            }
        }
    }

    fn pg_ctl_start(&self, options: &str) -> Result<(), String> {
        let log = self.data.join("server.log");
        self.try_run(
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
        )
    }

    fn run(&self, program: &str, args: &[&str]) {
        if let Err(e) = self.try_run(program, args) {
            panic!("{e}");
        }
    }

    fn try_run(&self, program: &str, args: &[&str]) -> Result<(), String> {
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
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
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
        if let Err(e) = self.pg_ctl_start(&options) {
            panic!("{e}");
        }
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
