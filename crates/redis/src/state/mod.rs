//! The engine's state in Redis or Redis Cluster.
//!
//! - `<prefix>:r:{<profile>}`: the record, a string: the epoch of its last writer in decimal,
//!   then the record compressed with zstd against a dictionary (`<epoch>:<format>:<zstd>`,
//!   see [`stored`]);
//! - `<prefix>:o:{<profile>}`: its outbox (`stored::encode_outbox`), while unpublished;
//! - `<prefix>:m:{<profile>}`: the profile it was merged into, if it was;
//! - `<prefix>:outbox:{p<N>}`: the set of profiles of partition N with an outbox;
//! - `<prefix>:timers:{p<N>}`: partition N's timers, a sorted set scored by due time;
//! - `<prefix>:epoch:{p<N>}`: partition N's fencing epoch;
//! - `<prefix>:split:{<journey>}`: an optimized journey's counts, a hash: `started` (the
//!   first counted entry, ms), `entries:<variant>`, `goals:<variant>`, and `winner` once
//!   settled (`HSETNX`: the first engine to settle it wins, every other adopts it).
//!
//! A profile's keys share its hash tag, so on Redis Cluster each profile write is one script
//! and each read one `MGET`; on a single Redis a batch's writes are one script call and its
//! reads one `MGET` (up to [`GROUP`] profiles each), which costs Redis a fraction of the
//! per-profile calls, and a batch's save (with the clearing of the outboxes published since
//! the last one, and the index entries) is one round trip. A record is a string rather than a hash because a hash with a
//! value over 64 bytes is a hash table in Redis (about 200 bytes more per profile than the
//! value itself). The index and timer writes that go with a profile write are idempotent and
//! happen first, so a crash leaves at worst a stale entry, which the engine ignores.

use std::sync::LazyLock;

use futures::future::try_join_all;
use redis::Script;
use switchboard_engine::optimize::{Counted, Tally};
use switchboard_engine::{
    DueTimer, Epochs, Loaded, Outboxes, Record, Records, Saved, Splits, StateError, Timers, Write,
    parse_timer_member, timer_member,
};

use switchboard_identity::ProfileId;

use crate::Redis;

pub mod stored;

static SAVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/save.lua")));

static REMOVE_TIMERS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/remove_timers.lua")));

/// Profiles read or written by one command on a single Redis: a batch's worth, few enough
/// that the command stays short for the other clients.
const GROUP: usize = 128;

/// The engine's [`switchboard_engine::StateStore`] on Redis.
#[derive(Debug, Clone)]
pub struct RedisStateStore {
    redis: Redis,
    prefix: String,
}

/// Profile ids as Redis arguments.
fn ids(profiles: &[ProfileId]) -> Vec<&str> {
    profiles.iter().map(ProfileId::as_str).collect()
}

fn err(e: redis::RedisError) -> StateError {
    StateError(format!("redis: {e}"))
}

impl RedisStateStore {
    pub fn new(redis: Redis, prefix: impl Into<String>) -> Self {
        Self {
            redis,
            prefix: prefix.into(),
        }
    }

    /// A profile's key of kind `what`: `r` record, `o` outbox, `m` merged into.
    fn profile_key(&self, what: char, profile: &ProfileId) -> String {
        format!("{}:{what}:{{{profile}}}", self.prefix)
    }

    fn profile_keys(&self, profile: &ProfileId) -> [String; 3] {
        ['r', 'o', 'm'].map(|what| self.profile_key(what, profile))
    }

