//! A throwaway Apache Kafka broker: one KRaft node (controller and broker in one JVM) on free
//! loopback ports, its storage formatted in a temporary folder.
//!
//! `scripts/setup.sh` puts Kafka's jars in `$SWITCHBOARD_TOOLS_DIR/kafka-<version>/libs`, the
//! version pinned in `scripts/kafka/pom.xml`. Starting takes about 5 s (formatting the storage
//! is one short JVM run, the broker another), so a test binary shares one broker between its
//! tests ([`KafkaBroker::shared`]), each test on topics and groups of its own.
//!
//! The JVM runs under a small shell that reads its standard input from the test process: when
//! that process ends, however it ends, the pipe closes and the shell stops the broker (SIGTERM,
//! SIGKILL after 10 s). A shared broker therefore needs no destructor. The folder is removed
//! then, unless a test panicked: the panic names the broker's log, which is kept.

use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::binaries::tools_dir;
use crate::free_port;

/// The pom `scripts/setup.sh` fetches Kafka with; its `<kafka.version>` is the one pin.
const POM: &str = include_str!("../../../scripts/kafka/pom.xml");

/// Kafka's cluster id is 16 bytes in URL-safe base64. Each broker is a cluster of its own in
/// a folder of its own, so one fixed id serves them all ("switchboard-test").
const CLUSTER_ID: &str = "c3dpdGNoYm9hcmQtdGVzdA";

/// The JVM options: a small heap, and the G1 settings of Kafka's own start scripts.
const JVM_OPTIONS: &[&str] = &[
    "-Xms256m",
    "-Xmx768m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
];

/// Stops the broker when the test process closes the shell's standard input.
const SUPERVISOR: &str = r#"
dir="$1"; shift
"$@" >>"$dir/stdout.log" 2>&1 &
pid=$!
echo "$pid" >"$dir/kafka.pid"
cat >/dev/null
kill -TERM "$pid" 2>/dev/null
( sleep 10; kill -KILL "$pid" 2>/dev/null ) &
killer=$!
wait "$pid" 2>/dev/null
kill "$killer" 2>/dev/null
if [ -e "$dir/keep" ]; then
  rm -rf "$dir/data"
  echo "kafka: the broker's log is kept in $dir/server.log" >&2
else
  rm -rf "$dir"
fi
"#;

/// An Apache Kafka broker (KRaft, one node) on free ports.
///
/// Topics are not created on produce (`auto.create.topics.enable=false`, as in
/// docker-compose.yml): create them with [`KafkaBroker::create_topic`] or the admin API.
#[derive(Debug)]
pub struct KafkaBroker {
    port: u16,
    dir: PathBuf,
    pid: u32,
    supervisor: Child,
    stdin: Option<ChildStdin>,
}

impl KafkaBroker {
    /// The broker of this test binary, started by its first caller and stopped when the
    /// process exits.
    pub fn shared() -> &'static KafkaBroker {
        static SHARED: OnceLock<KafkaBroker> = OnceLock::new();
        SHARED.get_or_init(KafkaBroker::start)
    }

    /// A broker of its own, stopped when dropped.
    pub fn start() -> Self {
        let libs = libs_dir();
        let java = java();
        for _attempt in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("switchboard-kafka-")
                .tempdir()
                .expect("temp dir for kafka")
                .keep();
            let (port, controller) = (free_port(), free_port());
            std::fs::write(
                dir.join("server.properties"),
                properties(&dir, port, controller),
            )
            .expect("write server.properties");
            std::fs::write(dir.join("log4j2.properties"), log4j2(&dir)).expect("write log4j2");
            format_storage(&java, &libs, &dir);
            let started = Instant::now();
            let mut supervisor = Command::new("sh")
                .arg("-c")
                .arg(SUPERVISOR)
                .arg("kafka-supervisor")
                .arg(&dir)
                .arg(&java)
                .args(JVM_OPTIONS)
                .arg(format!(
                    "-Dlog4j2.configurationFile={}",
                    dir.join("log4j2.properties").display()
                ))
                .arg("-cp")
                .arg(libs.join("*"))
                .arg("kafka.Kafka")
                .arg(dir.join("server.properties"))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start sh for kafka: {e}"));
            let stdin = supervisor.stdin.take();
            let pid = read_pid(&dir);
            let mut broker = Self {
                port,
                dir,
                pid,
                supervisor,
                stdin,
            };
            if broker.wait_ready(Duration::from_secs(60)) {
                keep_log_on_panic(&broker.dir);
                eprintln!(
                    "kafka: broker {} ready on {} in {:.1} s (log {})",
                    kafka_version(),
                    broker.bootstrap(),
                    started.elapsed().as_secs_f64(),
                    broker.dir.join("server.log").display()
                );
                return broker;
            }
            // A port taken between choosing and binding, most likely: keep this log, try again.
            let _ = std::fs::write(broker.dir.join("keep"), b"");
            eprintln!(
                "kafka: no answer on {} within 60 s; see {}",
                broker.bootstrap(),
                broker.dir.join("server.log").display()
            );
            broker.stop();
        }
        panic!("Apache Kafka did not answer metadata requests after 3 attempts")
    }

    /// Ready when a metadata request names this broker: the controller has unfenced it.
    fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let consumer: Result<BaseConsumer, _> = self.client_config().create();
                if let Ok(c) = consumer
                    && let Ok(m) = c.fetch_metadata(None, Duration::from_secs(2))
                    && !m.brokers().is_empty()
                {
                    return true;
                }
            }
            if !self.running() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn running(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// Stops the broker (SIGTERM, then SIGKILL after 10 s) and waits for it.
    fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.supervisor.wait();
    }

    /// The broker's (JVM's) process id, to read its CPU time and memory.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's log file (`server.log`), kept when a test panics.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("server.log")
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

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::fs::write(self.dir.join("keep"), b"");
        }
        self.stop();
    }
}

