//! The identity graph on Redis: each operation of [`IdentityStore`] is one command, one
//! pipeline of single-key commands, or one script over one hash slot.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::{Script, Value};
use switchboard_codec::Identifier;
use switchboard_identity::ProfileId;
use switchboard_identity::store::{
    Committed, IdentityStore, Limits, Node, Refusal, Reservation, Reserved, StoreError,
};

use crate::{Keys, Redis};

static RESERVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/reserve.lua")));
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/release.lua")));
static COMMIT_MERGE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/commit_merge.lua")));
static COMPARE_SET: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/compare_set.lua")));

/// The identity graph in Redis or Redis Cluster.
#[derive(Debug, Clone)]
pub struct RedisIdentityStore {
    redis: Redis,
    keys: Keys,
}

fn store_err(e: redis::RedisError) -> StoreError {
    StoreError(format!("redis: {e}"))
}

impl RedisIdentityStore {
    pub fn new(redis: Redis, keys: Keys) -> Self {
        Self { redis, keys }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// One command, no script: point the identifier at `profile` unless it points somewhere,
/// and answer where it pointed (nil when the claim won).
fn claim_cmd(keys: &Keys, identifier: &Identifier, profile: &ProfileId) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(keys.identifier(identifier))
        .arg(profile.as_str())
        .arg("NX")
        .arg("GET");
    cmd
}

/// Stored profile ids, absent ones kept in place.
fn profiles(stored: Vec<Option<String>>) -> Vec<Option<ProfileId>> {
    stored
        .into_iter()
        .map(|p| p.map(ProfileId::from_stored))
        .collect()
}

impl IdentityStore for RedisIdentityStore {
    async fn lookup(&self, ids: &[Identifier]) -> Result<Vec<Option<ProfileId>>, StoreError> {
        let found: Vec<Option<String>> = self
            .redis
            .get_each(ids.iter().map(|id| self.keys.identifier(id)).collect())
            .await
            .map_err(store_err)?;
        Ok(profiles(found))
    }

