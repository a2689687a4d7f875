//! The journey designer's tools: validate, graph, schema, simulate.

use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, bail};
use switchboard_codec::ChannelEvent;
use switchboard_engine::{Planner, simulate};
use switchboard_journey::{
    JourneySet, Policies, compile, graph, load_dir, model::JourneyFile, policy::PoliciesFile,
};

use crate::args::GraphFormat;

/// The default policies, built in, for when no policies file is given or found.
pub const DEFAULT_POLICIES: &str = include_str!("../../../deploy/policies.yaml");

pub fn policies(path: Option<&Path>) -> anyhow::Result<Policies> {
    match path {
        Some(p) => Policies::from_path(p).map_err(anyhow::Error::msg),
        None => Policies::parse("built-in policies", DEFAULT_POLICIES).map_err(anyhow::Error::msg),
    }
}

pub fn load(dir: &Path, policies: &Policies) -> anyhow::Result<JourneySet> {
    match load_dir(dir, &policies.channels) {
        Ok(journeys) => Ok(JourneySet::new(journeys)),
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            bail!("{} error(s) in {}", errors.len(), dir.display())
        }
    }
}

pub fn validate(dir: &Path, policies_path: Option<&Path>) -> anyhow::Result<()> {
    let policies = policies(policies_path)?;
    let set = load(dir, &policies)?;
    println!(
        "{} journey version(s) valid in {}",
        set.len(),
        dir.display()
    );
    Ok(())
}

pub fn graph(file: &Path, format: GraphFormat, policies_path: Option<&Path>) -> anyhow::Result<()> {
    let policies = policies(policies_path)?;
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let journey =
        compile(&file.display().to_string(), &text, &policies.channels).map_err(|errors| {
            for e in &errors {
                eprintln!("{e}");
            }
            anyhow::anyhow!("{} error(s) in {}", errors.len(), file.display())
        })?;
    print!(
        "{}",
        match format {
            GraphFormat::Mermaid => graph::mermaid(&journey),
            GraphFormat::Dot => graph::dot(&journey),
        }
    );
    Ok(())
}

pub fn schema(policies: bool) -> anyhow::Result<()> {
    let schema = if policies {
        schemars::schema_for!(PoliciesFile)
    } else {
        schemars::schema_for!(JourneyFile)
    };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(())
}

/// Simulates `events` through the journeys, each event's identifiers stitched with `rules`
/// in memory, as the stitcher would.
pub fn simulate(
    journeys: &Path,
    events: &Path,
    policies_path: Option<&Path>,
    rules: &switchboard_identity::IdentityRules,
    explain: Option<&str>,
) -> anyhow::Result<()> {
    let policies = policies(policies_path)?;
    let set = load(journeys, &policies)?;
    let file = std::fs::File::open(events).with_context(|| format!("open {}", events.display()))?;
    let mut list = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() || line.trim_start().starts_with("//") {
            continue;
        }
        let event: ChannelEvent = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a ChannelEvent", events.display(), n + 1))?;
        list.push(event);
    }
    let graph = switchboard_identity::MemoryIdentityStore::new();
    let mut stitch = |e: &ChannelEvent| {
        let (stitched, identifiers) = graph.stitch_now(rules, &e.identifiers, e.occurred_at)?;
        Ok(simulate::Stitch {
            profile: stitched.profile.to_string(),
            identifiers,
            merges: stitched
                .merges
                .iter()
                .map(|m| (m.survivor.to_string(), m.loser.to_string()))
                .collect(),
        })
    };
    let planner = Planner::new(
        &set,
        &policies,
        rules.dedup_window_secs.saturating_mul(1000),
    );
    let Some(who) = explain else {
        let happenings = simulate::simulate_with(&planner, list, &mut stitch);
        print!("{}", simulate::render(&happenings));
        return Ok(());
    };
    let (happenings, explained) = simulate::simulate_and_explain(&planner, list, &mut stitch, who);
    print!("{}", simulate::render(&happenings));
    match explained {
        Some(text) => print!("\n{text}"),
        None => bail!("no customer named {who} in the run (the timeline names them)"),
    }
    Ok(())
}
