//! A PostgreSQL server for tests: Debian's binaries, a fresh cluster in a
//! temporary directory, on 127.0.0.1 and a free port, with trust
//! authentication for its `postgres` superuser. One per test process
//! ([`TestPostgres::shared`]); each test takes a fresh database of it.
//!
//! The server runs under a shell that waits on a pipe from this process: when
//! the test process ends, however it ends, the pipe closes and the shell stops
//! the server and removes its directory. `initdb` refuses to run as root (as
//! CI does), so as root the cluster belongs to the `postgres` user that
//! Debian's package creates.
//!
//! A machine without PostgreSQL fails these tests, with what to install: a
//! backend that is never tested is not a backend.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::CatalogLocation;

/// A running test server.
pub struct TestPostgres {
    bin: PathBuf,
    port: u16,
    base: PathBuf,
    /// The server's options, to start it again the same way.
    options: String,
    /// Where the harness's own clients (psql, pg_dump, ...) connect:
    /// `127.0.0.1`, or the socket's directory for a server that asks TCP
    /// clients for certificates.
    host: String,
    /// The shell holding the server; its stdin is the pipe that stops it.
    guard: Mutex<Child>,
}

impl std::fmt::Debug for TestPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPostgres").field("port", &self.port).field("base", &self.base).finish()
    }
}

static SHARED: OnceLock<TestPostgres> = OnceLock::new();
static DATABASES: AtomicU32 = AtomicU32::new(0);