    /// `items` in groups that one command may touch together: on a single Redis, up to
    /// [`GROUP`] at once (one round trip and one script call for a batch); on a cluster, one
    /// each, as each profile's keys are in a slot of their own.
    fn groups<'a, T>(&self, items: &'a [T]) -> std::slice::Chunks<'a, T> {
        items.chunks(if self.redis.is_cluster() { 1 } else { GROUP })
    }

    /// The sorted set of partition `partition`'s timers (members from [`timer_member`]).
    pub fn timers_key(&self, partition: i32) -> String {
        self.partition_key("timers", partition)
    }

    /// The hash of an optimized journey's counts.
    pub fn split_key(&self, journey: &str) -> String {
        format!("{}:split:{{{journey}}}", self.prefix)
    }

    fn partition_key(&self, what: &str, partition: i32) -> String {
        format!("{}:{what}:{{p{partition}}}", self.prefix)
    }

    /// Deletes the outboxes of `profiles` and their entries in `partition`'s index.
    fn clear_cmds(&self, partition: i32, profiles: &[ProfileId]) -> Vec<redis::Cmd> {
        let mut cmds: Vec<redis::Cmd> = self
            .groups(profiles)
            .map(|group| {
                let keys: Vec<String> = group.iter().map(|p| self.profile_key('o', p)).collect();
                redis::Cmd::del(keys)
            })
            .collect();
        if !profiles.is_empty() {
            cmds.push(redis::Cmd::srem(
                self.partition_key("outbox", partition),
                ids(profiles),
            ));
        }
        cmds
    }

    /// On a single Redis: `first`, then the save scripts, in one pipeline (one round trip).
    /// A server that lost its scripts (restarted, or `SCRIPT FLUSH`) answers `NOSCRIPT`;
    /// the script is loaded and the whole pipeline sent again, which repeats only
    /// idempotent writes.
    async fn save_in_one_trip(
        &self,
        first: Vec<redis::Cmd>,
        scripts: &[redis::ScriptInvocation<'_>],
    ) -> Result<Vec<Vec<i64>>, StateError> {
        if first.is_empty() && scripts.is_empty() {
            return Ok(Vec::new()); // the client refuses an empty pipeline
        }
        let mut pipe = redis::pipe();
        for c in first {
            pipe.add_command(c).ignore();
        }
        for s in scripts {
            pipe.invoke_script(s);
        }
        match pipe.query_async(&mut self.redis.clone()).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                let _: String = SAVE
                    .prepare_invoke()
                    .load_async(&mut self.redis.clone())
                    .await
                    .map_err(err)?;
                pipe.query_async(&mut self.redis.clone()).await.map_err(err)
            }
            other => other.map_err(err),
        }
    }
}

impl Epochs for RedisStateStore {
    async fn claim_partition(&self, partition: i32) -> Result<u64, StateError> {
        redis::cmd("INCR")
            .arg(self.partition_key("epoch", partition))
            .query_async(&mut self.redis.clone())
            .await
            .map_err(err)
    }
}

impl Records for RedisStateStore {
    async fn load(&self, profiles: &[ProfileId]) -> Result<Vec<Loaded>, StateError> {
        let cmds = self
            .groups(profiles)
            .map(|group| {
                let keys: Vec<String> = group.iter().flat_map(|p| self.profile_keys(p)).collect();
                redis::Cmd::mget(keys)
            })
            .collect();
        let found: Vec<Vec<Option<Vec<u8>>>> = self.redis.query_each(cmds).await.map_err(err)?;
        let mut values = found.into_iter().flatten();
        let mut next = || values.next().flatten();
        profiles
            .iter()
            .map(|_| {
                let (record, outbox, merged_into) = (next(), next(), next());
                let merged_into = merged_into
                    .map(|id| String::from_utf8(id).map(ProfileId::from))
                    .transpose()
                    .map_err(|e| StateError(format!("merge marker is not text: {e}")))?;
                if record.is_none() && outbox.is_none() && merged_into.is_none() {
                    return Ok(None);
                }
                let mut record = match record {
                    Some(value) => stored::decode(&value)?,
                    None => Record {
                        offset: -1,
                        ..Record::default()
                    },
                };
                if merged_into.is_some() {
                    record.merged_into = merged_into;
                }
                let outbox = match outbox {
                    Some(value) => stored::decode_outbox(&value)?,
                    None => Vec::new(),
                };
                Ok(Some((record, outbox)))
            })
            .collect()
    }

