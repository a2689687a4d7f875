//! A throwaway 3-master Redis Cluster: three `redis-server --cluster-enabled yes` processes
//! joined by `redis-cli --cluster create`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::find_binary;

/// Three cluster masters on free ports (each with its bus port free too); killed on drop.
#[derive(Debug)]
pub struct RedisCluster {
    ports: Vec<u16>,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

/// A port `p` with `p` and its cluster bus port `p + 10000` both free.
fn free_cluster_port(taken: &[u16]) -> u16 {
    for _ in 0..1_000 {
        let p = 20_000 + u16::try_from(uuid::Uuid::new_v4().as_u128() % 20_000).unwrap_or(0);
        if taken.contains(&p) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", p)).is_ok()
            && TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok()
        {
            return p;
        }
    }
    panic!("no free port pair for a Redis Cluster node")
}

impl RedisCluster {
    pub fn start() -> Self {
        let server = find_binary("redis-server");
        let cli = find_binary("redis-cli");
        let dir = tempfile::tempdir().expect("temp dir for redis cluster");
        let mut ports = Vec::new();
        let mut children = Vec::new();
        for _ in 0..3 {
            let port = free_cluster_port(&ports);
            let node_dir = dir.path().join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let child = Command::new(&server)
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                ])
                .args([
                    "--cluster-config-file",
                    "nodes.conf",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
            ports.push(port);
            children.push(child);
        }
        let cluster = Self {
            ports,
            children,
            _dir: dir,
        };
        for p in &cluster.ports {
            cluster.wait(*p, "PING", "PONG");
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let created = Command::new(&cli)
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", cli.display()));
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        for p in &cluster.ports {
            cluster.wait(*p, "CLUSTER INFO", "cluster_state:ok");
        }
        cluster
    }

    fn wait(&self, port: u16, command: &str, expect: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url");
        while Instant::now() < deadline {
            if let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(200)) {
                let mut cmd = redis::cmd(command.split(' ').next().unwrap_or("PING"));
                for arg in command.split(' ').skip(1) {
                    cmd.arg(arg);
                }
                if cmd
                    .query::<String>(&mut c)
                    .is_ok_and(|r| r.contains(expect))
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis cluster node {port}: `{command}` never answered `{expect}`");
    }

    /// `redis://127.0.0.1:<port>` of every master, as cluster seeds.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
