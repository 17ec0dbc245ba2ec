//! A throwaway Garage cluster for tests and benchmarks: three `garage`
//! nodes on 127.0.0.1 with replication factor 3, their layout assigned and
//! applied, one bucket and one key, stopped and removed when dropped.
//!
//! The binary is `$GARAGE_BIN`, or `garage` on `PATH` (`.ci/run` installs it
//! with `cargo install --locked garage`). A missing binary is an error, never
//! a skipped test.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::storage::S3Config;

/// The region the nodes answer for.
pub const REGION: &str = "garage";
pub const BUCKET: &str = "leakwatch";

/// A running cluster; dropping it stops the nodes and removes their files.
pub struct Cluster {
    dir: PathBuf,
    binary: PathBuf,
    nodes: Vec<Node>,
    pub key_id: String,
    pub secret: String,
}

struct Node {
    config: PathBuf,
    s3_port: u16,
    rpc_port: u16,
    process: Option<Child>,
}

/// The `garage` binary: `$GARAGE_BIN`, else the first on `PATH`.
pub fn binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("GARAGE_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("GARAGE_BIN={} is not a file", bin.display()))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("garage"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "no garage binary: set GARAGE_BIN or put garage on PATH (cargo install --locked garage \
             --version 2.5.0 --no-default-features --features bundled-libs,lmdb)"
                .to_owned()
        })
}

/// `n` distinct free ports on 127.0.0.1: every listener is held until all are
/// chosen, so two nodes (or two APIs of one) never get the same port.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1")).collect();
    listeners.iter().map(|l| l.local_addr().expect("a bound listener's address").port()).collect()
}

impl Cluster {
    /// Starts three nodes with their files under `dir` (created; removed on
    /// drop), and waits until the bucket answers.
    pub fn start(dir: &Path) -> Result<Cluster, String> {
        // A port chosen free can be taken by another process before a node
        // binds it, and the cluster then never forms: start again on new
        // ports rather than fail the test that needs it.
        let mut errors = Vec::new();
        for _ in 0..3 {
            match Cluster::start_once(dir) {
                Ok(cluster) => return Ok(cluster),
                Err(e) => errors.push(e),
            }
        }
        Err(errors.join("\n--- and on a new start:\n"))
    }

