//! A throwaway `redis-server`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{find_binary, free_port};

/// A `redis-server` on a free port, with its data in a temporary folder; killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
    args: Vec<String>,
}

impl RedisServer {
    /// Starts a server without persistence.
    pub fn start() -> Self {
        Self::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// Starts a server with AOF persistence (`appendfsync always`), for restart tests.
    pub fn start_with_aof() -> Self {
        Self::start_with(&[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
    }

    fn start_with(args: &[&str]) -> Self {
        let binary = find_binary("redis-server");
        let dir = tempfile::tempdir().expect("temp dir for redis");
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new(&binary)
                .arg("--port")
                .arg(port.to_string())
                .arg("--bind")
                .arg("127.0.0.1")
                .arg("--dir")
                .arg(dir.path())
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            if wait_for_ping(port, Duration::from_secs(10)) {
                let args = args.iter().map(|a| (*a).to_owned()).collect();
                return Self {
                    port,
                    child,
                    dir,
                    args,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not answer PING after 5 attempts")
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and folder (after [`Self::kill`]), so it
    /// loads what it persisted.
    pub fn restart(&mut self) {
        self.kill();
        let binary = find_binary("redis-server");
        self.child = Command::new(&binary)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot restart {}: {e}", binary.display()));
        assert!(
            wait_for_ping(self.port, Duration::from_secs(30)),
            "redis-server did not come back on port {}",
            self.port
        );
    }

    /// The server's process id (to read its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A synchronous client, for test setup and assertions.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("redis url")
    }
}

fn wait_for_ping(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else {
        return false;
    };
    while Instant::now() < deadline {
        if let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200))
            && redis::cmd("PING").query::<String>(&mut conn).is_ok()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
