//! `switchboard`: parses arguments, loads configuration, starts logs and hands over to the
//! library that does the work.

mod args;
mod identity;
mod journeys;
mod report;
mod run;
mod tools;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command, ConfigCommand, IdentityCommand, TopicsCommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = switchboard_config::load(cli.global.config.as_deref(), &cli.global.overrides())?;
    switchboard_telemetry::init_logs(&config.log)?;
    let embedded = cli.global.config.is_none();
    match cli.command {
        Command::Run(args) => run::run(config, args, run::Role::Both, embedded).await,
        Command::Stitcher(args) => run::run(config, args, run::Role::Stitcher, false).await,
        Command::Engine(args) => run::run(config, args, run::Role::Engine, false).await,
        Command::Config {
            command: ConfigCommand::Check,
        } => tools::config_check(&config),
        Command::Schemas { dir } => tools::schemas(dir.as_deref()),
        Command::Topics {
            command: TopicsCommand::Create,
        } => tools::topics_create(&config).await,
        Command::Validate { dir, policies } => journeys::validate(&dir, policies.as_deref()),
        Command::Graph {
            file,
            format,
            policies,
        } => journeys::graph(&file, format, policies.as_deref()),
        Command::Schema { policies } => journeys::schema(policies),
        Command::Simulate {
            journeys: dir,
            events,
            policies,
            explain,
        } => journeys::simulate(
            &dir,
            &events,
            policies.as_deref(),
            &config.identity,
            explain.as_deref(),
        ),
        Command::Explain {
            identifier,
            journeys,
            policies,
        } => identity::explain(&config, &identifier, &journeys, policies.as_deref()).await,
        Command::Produce {
            topic,
            file,
            key_by,
            framing,
        } => tools::produce(&config, &topic, &file, key_by.as_deref(), framing.into()).await,
        Command::Identity {
            command: IdentityCommand::Show { identifier },
        } => identity::show_identifier(&config, &identifier).await,
        Command::Forget { identifier } => identity::forget_identifier(&config, &identifier).await,
        Command::Report(args) => report::report(&config, args).await,
        Command::Tail {
            topic,
            from_beginning,
            limit,
            headers,
        } => {
            let headers = headers || topic == config.topics.dead_letters;
            tools::tail(&config, &topic, from_beginning, limit, headers).await
        }
    }
}
