//! The engine's state stores (memory, Redis, Redis Cluster): atomic writes with outbox,
//! fencing of zombie owners, durable timers.

use switchboard_codec::{SendCommand, SendReason};
use switchboard_config::RedisConfig;
use switchboard_engine::optimize::{ArmTally, Counted, Tally};
use switchboard_engine::{
    DueTimer, Epochs, MemoryStateStore, Outgoing, Record, Records, Saved, Splits, StateStore,
    Timers, Write, timer_member_with_due,
};
use switchboard_identity::ProfileId;
use switchboard_redis::{RedisStateStore, connect};
use switchboard_test_support::{RedisCluster, RedisServer, unique};

fn command(id: &str) -> Outgoing {
    Outgoing::Command(SendCommand {
        command_id: id.into(),
        profile_id: "p1".into(),
        channel: "email".into(),
        address: "a@example.com".into(),
        template: "t".into(),
        locale: "en".into(),
        vars: Default::default(),
        journey: "j".into(),
        version: 1,
        step: "s".into(),
        variant: None,
        not_after: None,
        reason: SendReason::default(),
        created_at: 1,
    })
}

fn write(profile: &str, offset: i64, outbox: Vec<Outgoing>, timers: Vec<(String, i64)>) -> Write {
    Write {
        profile: profile.into(),
        record: Record {
            offset,
            ..Record::default()
        },
        outbox,
        timers,
    }
}

/// An optimized journey's counts add up across batches, start at the first counted entry,
/// and its winner, once settled, stands.
async fn splits<S: StateStore>(store: &S) {
    let counted = |arm: &str, entries, goals, first_at| Counted {
        journey: "subject-line".into(),
        arm: arm.into(),
        entries,
        goals,
        first_at,
    };
    assert_eq!(store.tally("subject-line").await.unwrap(), Tally::default());
    store
        .count(&[counted("a", 3, 0, 1_000), counted("b", 2, 1, 1_500)])
        .await
        .unwrap();
    store.count(&[counted("a", 1, 2, 9_000)]).await.unwrap();
    let tally = store.tally("subject-line").await.unwrap();
    assert_eq!(tally.started, Some(1_000));
    assert_eq!(
        (tally.arms["a"], tally.arms["b"]),
        (
            ArmTally {
                entries: 4,
                goals: 2
            },
            ArmTally {
                entries: 2,
                goals: 1
            }
        )
    );
    assert_eq!(tally.winner, None);
    assert_eq!(
        store.settle("subject-line", "b").await.unwrap(),
        ("b".to_owned(), true)
    );
    assert_eq!(
        store.settle("subject-line", "a").await.unwrap(),
        ("b".to_owned(), false),
        "a settled winner stands"
    );
    let tally = store.tally("subject-line").await.unwrap();
    assert_eq!(tally.winner.as_deref(), Some("b"));
    assert_eq!(tally.arms.len(), 2, "the winner is no variant's count");
    assert_eq!(store.tally("other").await.unwrap(), Tally::default());
}