    fn start_once(dir: &Path) -> Result<Cluster, String> {
        let binary = binary()?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let secret: [u8; 32] = rand::random();
        let rpc_secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let mut nodes = Vec::new();
        let ports = free_ports(9);
        for n in 0..3 {
            let root = dir.join(format!("node{n}"));
            std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
            let (s3_port, rpc_port, admin_port) = (ports[3 * n], ports[3 * n + 1], ports[3 * n + 2]);
            let mut config = String::new();
            let _ = write!(
                config,
                r#"metadata_dir = "{root}/meta"
data_dir = "{root}/data"
db_engine = "lmdb"
compression_level = "none"
replication_factor = 3
consistency_mode = "consistent"
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{rpc_secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
"#,
                root = root.display()
            );
            let path = root.join("garage.toml");
            std::fs::write(&path, config).map_err(|e| format!("{}: {e}", path.display()))?;
            nodes.push(Node { config: path, s3_port, rpc_port, process: None });
        }
        let key: [u8; 12] = rand::random();
        let key_id = format!("GK{}", key.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let secret: [u8; 32] = rand::random();
        let secret = secret.iter().map(|b| format!("{b:02x}")).collect();
        let mut cluster = Cluster { dir: dir.to_owned(), binary, nodes, key_id, secret };
        for n in 0..3 {
            cluster.start_node(n)?;
        }
        if let Err(e) = cluster.configure() {
            // The nodes' own words, before dropping the cluster removes them.
            let logs: String = (0..3)
                .map(|n| {
                    let log = cluster.nodes[n].config.with_file_name("garage.log");
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(5).collect();
                    format!(
                        "\nnode {n} log, last lines:\n{}",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    )
                })
                .collect();
            return Err(format!("{e}{logs}"));
        }
        Ok(cluster)
    }

    fn start_node(&mut self, n: usize) -> Result<(), String> {
        let node = &mut self.nodes[n];
        let log =
            std::fs::File::create(node.config.with_file_name("garage.log")).map_err(|e| e.to_string())?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&node.config)
            .arg("server")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        node.process = Some(child);
        Ok(())
    }

    /// Runs the CLI against node `n`, retrying while the nodes boot.
    fn garage(&self, n: usize, args: &[&str]) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = Command::new(&self.binary)
                .arg("-c")
                .arg(&self.nodes[n].config)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("running {}: {e}", self.binary.display()))?;
            if out.status.success() {
                return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "garage {}: {}{}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Connects the nodes, assigns and applies the layout, makes the key and
    /// the bucket, and waits for the S3 API to serve it.
    fn configure(&self) -> Result<(), String> {
        let mut ids = Vec::new();
        for n in 0..3 {
            let id = self.garage(n, &["node", "id", "-q"])?;
            let id = id.trim().split('@').next().unwrap_or_default().to_owned();
            ids.push(id);
        }
        for (n, id) in ids.iter().enumerate().skip(1) {
            let peer = format!("{id}@127.0.0.1:{}", self.nodes[n].rpc_port);
            self.garage(0, &["node", "connect", &peer])?;
        }
        for id in &ids {
            self.garage(0, &["layout", "assign", "-z", "dc1", "-c", "1G", id])?;
        }
        self.garage(0, &["layout", "apply", "--version", "1"])?;
        self.garage(0, &["key", "import", "--yes", "-n", "leakwatch", &self.key_id, &self.secret])?;
        self.garage(0, &["bucket", "create", BUCKET])?;
        self.garage(0, &["bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", &self.key_id])?;
        self.wait_for_bucket()
    }

    /// Waits until every node's S3 API writes and reads the bucket.
    fn wait_for_bucket(&self) -> Result<(), String> {
        use object_store::ObjectStoreExt;
        crate::storage::install_tls_provider();
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        for n in 0..3 {
            let store = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(BUCKET)
                .with_region(REGION)
                .with_endpoint(format!("http://127.0.0.1:{}", self.nodes[n].s3_port))
                .with_allow_http(true)
                .with_access_key_id(&self.key_id)
                .with_secret_access_key(&self.secret)
                .build()
                .map_err(|e| e.to_string())?;
            let deadline = Instant::now() + Duration::from_secs(60);
            let probe = object_store::path::Path::from(format!("probe-{n}"));
            loop {
                let ok = runtime.block_on(async {
                    store.put(&probe, object_store::PutPayload::from_static(b"probe")).await?;
                    store.get(&probe).await?.bytes().await?;
                    store.delete(&probe).await
                });
                match ok {
                    Ok(()) => break,
                    Err(e) if Instant::now() > deadline => {
                        return Err(format!("node {n} never served the bucket: {e}"))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        }
        Ok(())
    }

    /// How to reach the cluster through node `n`'s S3 API.
    pub fn config(&self, n: usize) -> S3Config {
        S3Config {
            endpoint: Some(self.endpoint(n)),
            region: Some(REGION.to_owned()),
            access_key_id: Some(self.key_id.clone()),
            secret_access_key: Some(self.secret.clone()),
            allow_http: true,
        }
    }

    pub fn endpoint(&self, n: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[n].s3_port)
    }

    /// The `AWS_*` variables of [`Cluster::config`], for a `leakwatch` process.
    pub fn env(&self, n: usize) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint(n)),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }

    /// Stops node `n` (SIGKILL: no goodbye to its peers).
    pub fn stop_node(&mut self, n: usize) {
        if let Some(mut child) = self.nodes[n].process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in 0..self.nodes.len() {
            self.stop_node(n);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
