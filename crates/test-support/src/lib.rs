//! Fixtures shared by the test suites of several crates.

use sqlx::{Connection, Executor, PgConnection};
use std::path::Path;
use std::process::{Command, Stdio};

/// A fresh PostgreSQL database on the server `TEST_DATABASE_URL` names, dropped (best effort) on drop,
/// so every test is isolated and tests run in parallel.
pub struct PgDb {
    admin_url: String,
    name: String,
    /// URL of the fresh database.
    pub url: String,
}

impl PgDb {
    /// `None` (after printing why) when `TEST_DATABASE_URL` is unset: the caller skips its test.
    /// Under `CI` a missing `TEST_DATABASE_URL` is a failure instead.
    pub async fn create() -> Option<PgDb> {
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            // CI must run them: `.ci/run` starts PostgreSQL and sets the variable.
            assert!(
                std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false" || v == "0"),
                "TEST_DATABASE_URL is not set, but CI is: the PostgreSQL tests must run in CI"
            );
            eprintln!("skipped: set TEST_DATABASE_URL=postgres://… to run the PostgreSQL tests");
            return None;
        };
        let name = format!("slipway_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .expect("connect to TEST_DATABASE_URL");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        Some(PgDb {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside a test's runtime, which cannot be blocked on: use a thread of our own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut admin = PgConnection::connect(&url).await?;
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await?;
                admin.close().await
            })
            .map_err(std::io::Error::other)
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{server}/{database}{query}")
}

/// A smart-HTTP git server over TLS on loopback that wants HTTP Basic credentials
/// (`fixtures/git_https_server.py`: git's own `git http-backend` behind Python's HTTP server), for
/// tests of private repositories. Its certificate is for `localhost` and `127.0.0.1`; git trusts
/// it through `GIT_SSL_CAINFO` = [`GitHttpsServer::ca_file`]. Stopped when dropped.
pub struct GitHttpsServer {
    pub port: u16,
    pub ca_file: std::path::PathBuf,
    child: std::process::Child,
}

impl GitHttpsServer {
    /// Serves the bare repositories under `root` to `user` with `token`; the certificate goes into
    /// `dir`. `None`, with a message, when python3 or openssl is missing (a panic under CI, where
    /// they must be there).
    pub fn start(root: &Path, dir: &Path, user: &str, token: &str) -> Option<Self> {
        use std::io::BufRead;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !made.is_ok_and(|s| s.success()) {
            return skip("openssl could not make a test certificate");
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/git_https_server.py");
        let mut child = match Command::new("python3")
            .arg(script)
            .arg(root)
            .args([user, token])
            .arg(&cert)
            .arg(&key)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => return skip(&format!("python3 cannot be run: {e}")),
        };
        let mut line = String::new();
        let stdout = child.stdout.take()?;
        std::io::BufReader::new(stdout).read_line(&mut line).ok()?;
        let port = line.trim().strip_prefix("listening on ")?.parse().ok()?;
        Some(Self {
            port,
            ca_file: cert,
            child,
        })
    }

    /// The HTTPS URL of the repository `name` (e.g. `app.git`) under the served root.
    pub fn url(&self, name: &str) -> String {
        format!("https://localhost:{}/{name}", self.port)
    }
}

impl Drop for GitHttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn skip<T>(why: &str) -> Option<T> {
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipping: {why}");
    None
}