/// The Kafka version `scripts/kafka/pom.xml` pins.
pub fn kafka_version() -> &'static str {
    POM.split_once("<kafka.version>")
        .and_then(|(_, rest)| rest.split_once("</kafka.version>"))
        .map(|(version, _)| version.trim())
        .expect("scripts/kafka/pom.xml declares <kafka.version>")
}

/// `$SWITCHBOARD_KAFKA_LIBS`, or `kafka-<version>/libs` in the tools folder.
fn libs_dir() -> PathBuf {
    let libs = std::env::var_os("SWITCHBOARD_KAFKA_LIBS").map_or_else(
        || {
            tools_dir()
                .join(format!("kafka-{}", kafka_version()))
                .join("libs")
        },
        PathBuf::from,
    );
    let has_broker = std::fs::read_dir(&libs).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("kafka_2.13-"))
    });
    assert!(
        has_broker,
        "Apache Kafka {} is not in {} (looked for kafka_2.13-*.jar). Fetch it with \
         `scripts/setup.sh` (Maven, from Maven Central, once), or point \
         $SWITCHBOARD_KAFKA_LIBS at a folder of Kafka's jars.",
        kafka_version(),
        libs.display()
    );
    libs
}

/// `$JAVA_HOME/bin/java`, else `java` on `PATH` (Kafka 4 needs Java 17 or newer).
fn java() -> PathBuf {
    std::env::var_os("JAVA_HOME")
        .map(|home| PathBuf::from(home).join("bin/java"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("java"))
}

fn properties(dir: &Path, port: u16, controller: u16) -> String {
    format!(
        "process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.quorum.voters=1@127.0.0.1:{controller}
log.dirs={data}
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
",
        data = dir.join("data").display()
    )
}

fn log4j2(dir: &Path) -> String {
    format!(
        "appender.file.type = File
appender.file.name = file
appender.file.fileName = {}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
",
        dir.join("server.log").display()
    )
}

/// `kafka-storage.sh format`: writes the node's identity and the cluster's bootstrap metadata
/// into the empty log folder (a short JVM run, C1 only, about 1.5 s).
fn format_storage(java: &Path, libs: &Path, dir: &Path) {
    let out = Command::new(java)
        .args(["-Xmx256m", "-XX:TieredStopAtLevel=1"])
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            dir.join("log4j2.properties").display()
        ))
        .arg("-cp")
        .arg(libs.join("*"))
        .args(["kafka.tools.StorageTool", "format", "-t", CLUSTER_ID, "-c"])
        .arg(dir.join("server.properties"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (Java 17 or newer): {e}", java.display()));
    assert!(
        out.status.success(),
        "formatting Kafka's storage in {} failed: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The JVM's process id, which the supervisor writes as soon as it has started it.
fn read_pid(dir: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(dir.join("kafka.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "the kafka supervisor wrote no pid in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A panic anywhere in the test process keeps the broker's log and says where it is.
fn keep_log_on_panic(dir: &Path) {
    static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    static HOOK: Once = Once::new();
    DIRS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(dir.to_path_buf());
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            let dirs = DIRS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for dir in dirs.iter().filter(|d| !d.join("keep").exists()) {
                if let Ok(mut f) = std::fs::File::create(dir.join("keep")) {
                    let _ = f.write_all(b"a test panicked\n");
                }
                eprintln!(
                    "kafka: the broker's log is {}",
                    dir.join("server.log").display()
                );
            }
        }));
    });
}
