//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use switchboard_codec::Framing;
use switchboard_config::Overrides;

/// Switchboard: an event-streaming omnichannel journey orchestrator on Kafka and Redis.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes; each overrides the config file and `SWITCHBOARD_*`.
#[derive(Debug, Args)]
pub struct Global {
    /// TOML configuration file (see deploy/switchboard.toml).
    #[arg(long, short = 'c', global = true, env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers (kafka.bootstrap_servers).
    #[arg(long, global = true)]
    pub kafka_bootstrap: Option<String>,
    /// Redis URL (redis.url).
    #[arg(long, global = true)]
    pub redis_url: Option<String>,
    /// Admin server address (admin.listen).
    #[arg(long, global = true)]
    pub admin_listen: Option<String>,
    /// Log format: human or json (log.format).
    #[arg(long, global = true)]
    pub log_format: Option<String>,
    /// Log filter, e.g. info or switchboard=debug (log.level).
    #[arg(long, global = true)]
    pub log_level: Option<String>,
}

impl Global {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            kafka_bootstrap: self.kafka_bootstrap.clone(),
            redis_url: self.redis_url.clone(),
            admin_listen: self.admin_listen.clone(),
            log_format: self.log_format.clone(),
            log_level: self.log_level.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the stitcher and the engine. Without --config: the embedded default (an in-process
    /// Kafka-protocol mock cluster, in-memory state, the example journeys, live progress).
    Run(RunArgs),
    /// Run the stitcher only (against the configured Kafka and Redis).
    Stitcher(RunArgs),
    /// Run the engine only (against the configured Kafka and Redis).
    Engine(RunArgs),
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// List the Avro schemas with their ids and single-object fingerprints.
    Schemas {
        /// A schemas folder with a manifest.toml; by default the schemas built into this binary.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Manage the pipeline's Kafka topics.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// Validate every journey in a folder; exits non-zero listing every error.
    Validate {
        dir: PathBuf,
        /// Policies file (channels, consent, caps, quiet hours); by default the built-in one.
        #[arg(long)]
        policies: Option<PathBuf>,
    },
    /// Draw a journey's state machine as Mermaid (default) or DOT.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
        #[arg(long)]
        policies: Option<PathBuf>,
    },
    /// Print the JSON Schema of journey files (or, with --policies, of the policies file).
    Schema {
        #[arg(long)]
        policies: bool,
    },
    /// Run journeys over a JSON-lines file of ChannelEvents with a simulated clock and print
    /// each customer's timeline. Identifiers are stitched into profiles as the stitcher does
    /// (the `[identity]` rules of `-c`, or the defaults), in memory.
    Simulate {
        /// The folder of journey files (`*.yaml`) to run.
        #[arg(long)]
        journeys: PathBuf,
        /// A file of ChannelEvents as JSON lines, in any order: they run in `occurred_at` order.
        #[arg(long)]
        events: PathBuf,
        /// The policies file (consent, caps, quiet hours); default: the built-in policies.
        #[arg(long)]
        policies: Option<PathBuf>,
        /// After the timeline, explain this customer at the end of the run (as the timeline
        /// names them, e.g. `email:ann@example.com`), as `switchboard explain` does.
        #[arg(long)]
        explain: Option<String>,
    },
    /// Explain a customer: identifiers and merged profiles, consent, cap usage, each
    /// journey's state and next timer, then the recent decisions and sends with their reasons.
    Explain {
        /// `<kind>:<value>`, e.g. `email:ann@example.com` (normalised like incoming events).
        identifier: String,
        /// The journeys folder, for priorities.
        #[arg(long, default_value = "journeys")]
        journeys: PathBuf,
        /// The policies file; default: the built-in policies.
        #[arg(long)]
        policies: Option<PathBuf>,
    },
    /// Encode JSON ChannelEvents (one per line) as Avro and produce them to a topic.
    Produce {
        #[arg(long)]
        topic: String,
        /// JSON lines file; `-` for standard input.
        #[arg(long)]
        file: PathBuf,
        /// Key each record by the value of this identifier kind (default: no key).
        #[arg(long)]
        key_by: Option<String>,
        #[arg(long, value_enum, default_value_t = FramingArg::Confluent)]
        framing: FramingArg,
    },
    /// Look up the identity graph in Redis.
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
    /// Erase a customer (data protection): the identity graph of the profile the identifier
    /// belongs to now, and its journey state, outbox and timers through the engine, which
    /// confirms with a `profile.forgotten` transition.
    Forget {
        /// `<kind>:<value>`, e.g. `email:ann@example.com` (normalised like incoming events).
        identifier: String,
    },
    /// Report per journey, version and variant what journeys.transitions and the commands
    /// say: entries, funnel, sends, suppressions, deferrals, goals, conversion, and lift
    /// against the control group.
    Report(ReportArgs),
    /// Print the records of a topic as JSON lines, decoding any Switchboard record.
    Tail {
        #[arg(long)]
        topic: String,
        /// Start at the earliest offset instead of the end.
        #[arg(long)]
        from_beginning: bool,
        /// Stop after this many records.
        #[arg(long)]
        limit: Option<usize>,
        /// Print each record's headers too (always on for the dead-letter topic, whose
        /// `switchboard.error.*` headers say why a record is there).
        #[arg(long)]
        headers: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Print the profile an identifier belongs to, its identifiers and merge history.
    Show {
        /// `<kind>:<value>`, e.g. `email:ann@example.com` (normalised like incoming events).
        identifier: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration, then print it with secrets hidden.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create every topic with the configured partitions; existing topics are left alone.
    Create,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FramingArg {
    Confluent,
    SingleObject,
}

impl From<FramingArg> for Framing {
    fn from(f: FramingArg) -> Self {
        match f {
            FramingArg::Confluent => Framing::Confluent,
            FramingArg::SingleObject => Framing::SingleObject,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

/// What `run`, `stitcher` and `engine` take.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Folder of journey files.
    #[arg(long, default_value = "journeys")]
    pub journeys: PathBuf,
    /// Policies file; by default the built-in one (deploy/policies.yaml).
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Generate this many synthetic events per second (run only).
    #[arg(long)]
    pub generate: Option<u32>,
    /// Customers in the generated population.
    #[arg(long, default_value_t = 10_000)]
    pub customers: u32,
    /// Make every Nth generated record malformed (truncated), as a buggy channel system
    /// would, so the dead-letter path shows on the dashboard; 0 for never.
    #[arg(long, default_value_t = 1_000)]
    pub malformed_every: u64,
    /// Stop this many seconds after the services started (default: run until SIGINT or
    /// SIGTERM).
    #[arg(long)]
    pub duration: Option<u64>,
}

/// What `report` reads and writes.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Read JSON lines instead of Kafka: transitions and commands, bare or as `tail` prints
    /// them (`{"value": ...}`). May be given more than once.
    #[arg(long)]
    pub file: Vec<PathBuf>,
    /// Only what happened at or after this instant: RFC 3339 (`2026-12-01T00:00:00Z`) or
    /// a time ago (`7d`, `12h`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only what happened before this instant (RFC 3339, or a time ago).
    #[arg(long)]
    pub until: Option<String>,
    /// Print the report as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML page here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Journey files, to draw each journey's graph in the HTML page.
    #[arg(long, default_value = "journeys")]
    pub journeys: PathBuf,
}