    async fn save(
        &self,
        partition: i32,
        epoch: u64,
        published: &[ProfileId],
        writes: &[Write],
    ) -> Result<Vec<Saved>, StateError> {
        // Clears first, then index entries: a write's own outbox is never cleared by them,
        // and a crash leaves at worst an outbox published twice or a stale entry.
        let mut first = self.clear_cmds(partition, published);
        // One SADD and one ZADD for the batch, not one per profile and timer: Redis spends
        // more reading and answering a command than running it.
        let outboxes: Vec<&str> = writes
            .iter()
            .filter(|w| !w.outbox.is_empty())
            .map(|w| w.profile.as_str())
            .collect();
        let timers: Vec<(i64, String)> = writes
            .iter()
            .flat_map(|w| {
                (w.timers.iter())
                    .map(|(journey, due)| (*due, timer_member(w.profile.as_str(), journey)))
            })
            .collect();
        if !outboxes.is_empty() {
            first.push(redis::Cmd::sadd(
                self.partition_key("outbox", partition),
                outboxes,
            ));
        }
        if !timers.is_empty() {
            first.push(redis::Cmd::zadd_multiple(
                self.timers_key(partition),
                &timers,
            ));
        }
        let mut scripts = Vec::new();
        for group in self.groups(writes) {
            let mut script = SAVE.prepare_invoke();
            for w in group {
                let outbox = if w.outbox.is_empty() {
                    Vec::new()
                } else {
                    stored::encode_outbox(&w.outbox)?
                };
                script
                    .key(self.profile_key('r', &w.profile))
                    .key(self.profile_key('o', &w.profile))
                    .arg(epoch)
                    .arg(stored::encode(epoch, &w.record)?)
                    .arg(outbox);
            }
            scripts.push(script);
        }
        let saved: Vec<Vec<i64>> =
            if self.redis.is_cluster() {
                let _: Vec<redis::Value> = self.redis.query_each(first).await.map_err(err)?;
                try_join_all(scripts.iter().map(|script| async move {
                    script.invoke_async(&mut self.redis.clone()).await
                }))
                .await
                .map_err(err)?
            } else {
                self.save_in_one_trip(first, &scripts).await?
            };
        Ok(saved
            .into_iter()
            .flatten()
            .map(|done| {
                if done == 1 {
                    Saved::Done
                } else {
                    Saved::Fenced
                }
            })
            .collect())
    }

    async fn mark_merged(&self, merges: &[(ProfileId, ProfileId)]) -> Result<(), StateError> {
        let cmds = merges
            .iter()
            .map(|(loser, survivor)| {
                redis::Cmd::set(self.profile_key('m', loser), survivor.as_str())
            })
            .collect();
        let _: Vec<redis::Value> = self.redis.query_each(cmds).await.map_err(err)?;
        Ok(())
    }

