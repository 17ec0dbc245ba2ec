//! What the integration tests share: running the `leakwatch` binary with bytes on
//! its standard input and collecting what it did.

#![allow(dead_code)] // Each test binary uses its own part of this.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to its end, with `stdin` (or nothing) on its standard input.
pub fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Run {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the leakwatch binary runs");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        // Written from a thread so a large input cannot deadlock against a full stdout.
        let bytes = bytes.to_vec();
        let writer = std::thread::spawn(move || pipe.write_all(&bytes));
        let out = child.wait_with_output().expect("waits");
        writer.join().expect("writer thread").expect("stdin accepted");
        return Run::from(out);
    }
    Run::from(child.wait_with_output().expect("waits"))
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn ok(self, what: &str) -> Run {
        assert_eq!(self.code, 0, "{what}: exit {}\nstderr: {}", self.code, self.stderr);
        self
    }

    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }
}

/// The binary on the data directory `data`, with nothing on its standard
/// input and its data key beside the directory, not in the user's config
/// directory.
pub fn leakwatch(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakwatch"));
    cmd.arg("--data").arg(data).stdin(Stdio::null());
    cmd.env("LEAKWATCH_KEY_FILE", data.with_extension("key"));
    cmd
}

/// Starts `serve` on an ephemeral loopback port and reads the port from its log.
pub fn serve(data: &Path) -> (Child, SocketAddr) {
    serve_command(leakwatch(data))
}

/// [`serve`] from a command set up by the caller (its environment, the
/// catalog it names).
pub fn serve_command(cmd: Command) -> (Child, SocketAddr) {
    serve_with(cmd, &[])
}

/// [`serve_command`] with `extra` options of `serve`.
pub fn serve_with(mut cmd: Command, extra: &[&str]) -> (Child, SocketAddr) {
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("serve logs its address").unwrap();
        if let Some(rest) = line.split_once("listening on http://").map(|(_, r)| r) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

/// A temporary directory for one test: a data directory `data` in it (its key
/// beside it, as [`leakwatch`] runs it) and the files the test writes.
pub struct Env {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    /// The catalog every command gets (`LEAKWATCH_CATALOG`), when not the
    /// data directory's.
    catalog: Option<String>,
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        Env { _tmp: tmp, root, catalog: None }
    }

    /// As [`Env::new`], every command on the catalog at `url`.
    pub fn with_catalog(url: &str) -> Env {
        Env { catalog: Some(url.to_owned()), ..Env::new() }
    }

    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Writes `text` to `name` in the directory; returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.root.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// The binary on the test's data directory ([`leakwatch`]).
    pub fn command(&self) -> Command {
        let mut cmd = leakwatch(&self.data());
        if let Some(url) = &self.catalog {
            cmd.env("LEAKWATCH_CATALOG", url);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = self.command();
        cmd.args(args);
        run(cmd, None)
    }
}

/// One request over a fresh connection: the status, the `Set-Cookie` values
/// (name=value) and the body.
pub fn http(addr: SocketAddr, request: &str) -> (u16, Vec<String>, String) {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(15))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let cookies = head
        .lines()
        .filter_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .collect();
    (head[9..12].parse().unwrap(), cookies, body.to_owned())
}

/// Signs in at `addr` through the web form, as a browser would: the status of
/// the form's answer (303 when signed in) and the session cookie it set
/// (name=value), if any.
pub fn sign_in(addr: SocketAddr, secret: &str) -> (u16, Option<String>) {
    let (status, cookies, _) = http(
        addr,
        "GET /ui/signin HTTP/1.1\r\nHost: test\r\nUser-Agent: cli-tests\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    let signin = cookies.iter().find(|c| c.starts_with("lw_signin=")).unwrap();
    let token = signin.split_once('=').unwrap().1;
    let body = format!("csrf={token}&key={secret}");
    let (status, cookies, _) = http(
        addr,
        &format!(
            "POST /ui/signin HTTP/1.1\r\nHost: test\r\nUser-Agent: cli-tests\r\nCookie: {signin}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let session = cookies.into_iter().find(|c| c.starts_with("lw_session=") && c.len() > "lw_session=".len());
    (status, session)
}

/// How one `leakwatch` process reaches its store: a local directory, or a
/// bucket (`s3://...`) through the node whose `AWS_*` variables are in `env`,
/// with a cache of its own; and its catalog (a SQLite path or a PostgreSQL URL).
pub struct Target {
    pub data: String,
    pub key: PathBuf,
    pub catalog: String,
    pub cache: Option<PathBuf>,
    /// Variables the process gets besides the key file's.
    pub env: Vec<(&'static str, String)>,
}

impl Target {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakwatch"));
        cmd.arg("--data").arg(&self.data).arg("--catalog").arg(&self.catalog).args(args).stdin(Stdio::null());
        cmd.env("LEAKWATCH_KEY_FILE", &self.key).env_remove("LEAKWATCH_DATA");
        if let Some(cache) = &self.cache {
            cmd.arg("--cache-dir").arg(cache);
        }
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
        cmd
    }

    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        run(self.command(args), stdin)
    }

    pub fn serve(&self) -> (Child, SocketAddr) {
        serve_command(self.command(&[]))
    }
}