async fn conformance<S: StateStore>(store: &S) {
    splits(store).await;
    // A tick whose timers all belong to unknown profiles saves nothing: answered at once.
    let nothing = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        store.save(3, 1, &[], &[]),
    )
    .await
    .expect("an empty save is answered");
    assert_eq!(nothing.map_err(|e| e.to_string()), Ok(Vec::<Saved>::new()));

    // The record, its position and its outbox land together; the outbox is indexed.
    let saved = store
        .save(3, 1, &[], &[write("p1", 10, vec![command("c1")], vec![])])
        .await
        .unwrap();
    assert_eq!(saved, vec![Saved::Done]);
    let (record, outbox) = store
        .load(&["p1".into()])
        .await
        .unwrap()
        .pop()
        .flatten()
        .unwrap();
    assert_eq!(record.offset, 10);
    assert_eq!(outbox, vec![command("c1")]);
    assert_eq!(
        store.pending_outboxes(3).await.unwrap(),
        vec!["p1".to_owned()]
    );
    store.clear_outbox(3, &["p1".into()]).await.unwrap();
    assert!(store.pending_outboxes(3).await.unwrap().is_empty());
    assert!(
        store.load(&["p1".into()]).await.unwrap()[0]
            .as_ref()
            .unwrap()
            .1
            .is_empty()
    );
    assert!(store.load(&["nobody".into()]).await.unwrap()[0].is_none());

    // A newer owner of the partition fences the old one.
    let old = store.claim_partition(3).await.unwrap();
    let new = store.claim_partition(3).await.unwrap();
    assert!(new > old);
    assert_eq!(
        store
            .save(3, new, &[], &[write("p2", 1, vec![], vec![])])
            .await
            .unwrap(),
        vec![Saved::Done]
    );
    assert_eq!(
        store
            .save(3, old, &[], &[write("p2", 2, vec![], vec![])])
            .await
            .unwrap(),
        vec![Saved::Fenced]
    );
    assert_eq!(
        store.load(&["p2".into()]).await.unwrap()[0]
            .as_ref()
            .unwrap()
            .0
            .offset,
        1,
        "the zombie's write did not land"
    );

    // A batch: each write fenced or not on its own (by the epoch of the profile's last
    // writer), answers and loads in the caller's order, across more profiles than one Redis
    // call takes.
    let batch: Vec<Write> = (0..300)
        .map(|i| {
            write(
                &format!("b{i}"),
                i,
                vec![command(&format!("cb{i}"))],
                vec![],
            )
        })
        .collect();
    store
        .save(3, new, &[], &[write("b150", 7, vec![], vec![])])
        .await
        .unwrap();
    let saved = store.save(3, old, &[], &batch).await.unwrap();
    assert_eq!(saved.len(), 300);
    for (i, s) in saved.iter().enumerate() {
        let expected = if i == 150 { Saved::Fenced } else { Saved::Done };
        assert_eq!(*s, expected, "write {i}");
    }
    let mut names: Vec<ProfileId> = (0..300).map(|i| format!("b{i}").into()).collect();
    names.insert(200, "nobody".into());
    let loaded = store.load(&names).await.unwrap();
    assert_eq!(loaded.len(), 301);
    for (name, found) in names.iter().zip(&loaded) {
        match (name.as_str(), found) {
            ("nobody", None) => {}
            ("b150", Some((record, outbox))) => {
                assert_eq!(record.offset, 7, "the fenced write did not land");
                assert!(outbox.is_empty());
            }
            (name, Some((record, outbox))) => {
                let i: i64 = name[1..].parse().unwrap();
                assert_eq!(record.offset, i, "{name}");
                assert_eq!(outbox, &vec![command(&format!("cb{i}"))], "{name}");
            }
            (name, found) => panic!("{name}: {found:?}"),
        }
    }
    store.clear_outbox(3, &names).await.unwrap();
    assert!(
        store
            .load(&names)
            .await
            .unwrap()
            .iter()
            .flatten()
            .all(|(_, outbox)| outbox.is_empty())
    );

    // Timers: only the due ones, oldest first; removed once fired.
    store
        .save(
            3,
            new,
            &[],
            &[write(
                "p3",
                1,
                vec![],
                vec![("j1".into(), 100), ("j2".into(), 50), ("j3".into(), 10_000)],
            )],
        )
        .await
        .unwrap();
    let due = store.due_timers(3, 200, 10).await.unwrap();
    let j = |journey: &str, due: i64| DueTimer {
        profile: "p3".into(),
        journey: journey.into(),
        due,
    };
    assert_eq!(due, vec![j("j2", 50), j("j1", 100)]);
    assert_eq!(store.pending_timers(3).await.unwrap(), 3);
    store.remove_timers(3, &due).await.unwrap();
    assert_eq!(
        store.due_timers(3, 20_000, 10).await.unwrap(),
        vec![j("j3", 10_000)]
    );

    // A journey has one timer per profile: set again, it moves, and removing the timer it
    // replaced (fired or cancelled in an earlier batch, or by the partition's previous
    // owner) leaves it.
    let p4 = |due: i64| DueTimer {
        profile: "p4".into(),
        journey: "j1".into(),
        due,
    };
    let set = |due: i64| write("p4", 1, vec![], vec![("j1".into(), due)]);
    store.save(3, new, &[], &[set(100)]).await.unwrap();
    assert_eq!(store.due_timers(3, 150, 10).await.unwrap(), vec![p4(100)]);
    store.save(3, new, &[], &[set(500)]).await.unwrap();
    assert_eq!(store.pending_timers(3).await.unwrap(), 2);
    store.remove_timers(3, &[p4(100)]).await.unwrap();
    assert_eq!(
        store.due_timers(3, 20_000, 10).await.unwrap(),
        vec![p4(500), j("j3", 10_000)]
    );
    store.remove_timers(3, &[p4(500)]).await.unwrap();
    assert_eq!(store.pending_timers(3).await.unwrap(), 1);

    // One save indexes every profile's outbox and timers, in the partition saved.
    store
        .save(
            3,
            new,
            &[],
            &[
                write("r1", 1, vec![command("cr1")], vec![("j1".into(), 60)]),
                write("r2", 1, vec![], vec![("j1".into(), 80), ("j2".into(), 90)]),
            ],
        )
        .await
        .unwrap();
    let elsewhere = write("r3", 1, vec![command("cr3")], vec![("j1".into(), 70)]);
    store.save(4, 1, &[], &[elsewhere]).await.unwrap();
    let due: Vec<(ProfileId, i64)> = store
        .due_timers(3, 200, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.profile, t.due))
        .collect();
    assert_eq!(
        due,
        vec![("r1".into(), 60), ("r2".into(), 80), ("r2".into(), 90)]
    );
    let timers_of =
        |partition| async move { store.due_timers(partition, 200, 10).await.unwrap().len() };
    assert_eq!(timers_of(4).await, 1);
    assert_eq!(
        store.pending_outboxes(4).await.unwrap(),
        vec!["r3".to_owned()]
    );
    let mut outboxes = store.pending_outboxes(3).await.unwrap();
    outboxes.sort();
    assert_eq!(outboxes, vec!["r1".to_owned()]);
    store.save(3, new, &["r1".into()], &[]).await.unwrap();
    store.save(4, 1, &["r3".into()], &[]).await.unwrap();
    for partition in [3, 4] {
        let due = store.due_timers(partition, 200, 10).await.unwrap();
        store.remove_timers(partition, &due).await.unwrap();
    }

    // A save first clears the outboxes published since the last one: an outbox it writes
    // anew stays, and stays indexed.
    store
        .save(
            3,
            new,
            &[],
            &[
                write("q1", 1, vec![command("cq1")], vec![]),
                write("q2", 1, vec![command("cq2")], vec![]),
            ],
        )
        .await
        .unwrap();
    store
        .save(
            3,
            new,
            &["q1".into(), "q2".into()],
            &[write("q2", 2, vec![command("cq2b")], vec![])],
        )
        .await
        .unwrap();
    let loaded = store.load(&["q1".into(), "q2".into()]).await.unwrap();
    assert!(loaded[0].as_ref().unwrap().1.is_empty(), "q1's is cleared");
    assert_eq!(loaded[1].as_ref().unwrap().1, vec![command("cq2b")]);
    assert_eq!(
        store.pending_outboxes(3).await.unwrap(),
        vec!["q2".to_owned()]
    );
    // A save with nothing to write still clears (an idle partition's timers fired on
    // profiles never stored).
    assert_eq!(
        store.save(3, new, &["q2".into()], &[]).await.unwrap(),
        Vec::<Saved>::new()
    );
    assert!(store.pending_outboxes(3).await.unwrap().is_empty());

    store
        .mark_merged(&[("p3".into(), "p1".into()), ("p6".into(), "p1".into())])
        .await
        .unwrap();
    assert_eq!(
        store.load(&["p3".into()]).await.unwrap()[0]
            .as_ref()
            .unwrap()
            .0
            .merged_into
            .as_ref()
            .map(ProfileId::as_str),
        Some("p1")
    );
    let p6 = store.load(&["p6".into()]).await.unwrap();
    assert_eq!(
        p6[0]
            .as_ref()
            .unwrap()
            .0
            .merged_into
            .as_ref()
            .map(ProfileId::as_str),
        Some("p1"),
        "a loser with no record of its own is marked too"
    );

    // Forget: records, outboxes and the partition's timers of the profiles go; others stay.
    store
        .save(
            3,
            new,
            &[],
            &[
                write("p4", 1, vec![command("c4")], vec![("j4".into(), 500)]),
                write("p5", 1, vec![], vec![("j5".into(), 600)]),
            ],
        )
        .await
        .unwrap();
    store.forget(3, &["p3".into(), "p4".into()]).await.unwrap();
    let loaded = store
        .load(&["p3".into(), "p4".into(), "p5".into()])
        .await
        .unwrap();
    assert!(loaded[0].is_none() && loaded[1].is_none(), "{loaded:?}");
    assert!(loaded[2].is_some(), "another profile is untouched");
    assert!(
        !store
            .pending_outboxes(3)
            .await
            .unwrap()
            .contains(&"p4".into())
    );
    let left: Vec<ProfileId> = store
        .due_timers(3, 20_000, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.profile)
        .collect();
    assert_eq!(left, vec!["p5".to_owned()], "only p5's timer is left");
}

