//! `switchboard identity show <kind>:<value>`: the profile behind an identifier.

use anyhow::Context;
use switchboard_codec::Identifier;
use switchboard_config::Config;
use switchboard_identity::show;
use switchboard_redis::{Keys, RedisIdentityStore, connect};

/// Prints the profile an identifier belongs to, its identifiers and merge history.
pub async fn show_identifier(config: &Config, raw: &str) -> anyhow::Result<()> {
    let (kind, value) = raw
        .split_once(':')
        .with_context(|| format!("`{raw}` is not <kind>:<value>, e.g. email:ann@example.com"))?;
    let prepared = config.identity.prepare(&[Identifier::new(kind, value)]);
    let identifier = match (
        prepared.accepted.into_iter().next(),
        prepared.rejected.first(),
    ) {
        (Some(id), _) => id,
        (None, Some((_, why))) => anyhow::bail!("identifier of kind `{kind}`: {why}"),
        (None, None) => anyhow::bail!("identifier of kind `{kind}` is not usable"),
    };
    let redis = connect(&config.redis)
        .await
        .with_context(|| format!("connecting to redis.url {}", config.redis.url))?;
    let store = RedisIdentityStore::new(redis, Keys::new(config.redis.key_prefix.clone()));
    match show(&store, &identifier).await? {
        None => anyhow::bail!("no profile holds {}:{}", identifier.kind, identifier.value),
        Some(view) => {
            println!("profile     {}", view.profile);
            println!("created_at  {}", format_ms(view.created_at));
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

fn format_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}
