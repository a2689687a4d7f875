//! `switchboard identity show <kind>:<value>`: the profile behind an identifier;
//! `switchboard forget <kind>:<value>`: erase that customer.

use anyhow::Context;
use switchboard_codec::Identifier;
use switchboard_config::Config;
use switchboard_identity::show;
use switchboard_redis::{Keys, RedisIdentityStore, connect};
use switchboard_services::forget::forget_customer;
use switchboard_services::services::producer;

/// The identifier `<kind>:<value>`, normalised by the identity rules.
fn parse_identifier(config: &Config, raw: &str) -> anyhow::Result<Identifier> {
    let (kind, value) = raw
        .split_once(':')
        .with_context(|| format!("`{raw}` is not <kind>:<value>, e.g. email:ann@example.com"))?;
    let prepared = config.identity.prepare(&[Identifier::new(kind, value)]);
    match (
        prepared.accepted.into_iter().next(),
        prepared.rejected.first(),
    ) {
        (Some(id), _) => Ok(id),
        (None, Some((_, why))) => anyhow::bail!("identifier of kind `{kind}`: {why}"),
        (None, None) => anyhow::bail!("identifier of kind `{kind}` is not usable"),
    }
}

async fn identity_store(config: &Config) -> anyhow::Result<RedisIdentityStore> {
    let redis = connect(&config.redis)
        .await
        .with_context(|| format!("connecting to redis.url {}", config.redis.url))?;
    Ok(RedisIdentityStore::new(
        redis,
        Keys::new(config.redis.key_prefix.clone()),
    ))
}

/// Prints the profile an identifier belongs to, its identifiers and merge history.
pub async fn show_identifier(config: &Config, raw: &str) -> anyhow::Result<()> {
    let identifier = parse_identifier(config, raw)?;
    let store = identity_store(config).await?;
    match show(&store, &identifier).await? {
        None => anyhow::bail!("no profile holds {}:{}", identifier.kind, identifier.value),
        Some(view) => {
            println!("profile     {}", view.profile);
            let created = view.created_at.map_or_else(|| "unknown".into(), format_ms);
            println!("created_at  {created}");
            println!("identifiers");
            for id in &view.identifiers {
                println!("  {}:{}", id.kind, id.value);
            }
            println!(
                "merged      {}",
                if view.merged.is_empty() { "none" } else { "" }
            );
            for p in &view.merged {
                println!("  {p}");
            }
            Ok(())
        }
    }
}

/// Erases the customer an identifier belongs to.
pub async fn forget_identifier(config: &Config, raw: &str) -> anyhow::Result<()> {
    let identifier = parse_identifier(config, raw)?;
    let store = identity_store(config).await?;
    let codec = crate::run::codec(config).await?;
    let producer = producer(config).context("creating the Kafka producer")?;
    let erased = forget_customer(config, &codec, &producer, &store, &identifier).await?;
    let Some((profile, merged)) = erased.as_deref().and_then(<[_]>::split_first) else {
        anyhow::bail!("no profile holds {}:{}", identifier.kind, identifier.value);
    };
    println!(
        "forgot profile {profile} ({} merged into it): identity erased; the engine erases its \
         state and publishes `profile.forgotten` on {}",
        merged.len(),
        config.topics.transitions
    );
    Ok(())
}

/// Prints what Switchboard knows of the customer an identifier belongs to, and why it did
/// what it did: the identity graph's view, then the engine's record.
pub async fn explain(
    config: &Config,
    raw: &str,
    journeys: &std::path::Path,
    policies: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use switchboard_engine::Records;
    let identifier = parse_identifier(config, raw)?;
    let store = identity_store(config).await?;
    let Some(view) = show(&store, &identifier).await? else {
        anyhow::bail!("no profile holds {}:{}", identifier.kind, identifier.value);
    };
    let redis = connect(&config.redis).await?;
    let state = switchboard_redis::RedisStateStore::new(redis, config.redis.key_prefix.clone());
    let loaded = state.load(std::slice::from_ref(&view.profile)).await?;
    let record = loaded
        .into_iter()
        .next()
        .flatten()
        .map(|(record, _)| record);
    let policies = crate::journeys::policies(policies)?;
    let set = crate::journeys::load(journeys, &policies)
        .with_context(|| format!("loading journeys from {}", journeys.display()))?;
    let who = switchboard_engine::explain::Who {
        profile: &view.profile,
        identifiers: &view.identifiers,
        merged: &view.merged,
    };
    let now = jiff::Timestamp::now().as_millisecond();
    print!(
        "{}",
        switchboard_engine::explain::explain(who, record.as_ref(), &set, &policies, now)
    );
    Ok(())
}

fn format_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}