    async fn node(&self, id: &ProfileId) -> Result<Option<Node>, StoreError> {
        let (fields, merged): (HashMap<String, String>, Vec<String>) = redis::pipe()
            .hgetall(self.keys.node(id))
            .lrange(self.keys.merged(id), 0, -1)
            .query_async(&mut self.redis.clone())
            .await
            .map_err(store_err)?;
        if fields.is_empty() {
            return Ok(None);
        }
        let num = |k: &str| {
            fields
                .get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        Ok(Some(Node {
            parent: fields.get("parent").cloned().map(ProfileId::from_stored),
            version: u64::try_from(num("version")).unwrap_or(0),
            merges: u32::try_from(num("merges")).unwrap_or(0),
            identifiers: fields
                .keys()
                .filter_map(|f| f.strip_prefix(Keys::IDENTIFIER_FIELD))
                .filter_map(Keys::parse_member)
                .collect(),
            merged: merged.into_iter().map(ProfileId::from_stored).collect(),
        }))
    }

    async fn parent(&self, id: &ProfileId) -> Result<Option<ProfileId>, StoreError> {
        let parent: Option<String> = redis::Cmd::hget(self.keys.node(id), "parent")
            .query_async(&mut self.redis.clone())
            .await
            .map_err(store_err)?;
        Ok(parent.map(ProfileId::from_stored))
    }

    async fn parents(&self, ids: &[ProfileId]) -> Result<Vec<Option<ProfileId>>, StoreError> {
        let parents: Vec<Option<String>> = self
            .redis
            .query_each(
                ids.iter()
                    .map(|id| redis::Cmd::hget(self.keys.node(id), "parent"))
                    .collect(),
            )
            .await
            .map_err(store_err)?;
        Ok(profiles(parents))
    }

    async fn claim(
        &self,
        identifier: &Identifier,
        profile: &ProfileId,
    ) -> Result<Option<ProfileId>, StoreError> {
        let owner: Option<String> = claim_cmd(&self.keys, identifier, profile)
            .query_async(&mut self.redis.clone())
            .await
            .map_err(store_err)?;
        Ok(owner.map(ProfileId::from_stored))
    }

    async fn claim_all(
        &self,
        identifiers: &[Identifier],
        profile: &ProfileId,
    ) -> Result<Vec<Option<ProfileId>>, StoreError> {
        let owners: Vec<Option<String>> = self
            .redis
            .query_each(
                identifiers
                    .iter()
                    .map(|id| claim_cmd(&self.keys, id, profile))
                    .collect(),
            )
            .await
            .map_err(store_err)?;
        Ok(profiles(owners))
    }

    async fn repoint(
        &self,
        identifier: &Identifier,
        from: &ProfileId,
        to: &ProfileId,
    ) -> Result<(), StoreError> {
        let _: i64 = COMPARE_SET
            .key(self.keys.identifier(identifier))
            .arg(from.as_str())
            .arg(to.as_str())
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn reparent(
        &self,
        profile: &ProfileId,
        from: &ProfileId,
        to: &ProfileId,
    ) -> Result<(), StoreError> {
        let _: i64 = COMPARE_SET
            .key(self.keys.node(profile))
            .arg(from.as_str())
            .arg(to.as_str())
            .arg("parent")
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn reserve(
        &self,
        root: &ProfileId,
        r: &Reservation,
        limits: &Limits,
    ) -> Result<Reserved, StoreError> {
        let mut call = RESERVE.prepare_invoke();
        call.key(self.keys.node(root))
            .arg(r.merges)
            .arg(limits.total)
            .arg(limits.merges)
            .arg(limits.per_kind.len());
        for (kind, max) in &limits.per_kind {
            call.arg(kind).arg(*max);
        }
        for id in &r.identifiers {
            call.arg(Keys::member(id));
        }
        let reply: Vec<String> = call
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(store_err)?;
        let mut reply = reply.into_iter();
        match (reply.next().as_deref(), reply.next(), reply.next()) {
            (Some("added"), first, second) => Ok(Reserved::Added(
                first
                    .into_iter()
                    .chain(second)
                    .chain(reply)
                    .filter_map(|m| Keys::parse_member(&m))
                    .collect(),
            )),
            (Some("moved"), Some(parent), _) => Ok(Reserved::Moved(ProfileId::from_stored(parent))),
            (Some("refused"), Some(what), kind) => Ok(Reserved::Refused(match what.as_str() {
                "kind" => Refusal::KindLimit(kind.unwrap_or_default()),
                "merges" => Refusal::TooManyMerges,
                _ => Refusal::TooManyIdentifiers,
            })),
            other => Err(StoreError(format!("reserve: unexpected reply {other:?}"))),
        }
    }

    async fn release(&self, root: &ProfileId, ids: &[Identifier]) -> Result<(), StoreError> {
        let mut call = RELEASE.prepare_invoke();
        call.key(self.keys.node(root));
        for id in ids {
            call.arg(Keys::member(id));
        }
        let _: i64 = call
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn commit_merge(
        &self,
        loser: &ProfileId,
        survivor: &ProfileId,
        version: u64,
    ) -> Result<Committed, StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let reply: Value = COMMIT_MERGE
            .key(self.keys.node(loser))
            .arg(survivor.as_str())
            .arg(version)
            .arg(now.to_string())
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(store_err)?;
        match text(&reply).as_deref() {
            Some("done") => Ok(Committed::Done),
            Some("already") => Ok(Committed::AlreadyDone),
            Some("changed") => Ok(Committed::Changed),
            _ => Err(StoreError(format!(
                "commit_merge: unexpected reply {reply:?}"
            ))),
        }
    }

    async fn record_merge(
        &self,
        survivor: &ProfileId,
        loser: &ProfileId,
    ) -> Result<(), StoreError> {
        let _: i64 = redis::cmd("RPUSH")
            .arg(self.keys.merged(survivor))
            .arg(loser.as_str())
            .query_async(&mut self.redis.clone())
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn erase(&self, profile: &ProfileId, ids: &[Identifier]) -> Result<(), StoreError> {
        // One DEL per hash slot: the profile's keys share its tag, each pointer has its own.
        let mut cmds = vec![redis::Cmd::del(&[
            self.keys.node(profile),
            self.keys.merged(profile),
        ])];
        cmds.extend(
            ids.iter()
                .map(|id| redis::Cmd::del(self.keys.identifier(id))),
        );
        // Counted after the pointers are gone: a stitcher that sees the new count looks up.
        cmds.push(redis::Cmd::incr(self.keys.erasures(), 1));
        let _: Vec<i64> = self.redis.query_each(cmds).await.map_err(store_err)?;
        Ok(())
    }

    async fn erasures(&self) -> Result<u64, StoreError> {
        let n: Option<u64> = redis::Cmd::get(self.keys.erasures())
            .query_async(&mut self.redis.clone())
            .await
            .map_err(store_err)?;
        Ok(n.unwrap_or(0))
    }
}
