//! librdkafka's in-process mock cluster: real Kafka protocol, transactions, and injectable
//! broker errors. It keeps at most ~100 000 messages per partition: not for backlogs.

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A mock cluster with its bootstrap address.
pub struct MockKafka {
    pub cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for MockKafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockKafka")
            .field("bootstrap", &self.bootstrap())
            .finish()
    }
}

impl MockKafka {
    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap());
        c
    }

    /// Creates `name` with `partitions` partitions (replication 1).
    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.cluster
            .create_topic(name, partitions, 1)
            .expect("mock create_topic");
    }
}

/// A mock cluster of `brokers` brokers.
pub fn mock_cluster(brokers: i32) -> MockKafka {
    MockKafka {
        cluster: MockCluster::new(brokers).expect("librdkafka mock cluster"),
    }
}
