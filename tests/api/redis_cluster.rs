//! Test support: a real Redis Cluster of `redis-server --cluster-enabled yes`
//! nodes on free loopback ports, made with `redis-cli --cluster create`, its
//! files in a temporary directory.
//!
//! [`shared`] starts one for the whole test binary (tests keep apart by key
//! prefix). Its nodes run under a small shell that kills them when its stdin
//! closes, which happens however the test process ends, so no node outlives
//! the run. A test that kills nodes starts its own with [`RedisCluster::start`];
//! dropping it kills its nodes and removes its files.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::helpers::{free_port, wait_for_port};

/// The cluster every test may share (never kill its nodes).
pub fn shared() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| RedisCluster::start(3))
}

/// Certificates for a cluster that speaks only TLS, to clients and between nodes.
pub struct ClusterTls {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl ClusterTls {
    fn node_args(&self, port: u16) -> Vec<String> {
        let path = |p: &PathBuf| p.display().to_string();
        [
            "--port".to_owned(),
            "0".to_owned(),
            "--tls-port".to_owned(),
            port.to_string(),
            "--tls-cluster".to_owned(),
            "yes".to_owned(),
            "--tls-replication".to_owned(),
            "yes".to_owned(),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
            "--tls-cert-file".to_owned(),
            path(&self.cert_file),
            "--tls-key-file".to_owned(),
            path(&self.key_file),
            "--tls-ca-cert-file".to_owned(),
            path(&self.ca_file),
        ]
        .into()
    }
}

pub struct RedisNode {
    pub port: u16,
    /// The CA to trust when the node speaks TLS only.
    tls_ca: Option<Vec<u8>>,
    pid: u32,
    /// The node lives while this pipe is open.
    lifeline: Option<ChildStdin>,
    guard: Child,
}

impl RedisNode {
    /// Starts a node with its files in `cluster_dir/PORT` (removed when it dies).
    pub fn start(
        cluster_dir: &std::path::Path,
        port: u16,
        bus_port: u16,
        tls: Option<&ClusterTls>,
    ) -> Self {
        let dir = cluster_dir.join(port.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let port_text = port.to_string();
        let mut args: Vec<String> = [
            "--port",
            &port_text,
            "--cluster-port",
            &bus_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "1000",
            "--cluster-require-full-coverage",
            "no",
            "--cluster-replica-validity-factor",
            "0",
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
            "--dir",
            &dir.display().to_string(),
            "--logfile",
            "redis.log",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        // Later settings win: with TLS, the plain port is switched off.
        args.extend(tls.map(|tls| tls.node_args(port)).unwrap_or_default());
        let mut guard = Command::new("sh")
            .arg("-c")
            .arg(concat!(
                r#"redis-server "$@" </dev/null >/dev/null 2>&1 & echo $!; read _; "#,
                r#"kill -9 $! 2>/dev/null; wait $!; rm -rf "$NODE_DIR"; rmdir "$CLUSTER_DIR" 2>/dev/null"#,
            ))
            .arg("redis-node")
            .args(&args)
            .env("NODE_DIR", &dir)
            .env("CLUSTER_DIR", cluster_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs");
        let mut line = String::new();
        BufReader::new(guard.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("the guard prints the pid");
        let pid = line.trim().parse().expect("a pid");
        let lifeline = guard.stdin.take();
        wait_for_port(port, "redis-server (cluster node)");
        Self {
            port,
            tls_ca: tls.map(|tls| std::fs::read(&tls.ca_file).unwrap()),
            pid,
            lifeline,
            guard,
        }
    }

    /// Kills the node at once, as a crash would.
    pub fn kill(&mut self) {
        if self.lifeline.take().is_some() {
            Command::new("kill")
                .args(["-9", &self.pid.to_string()])
                .stderr(Stdio::null())
                .status()
                .ok();
            // The closed lifeline lets the guard clean up and exit.
            self.guard.wait().ok();
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls_ca.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn connection(&self) -> redis::Connection {
        let client = match &self.tls_ca {
            Some(ca) => {
                smsauth::tls::install_crypto_provider();
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone()),
                };
                redis::Client::build_with_tls(self.url(), certificates).unwrap()
            }
            None => redis::Client::open(self.url()).unwrap(),
        };
        client
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap()
    }
}

impl Drop for RedisNode {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct RedisCluster {
    pub nodes: Vec<RedisNode>,
    dir: PathBuf,
}

/// `REDIS_CLUSTER_NODES` for nodes on these ports.
pub fn seeds_of(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|port| format!("redis://127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl RedisCluster {
    /// `masters` masters, each with one replica, all slots assigned, every
    /// node agreeing the cluster is ok and every replica in sync.
    pub fn start(masters: usize) -> Self {
        Self::start_on(&Self::free_ports(masters))
    }

    /// Client ports for a cluster of `masters` masters with a replica each.
    pub fn free_ports(masters: usize) -> Vec<u16> {
        (0..masters * 2).map(|_| free_port()).collect()
    }

    /// A cluster on these client ports (half of them masters).
    pub fn start_on(ports: &[u16]) -> Self {
        Self::start_with(ports, None)
    }

    /// `masters` masters with a replica each, speaking TLS only.
    pub fn start_tls(masters: usize, tls: &ClusterTls) -> Self {
        Self::start_with(&Self::free_ports(masters), Some(tls))
    }

    fn start_with(ports: &[u16], tls: Option<&ClusterTls>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "smsauth-test-cluster-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let nodes: Vec<RedisNode> = ports
            .iter()
            .map(|port| RedisNode::start(&dir, *port, free_port(), tls))
            .collect();
        let cluster = Self { nodes, dir };
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let mut create = Command::new("redis-cli");
        if let Some(tls) = tls {
            create.arg("--tls").arg("--cacert").arg(&tls.ca_file);
        }
        let created = create
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli is installed");
        assert!(created.success(), "redis-cli --cluster create failed");
        cluster.wait_until_healthy(Duration::from_secs(30));
        cluster
    }

    /// Seed nodes for `REDIS_CLUSTER_NODES`.
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .map(RedisNode::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn live_nodes(&self) -> impl Iterator<Item = &RedisNode> {
        self.nodes.iter().filter(|node| node.is_alive())
    }

    /// Waits until every live node sees all slots served and every replica is in sync.
    pub fn wait_until_healthy(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let healthy = self.live_nodes().all(|node| {
                let mut connection = node.connection();
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut connection)
                    .unwrap_or_default();
                let replication: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut connection)
                    .unwrap_or_default();
                info.contains("cluster_state:ok")
                    && info.contains("cluster_slots_ok:16384")
                    && (replication.contains("role:master")
                        || replication.contains("master_link_status:up"))
            });
            if healthy {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster did not settle");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The hash slot of `key`, as the cluster computes it.
    pub fn slot_of(&self, key: &str) -> u16 {
        let mut connection = self.live_nodes().next().unwrap().connection();
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut connection)
            .unwrap()
    }

    /// `CLUSTER NODES` as a live node sees it, one field list per node.
    fn node_table(&self) -> Vec<Vec<String>> {
        let mut connection = self.live_nodes().next().unwrap().connection();
        let table: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query(&mut connection)
            .unwrap();
        table
            .lines()
            .map(|line| line.split_whitespace().map(str::to_owned).collect())
            .collect()
    }

    fn index_of_address(&self, address: &str) -> usize {
        let port: u16 = address
            .split(['@', ':'])
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap();
        self.nodes.iter().position(|n| n.port == port).unwrap()
    }

    /// The index in `nodes` of the replica of the master at `master`.
    pub fn replica_of(&self, master: usize) -> usize {
        let table = self.node_table();
        let master_port = self.nodes[master].port;
        let master_id = table
            .iter()
            .find(|fields| self.index_of_address(&fields[1]) == master)
            .map(|fields| fields[0].clone())
            .unwrap_or_else(|| panic!("no node on port {master_port}"));
        table
            .iter()
            .find(|fields| fields[2].contains("slave") && fields[3] == master_id)
            .map(|fields| self.index_of_address(&fields[1]))
            .unwrap_or_else(|| panic!("the master on port {master_port} has no replica"))
    }

    /// The index in `nodes` of the live master serving `slot`.
    pub fn master_of(&self, slot: u16) -> usize {
        for fields in self.node_table() {
            let (address, flags) = (&fields[1], &fields[2]);
            if !flags.contains("master") || flags.contains("fail") {
                continue;
            }
            let serves = fields[8..].iter().any(|range| {
                let range = range.as_str();
                let (low, high) = range.split_once('-').unwrap_or((range, range));
                match (low.parse::<u16>(), high.parse::<u16>()) {
                    (Ok(low), Ok(high)) => (low..=high).contains(&slot),
                    _ => false,
                }
            });
            if serves {
                return self.index_of_address(address);
            }
        }
        panic!("no live master serves slot {slot}");
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.nodes.clear();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// A live node is one whose lifeline is still held.
impl RedisNode {
    pub fn is_alive(&self) -> bool {
        self.lifeline.is_some()
    }
}