    async fn forget(&self, partition: i32, profiles: &[ProfileId]) -> Result<(), StateError> {
        let mut cmds: Vec<redis::Cmd> = profiles
            .iter()
            .map(|p| redis::Cmd::del(&self.profile_keys(p)[..]))
            .collect();
        cmds.push(redis::Cmd::srem(
            self.partition_key("outbox", partition),
            ids(profiles),
        ));
        let _: Vec<redis::Value> = self.redis.query_each(cmds).await.map_err(err)?;
        // The shard is scanned in steps, so Redis keeps serving other partitions meanwhile.
        let shard = self.partition_key("timers", partition);
        let mut cursor = 0u64;
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("ZSCAN")
                .arg(&shard)
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.redis.clone())
                .await
                .map_err(err)?;
            // The page alternates member and score.
            let theirs: Vec<&String> = page
                .iter()
                .step_by(2)
                .filter(|m| parse_timer_member(m, 0).is_some_and(|t| profiles.contains(&t.profile)))
                .collect();
            if !theirs.is_empty() {
                redis::Cmd::zrem(&shard, theirs)
                    .query_async::<i64>(&mut self.redis.clone())
                    .await
                    .map_err(err)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

impl Outboxes for RedisStateStore {
    async fn clear_outbox(&self, partition: i32, profiles: &[ProfileId]) -> Result<(), StateError> {
        let cmds = self.clear_cmds(partition, profiles);
        let _: Vec<redis::Value> = self.redis.query_each(cmds).await.map_err(err)?;
        Ok(())
    }

    async fn pending_outboxes(&self, partition: i32) -> Result<Vec<ProfileId>, StateError> {
        let profiles: Vec<String> = redis::Cmd::smembers(self.partition_key("outbox", partition))
            .query_async(&mut self.redis.clone())
            .await
            .map_err(err)?;
        Ok(profiles.into_iter().map(ProfileId::from).collect())
    }
}

impl Timers for RedisStateStore {
    async fn due_timers(
        &self,
        partition: i32,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DueTimer>, StateError> {
        let members: Vec<(String, i64)> = redis::cmd("ZRANGE")
            .arg(self.partition_key("timers", partition))
            .arg("-inf")
            .arg(now)
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .arg("WITHSCORES")
            .query_async(&mut self.redis.clone())
            .await
            .map_err(err)?;
        Ok(members
            .iter()
            .filter_map(|(m, due)| parse_timer_member(m, *due))
            .collect())
    }

    async fn remove_timers(&self, partition: i32, timers: &[DueTimer]) -> Result<(), StateError> {
        if timers.is_empty() {
            return Ok(());
        }
        let mut script = REMOVE_TIMERS.prepare_invoke();
        script.key(self.partition_key("timers", partition));
        for t in timers {
            script
                .arg(timer_member(t.profile.as_str(), &t.journey))
                .arg(t.due);
        }
        script
            .invoke_async::<i64>(&mut self.redis.clone())
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn pending_timers(&self, partition: i32) -> Result<u64, StateError> {
        redis::Cmd::zcard(self.partition_key("timers", partition))
            .query_async(&mut self.redis.clone())
            .await
            .map_err(err)
    }
}

impl Splits for RedisStateStore {
    async fn count(&self, counted: &[Counted]) -> Result<(), StateError> {
        let mut cmds = Vec::new();
        for c in counted {
            let key = self.split_key(&c.journey);
            cmds.push(redis::Cmd::hset_nx(&key, "started", c.first_at));
            for (what, n) in [("entries", c.entries), ("goals", c.goals)] {
                if n > 0 {
                    cmds.push(redis::Cmd::hincr(&key, format!("{what}:{}", c.arm), n));
                }
            }
        }
        let _: Vec<redis::Value> = self.redis.query_each(cmds).await.map_err(err)?;
        Ok(())
    }

    async fn tally(&self, journey: &str) -> Result<Tally, StateError> {
        let fields: Vec<(String, String)> = redis::Cmd::hgetall(self.split_key(journey))
            .query_async(&mut self.redis.clone())
            .await
            .map_err(err)?;
        let mut tally = Tally::default();
        for (field, value) in fields {
            let count = || value.parse::<u64>().unwrap_or(0);
            match field.split_once(':') {
                Some(("entries", arm)) => {
                    tally.arms.entry(arm.to_owned()).or_default().entries = count()
                }
                Some(("goals", arm)) => {
                    tally.arms.entry(arm.to_owned()).or_default().goals = count()
                }
                _ if field == "started" => tally.started = value.parse().ok(),
                _ if field == "winner" => tally.winner = Some(value),
                _ => {}
            }
        }
        Ok(tally)
    }

    async fn settle(&self, journey: &str, arm: &str) -> Result<(String, bool), StateError> {
        let key = self.split_key(journey);
        let settled: bool = redis::Cmd::hset_nx(&key, "winner", arm)
            .query_async(&mut self.redis.clone())
            .await
            .map_err(err)?;
        if settled {
            return Ok((arm.to_owned(), true));
        }
        let standing: Option<String> = redis::Cmd::hget(&key, "winner")
            .query_async(&mut self.redis.clone())
            .await
            .map_err(err)?;
        Ok((standing.unwrap_or_else(|| arm.to_owned()), false))
    }
}
