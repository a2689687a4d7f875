//! A throwaway tansu broker with in-memory storage.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::{find_binary, free_port, unique};

/// A tansu broker (`memory://` storage) on a free port; killed on drop.
///
/// tansu does not create topics on produce: create them with [`TansuBroker::create_topic`].
#[derive(Debug)]
pub struct TansuBroker {
    port: u16,
    child: Child,
}

impl TansuBroker {
    pub fn start() -> Self {
        let binary = find_binary("tansu");
        for _attempt in 0..5 {
            let port = free_port();
            let url = format!("tcp://127.0.0.1:{port}");
            let child = Command::new(&binary)
                .arg("broker")
                .args(["--listener-url", &url, "--advertised-listener-url", &url])
                .args([
                    "--storage-engine",
                    "memory://tansu/",
                    "--cluster-id",
                    &unique("cluster"),
                ])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let broker = Self { port, child };
            if broker.wait_ready(Duration::from_secs(20)) {
                return broker;
            }
            // Dropping it kills the process; try another port.
        }
        panic!("tansu did not answer metadata requests after 5 attempts")
    }

    fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let consumer: Result<BaseConsumer, _> = self.client_config().create();
                if let Ok(c) = consumer
                    && c.fetch_metadata(None, Duration::from_secs(2)).is_ok()
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// `127.0.0.1:<port>`.
    /// The server's process id (to read its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A client configuration pointing at this broker.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap());
        c
    }

    /// Creates `name` with `partitions` partitions through the Kafka admin API.
    pub async fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config().create().expect("admin client");
        let results = admin
            .create_topics(
                &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new(),
            )
            .await
            .expect("create_topics request");
        for r in results {
            r.unwrap_or_else(|(topic, e)| panic!("create topic {topic}: {e}"));
        }
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