#[tokio::test]
async fn memory_state_store() {
    conformance(&MemoryStateStore::new()).await;
}

#[tokio::test]
async fn redis_state_store() {
    let server = RedisServer::start();
    let config = RedisConfig {
        url: server.url(),
        ..RedisConfig::default()
    };
    let redis = connect(&config).await.unwrap();
    let prefix = unique("s");
    let store = RedisStateStore::new(redis.clone(), prefix.clone());
    conformance(&store).await;
    // Another engine process sees the winner the first settled.
    let other = RedisStateStore::new(connect(&config).await.unwrap(), prefix);
    assert_eq!(
        other.settle("subject-line", "a").await.unwrap(),
        ("b".to_owned(), false)
    );
    // A restarted server has no scripts: the save's one round trip loads it and saves.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut redis.clone())
        .await
        .unwrap();
    let epoch = store.claim_partition(3).await.unwrap();
    let saved = store
        .save(
            3,
            epoch,
            &[],
            &[write("r1", 4, vec![command("cr1")], vec![])],
        )
        .await
        .unwrap();
    assert_eq!(saved, vec![Saved::Done]);
    let loaded = store.load(&["r1".into()]).await.unwrap();
    assert_eq!(loaded[0].as_ref().unwrap().0.offset, 4);

    // Timers an earlier release set, with their due in the member, fire and are removed.
    let earlier = timer_member_with_due("old", "j1", 70);
    let _: i64 = redis::Cmd::zadd(store.timers_key(3), earlier, 70)
        .query_async(&mut redis.clone())
        .await
        .unwrap();
    let due = store.due_timers(3, 100, 10).await.unwrap();
    let old = DueTimer {
        profile: "old".into(),
        journey: "j1".into(),
        due: 70,
    };
    assert_eq!(due, vec![old]);
    store.remove_timers(3, &due).await.unwrap();
    assert!(store.due_timers(3, 100, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn redis_cluster_state_store() {
    let cluster = RedisCluster::start();
    let urls = cluster.urls();
    let config = RedisConfig {
        url: urls[0].clone(),
        cluster: true,
        cluster_seeds: urls[1..].to_vec(),
        ..RedisConfig::default()
    };
    conformance(&RedisStateStore::new(
        connect(&config).await.unwrap(),
        unique("s"),
    ))
    .await;
}