/// The directory of Debian's PostgreSQL programs (the newest installed), or
/// the directory of an `initdb` in /usr/local/bin.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let local = Path::new("/usr/local/bin/initdb");
    if let Ok(real) = local.canonicalize() {
        return real.parent().expect("a file has a directory").to_owned();
    }
    panic!(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): the catalog's tests run \
         against it; `apt-get install postgresql` (as .ci/run does)"
    );
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program args...`, as the `postgres` user when this process is root.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

impl TestPostgres {
    /// The server of this test process, started on first use.
    pub fn shared() -> &'static TestPostgres {
        SHARED.get_or_init(TestPostgres::start)
    }

    /// Starts a new server for tests (no fsync: a test's data need not
    /// survive a power cut); it stops when this process ends.
    pub fn start() -> TestPostgres {
        TestPostgres::start_with(false, None)
    }

    /// Starts a new server that takes TCP connections over TLS only
    /// (`hostssl` in pg_hba.conf), with the certificate `cert_pem` and its
    /// key `key_pem`; the Unix socket stays open, as on a real server.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> TestPostgres {
        TestPostgres::start_with(false, Some((cert_pem, key_pem, None)))
    }

    /// [`TestPostgres::start_tls`], and every TCP client must also show a
    /// certificate signed by a root of `client_ca_pem` whose common name is
    /// the user it connects as (`hostssl ... cert`).
    pub fn start_tls_with_client_certs(cert_pem: &str, key_pem: &str, client_ca_pem: &str) -> TestPostgres {
        TestPostgres::start_with(false, Some((cert_pem, key_pem, Some(client_ca_pem))))
    }

    /// Starts a new server that syncs its commits as a production one does
    /// (for benchmarks); it stops when this process ends.
    pub fn start_durable() -> TestPostgres {
        TestPostgres::start_with(true, None)
    }

    fn start_with(durable: bool, tls: Option<(&str, &str, Option<&str>)>) -> TestPostgres {
        let bin = bin_dir();
        // As root the server runs as `postgres`, which must reach the
        // directory: /tmp, whatever TMPDIR says (it may be root's own).
        let tmp = if is_root() { PathBuf::from("/tmp") } else { std::env::temp_dir() };
        let base = tmp.join(format!(
            "leakwatch-pg-{}-{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&base).expect("creating the server's directory");
        if is_root() {
            let status = Command::new("chown").arg("postgres:").arg(&base).status().expect("running chown");
            assert!(
                status.success(),
                "chown postgres {}: is Debian's postgresql package installed?",
                base.display()
            );
        }
        let data = base.join("data");
        let out = as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-locale", "-E", "UTF8", "-N"])
            .output()
            .expect("running initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        // The shell stops the server (fast shutdown) and removes its files
        // once its stdin closes: at the end of this process.
        let mut settings = if durable {
            String::new()
        } else {
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off".into()
        };
        if let Some((cert, key, client_ca)) = tls {
            let (cert_file, key_file) = (base.join("server.crt"), base.join("server.key"));
            std::fs::write(&cert_file, cert).expect("writing the server's certificate");
            std::fs::write(&key_file, key).expect("writing the server's key");
            // TCP only with TLS (and a client certificate, when asked); the
            // socket as before.
            let method = if client_ca.is_some() { "cert" } else { "trust" };
            std::fs::write(
                data.join("pg_hba.conf"),
                format!(
                    "local all all trust\nhostssl all all 127.0.0.1/32 {method}\nhostssl all all ::1/128 {method}\n"
                ),
            )
            .expect("writing pg_hba.conf");
            if let Some(ca) = client_ca {
                let ca_file = base.join("client-ca.crt");
                std::fs::write(&ca_file, ca).expect("writing the clients' CA");
                settings.push_str(&format!(" -c ssl_ca_file='{}'", ca_file.display()));
                if is_root() {
                    let status =
                        Command::new("chown").arg("postgres:").arg(&ca_file).status().expect("chown");
                    assert!(status.success(), "chown postgres {}", ca_file.display());
                }
            }
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
            if is_root() {
                let status = Command::new("chown")
                    .arg("postgres:")
                    .args([&cert_file, &key_file])
                    .status()
                    .expect("chown");
                assert!(status.success(), "chown postgres {}", key_file.display());
            }
            settings.push_str(&format!(
                " -c ssl=on -c ssl_cert_file='{}' -c ssl_key_file='{}'",
                cert_file.display(),
                key_file.display()
            ));
        }
        let options =
            format!("-k '{}' -h 127.0.0.1 -p {port} {settings} -c max_connections=200", base.display());
        // `pg_ctl stop` stops the server even when a test restarted it
        // (another process then); `kill` is for one that never started.
        let script = format!(
            "'{postgres}' -D '{data}' {options} >'{base}/log' 2>&1 & pid=$!; cat >/dev/null; \
             '{pg_ctl}' -D '{data}' -m fast -w stop >/dev/null 2>&1 || kill -INT $pid; wait $pid; rm -rf '{base}'",
            postgres = bin.join("postgres").display(),
            pg_ctl = bin.join("pg_ctl").display(),
            data = data.display(),
            base = base.display(),
        );
        let guard = as_server_user(Path::new("/bin/sh"))
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting postgres");
        let host = match tls {
            Some((_, _, Some(_))) => base.display().to_string(),
            _ => "127.0.0.1".to_owned(),
        };
        let server = TestPostgres { bin, port, base, options, host, guard: Mutex::new(guard) };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", &self.host, "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            let log = std::fs::read_to_string(self.base.join("log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "PostgreSQL did not start within a minute: {log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A program of the PostgreSQL installation the server runs from
    /// (`pg_dump`, `pg_restore`, ...), with the arguments that reach this
    /// server as its superuser.
    pub fn client(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        c.args(["-h", &self.host, "-U", "postgres", "-p", &self.port.to_string()]);
        c
    }

    /// The directory of the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.base
    }

    /// Runs SQL as the superuser in `database`, through psql; its output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", &self.host, "-U", "postgres"])
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql])
            .output()
            .expect("running psql");
        assert!(out.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Like [`TestPostgres::psql`], but the error text when the statement fails.
    pub fn psql_err(&self, database: &str, user: &str, sql: &str) -> Option<String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", &self.host, "-U", user])
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql])
            .output()
            .expect("running psql");
        (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// A new, empty database; its name.
    pub fn fresh_database(&self) -> String {
        let name = format!("t{}_{}", std::process::id(), DATABASES.fetch_add(1, Ordering::Relaxed));
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        name
    }

    /// The URL of `database` as `user` (no password: the test cluster trusts
    /// local connections).
    pub fn url(&self, user: &str, database: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{database}", self.port)
    }

    /// A fresh database's location, as its superuser.
    pub fn fresh_catalog(&self) -> CatalogLocation {
        CatalogLocation::Postgres(self.url("postgres", &self.fresh_database()))
    }

    /// Stops the server (a fast shutdown: clients are disconnected), waits
    /// `down`, and starts it again on the same port with the same data, as
    /// an operator's restart does.
    pub fn restart(&self, down: Duration) {
        self.shut_down();
        std::thread::sleep(down);
        self.start_again();
    }

    /// Stops the server (a fast shutdown: clients are disconnected) until
    /// [`TestPostgres::start_again`]: an outage of the database.
    pub fn shut_down(&self) {
        let out = as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.base.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .expect("running pg_ctl stop");
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts the server [`TestPostgres::shut_down`] stopped, on the same
    /// port with the same data, and waits until it takes connections.
    pub fn start_again(&self) {
        let out = as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.base.join("data"))
            .arg("-l")
            .arg(self.base.join("log"))
            .args(["-o", &self.options, "-w", "start"])
            .stdout(Stdio::null())
            .output()
            .expect("running pg_ctl start");
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
        self.wait_ready();
    }

    /// Stops the server now (it stops at the end of the process otherwise).
    pub fn stop(self) {
        let mut guard = self.guard.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(mut stdin) = guard.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = guard.wait();
    }
}

/// Runs `test` on a fresh catalog of each backend: a SQLite file in a
/// temporary directory, then a new database of the shared test server.
pub fn each_backend(test: impl Fn(&CatalogLocation)) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    test(&CatalogLocation::in_data_dir(tmp.path()));
    test(&TestPostgres::shared().fresh_catalog());
}
