//! The conformance suite every [`IdentityStore`] passes: the in-memory store in its own
//! crate's tests, the Redis store against a real redis-server and a real Redis Cluster.
//! Each check takes a fresh, empty store and panics with what went wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use switchboard_codec::Identifier;
use switchboard_identity::store::{Node, Reservation};
use switchboard_identity::{
    Found, IdentityRules, IdentityStore, Merge, ProfileId, Refusal, Stitched, find_root, forget,
    look_up, show, stitch, stitch_found,
};

/// The identifiers of one event, as `(kind, value)` pairs.
pub type Event = Vec<(&'static str, String)>;

pub fn ids(pairs: &[(&str, &str)]) -> Vec<Identifier> {
    pairs.iter().map(|(k, v)| Identifier::new(*k, *v)).collect()
}

/// Prepares and stitches one event's identifiers.
pub async fn stitch_raw<S: IdentityStore>(
    store: &S,
    rules: &IdentityRules,
    raw: &[Identifier],
    now: i64,
) -> Stitched {
    let prepared = rules.prepare(raw);
    stitch(store, &rules.limits(), &prepared.accepted, now)
        .await
        .expect("stitch")
}

/// How identifiers are grouped into profiles: the sets of identifiers sharing a root.
pub async fn grouping<S: IdentityStore>(
    store: &S,
    identifiers: &BTreeSet<Identifier>,
) -> BTreeSet<BTreeSet<Identifier>> {
    let list: Vec<Identifier> = identifiers.iter().cloned().collect();
    let pointers = store.lookup(&list).await.expect("lookup");
    let mut groups: BTreeMap<ProfileId, BTreeSet<Identifier>> = BTreeMap::new();
    for (id, p) in list.into_iter().zip(pointers) {
        let p = p.unwrap_or_else(|| panic!("identifier of kind {} is not linked", id.kind));
        let root = find_root(store, &p).await.expect("find_root");
        groups.entry(root).or_default().insert(id);
    }
    groups.into_values().collect()
}

async fn root_of<S: IdentityStore>(store: &S, id: &Identifier) -> Option<ProfileId> {
    let p = store
        .lookup(std::slice::from_ref(id))
        .await
        .expect("lookup")
        .pop()
        .flatten()?;
    Some(find_root(store, &p).await.expect("find_root"))
}

async fn node_of<S: IdentityStore>(store: &S, profile: &ProfileId) -> Node {
    store
        .node(profile)
        .await
        .expect("node")
        .expect("the profile has a node")
}

/// A returning visitor is recognised by any identifier seen before.
pub async fn same_identifiers_same_profile<S: IdentityStore>(store: &S) {
    let rules = IdentityRules::default();
    let first = stitch_raw(
        store,
        &rules,
        &ids(&[("anonymous_id", "c1"), ("device_id", "d1")]),
        1,
    )
    .await;
    assert!(first.created, "a new visitor creates a profile");
    let again = stitch_raw(store, &rules, &ids(&[("device_id", "d1")]), 2).await;
    assert_eq!(again.profile, first.profile);
    assert!(!again.created);
    let more = stitch_raw(
        store,
        &rules,
        &ids(&[("device_id", "d1"), ("email", " Ann@Example.com")]),
        3,
    )
    .await;
    assert_eq!(
        more.profile, first.profile,
        "a new identifier attaches to the known profile"
    );
    let by_email = stitch_raw(store, &rules, &ids(&[("email", "ann@example.com")]), 4).await;
    assert_eq!(
        by_email.profile, first.profile,
        "normalised email finds the profile"
    );
}

/// What a lookup ahead of a stitch found (a wave's one lookup, stale by the time an event
/// uses it) still leads to the profile that claimed the identifiers since, and to the
/// survivor of a merge since; pointers that do not match the identifiers are looked up
/// afresh.
pub async fn stale_lookups_find_the_profile_that_claimed_them<S: IdentityStore>(store: &S) {
    let rules = IdentityRules::default();
    let identifiers = rules
        .prepare(&ids(&[("email", "bo@example.com"), ("device_id", "d-bo")]))
        .accepted;
    let before = look_up(store, &identifiers).await.expect("look up");
    assert_eq!(before.pointers, vec![None, None]);
    let first = stitch(store, &rules.limits(), &identifiers, 1)
        .await
        .expect("stitch");
    assert!(first.created);
    let now = look_up(store, &identifiers).await.expect("look up");
    assert_eq!(
        now,
        Found {
            pointers: vec![Some(first.profile.clone()); 2],
            roots: vec![first.profile.clone()],
        }
    );
    for found in [before, Found::default(), now] {
        let again = stitch_found(store, &rules.limits(), &identifiers, found, 2)
            .await
            .expect("stitch with a stale lookup");
        assert_eq!(
            again.profile, first.profile,
            "a stale lookup made another profile"
        );
        assert!(!again.created);
        assert!(again.merges.is_empty());
    }
    let groups = grouping(store, &identifiers.iter().cloned().collect()).await;
    assert_eq!(groups.len(), 1, "{groups:?}");

    // A root found before a merge made it the loser: the event's profile leads to the survivor.
    let older = stitch_raw(store, &rules, &ids(&[("anonymous_id", "a-old")]), 0).await;
    let stale = look_up(store, &identifiers).await.expect("look up");
    let linking = ids(&[("anonymous_id", "a-old"), ("device_id", "d-bo")]);
    let merged = stitch_raw(store, &rules, &linking, 3).await;
    assert_eq!(merged.merges.len(), 1, "{merged:?}");
    assert_eq!(merged.profile, older.profile, "the older survives");
    let again = stitch_found(store, &rules.limits(), &identifiers, stale, 4)
        .await
        .expect("stitch with a stale root");
    assert_eq!(
        find_root(store, &again.profile).await.expect("root"),
        older.profile
    );
    assert!(again.merges.is_empty() && !again.created, "{again:?}");
}

/// An event carrying identifiers of two profiles merges them; the older survives, the loser
/// becomes an alias, and `show` lists everything.
pub async fn linking_event_merges_into_the_oldest<S: IdentityStore>(store: &S) {
    let rules = IdentityRules::default();
    let web = stitch_raw(store, &rules, &ids(&[("anonymous_id", "cookie-1")]), 1_000).await;
    let app = stitch_raw(store, &rules, &ids(&[("device_id", "phone-1")]), 2_000).await;
    assert_ne!(web.profile, app.profile);
    let login = stitch_raw(
        store,
        &rules,
        &ids(&[
            ("device_id", "phone-1"),
            ("anonymous_id", "cookie-1"),
            ("customer_id", "C1"),
        ]),
        3_000,
    )
    .await;
    assert_eq!(login.profile, web.profile, "the older profile survives");
    assert_eq!(login.merges.len(), 1);
    assert_eq!(login.merges.first().map(|m| &m.loser), Some(&app.profile));
    let app_node = store
        .node(&app.profile)
        .await
        .expect("node")
        .expect("loser node");
    assert_eq!(
        app_node.parent.as_ref(),
        Some(&web.profile),
        "the loser is an alias"
    );
    let late = stitch_raw(store, &rules, &ids(&[("device_id", "phone-1")]), 4_000).await;
    assert_eq!(
        late.profile, web.profile,
        "late events for the loser are redirected"
    );
    let view = show(store, &Identifier::new("device_id", "phone-1"))
        .await
        .expect("show")
        .expect("known identifier");
    assert_eq!(view.profile, web.profile);
    assert_eq!(
        view.identifiers,
        ids(&[
            ("anonymous_id", "cookie-1"),
            ("customer_id", "C1"),
            ("device_id", "phone-1")
        ])
    );
    assert_eq!(view.merged, vec![app.profile.clone()]);
    assert!(
        show(store, &Identifier::new("email", "nobody@example.com"))
            .await
            .expect("show")
            .is_none()
    );
}

/// Forgetting one identifier of a merged profile erases the whole group: every identifier
/// is unknown afterwards, every node is gone, the other customers are untouched, and the same
/// identifiers seen again make a new profile.
pub async fn forget_erases_the_group<S: IdentityStore>(store: &S) {
    let rules = IdentityRules::default();
    let web = stitch_raw(store, &rules, &ids(&[("anonymous_id", "cookie-9")]), 1_000).await;
    let app = stitch_raw(store, &rules, &ids(&[("device_id", "phone-9")]), 2_000).await;
    let both = ids(&[
        ("anonymous_id", "cookie-9"),
        ("device_id", "phone-9"),
        ("email", "zoe@example.com"),
    ]);
    stitch_raw(store, &rules, &both, 3_000).await;
    let other = stitch_raw(
        store,
        &rules,
        &ids(&[("email", "other@example.com")]),
        4_000,
    )
    .await;

    let before = store.erasures().await.expect("erasures");
    let erased = forget(store, &Identifier::new("device_id", "phone-9"))
        .await
        .expect("forget")
        .expect("a known identifier");
    assert!(
        store.erasures().await.expect("erasures") > before,
        "the erasure is counted, so stitchers that cache forget what they knew"
    );
    assert_eq!(
        erased,
        vec![web.profile.clone(), app.profile.clone()],
        "the root first, then what was merged into it"
    );
    for id in &both {
        assert_eq!(
            root_of(store, id).await,
            None,
            "{} is still linked",
            id.kind
        );
    }
    for p in [&web.profile, &app.profile] {
        assert_eq!(store.node(p).await.expect("node"), None, "node {p} remains");
    }
    assert_eq!(
        root_of(store, &Identifier::new("email", "other@example.com")).await,
        Some(other.profile),
        "another customer is untouched"
    );
    assert_eq!(
        forget(store, &Identifier::new("device_id", "phone-9"))
            .await
            .expect("forget"),
        None,
        "forgetting twice finds nothing"
    );
    let back = stitch_raw(store, &rules, &both, 5_000).await;
    assert!(back.created, "a returning customer starts a new profile");
    assert_ne!(back.profile, web.profile);
}

/// A shared device used by two logged-in customers: two profiles, one conflict, and the
/// device (the weaker identifier) stays with the first customer.
pub async fn two_customer_ids_never_merge<S: IdentityStore>(store: &S) {
    let rules = IdentityRules::default();
    let ann = stitch_raw(
        store,
        &rules,
        &ids(&[("customer_id", "ann"), ("device_id", "family-ipad")]),
        1,
    )
    .await;
    let bob = stitch_raw(
        store,
        &rules,
        &ids(&[("customer_id", "bob"), ("device_id", "family-ipad")]),
        2,
    )
    .await;
    assert_ne!(
        ann.profile, bob.profile,
        "two customer ids are two profiles"
    );
    assert!(bob.merges.is_empty());
    assert_eq!(
        bob.conflicts,
        vec![(
            "device_id".to_owned(),
            Refusal::KindLimit("customer_id".into())
        )]
    );
    assert_eq!(
        root_of(store, &Identifier::new("device_id", "family-ipad")).await,
        Some(ann.profile.clone())
    );
    // An email attached to bob, then an event naming ann's id and bob's email: still apart.
    stitch_raw(
        store,
        &rules,
        &ids(&[("customer_id", "bob"), ("email", "bob@example.com")]),
        3,
    )
    .await;
    let cross = stitch_raw(
        store,
        &rules,
        &ids(&[("customer_id", "ann"), ("email", "bob@example.com")]),
        4,
    )
    .await;
    assert_eq!(cross.profile, ann.profile);
    assert_eq!(cross.conflicts.len(), 1);
    assert_ne!(
        root_of(store, &Identifier::new("customer_id", "ann")).await,
        root_of(store, &Identifier::new("customer_id", "bob")).await
    );
}

/// Blocked junk values never link two visitors.
pub async fn blocked_values_never_link<S: IdentityStore>(store: &S) {
    let rules = IdentityRules {
        blocked: vec!["00000000-0000-0000-0000-000000000000".into()],
        ..IdentityRules::default()
    };
    let mut profiles = BTreeSet::new();
    for (n, junk) in [
        "",
        "null",
        "undefined",
        "anonymous",
        "0",
        "-1",
        "\"null\"",
        "NULL",
        "00000000-0000-0000-0000-000000000000",
    ]
    .iter()
    .enumerate()
    {
        let cookie = format!("cookie-{n}");
        let s = stitch_raw(
            store,
            &rules,
            &ids(&[("anonymous_id", &cookie), ("device_id", junk)]),
            1,
        )
        .await;
        profiles.insert(s.profile);
        assert_eq!(
            root_of(store, &Identifier::new("device_id", *junk)).await,
            None,
            "`{junk}` was linked"
        );
    }
    assert_eq!(profiles.len(), 9, "each visitor keeps their own profile");
}

/// `n` events of a device, each with an anonymous id never seen before, from time `at`.
async fn new_cookies<S: IdentityStore>(
    store: &S,
    rules: &IdentityRules,
    device: &str,
    n: i64,
    at: i64,
) {
    for i in 0..n {
        let cookie = format!("{device}-{i}");
        stitch_raw(
            store,
            rules,
            &ids(&[("device_id", device), ("anonymous_id", &cookie)]),
            at + i,
        )
        .await;
    }
}

/// The caps on identifiers per profile and on merges per profile hold.
pub async fn caps_hold<S: IdentityStore>(store: &S) {
    let rules = IdentityRules {
        max_identifiers_per_profile: 5,
        max_merges_per_profile: 2,
        ..IdentityRules::default()
    };
    let first = stitch_raw(store, &rules, &ids(&[("device_id", "kiosk")]), 1).await;
    new_cookies(store, &rules, "kiosk", 10, 2).await;
    let node = node_of(store, &first.profile).await;
    assert_eq!(node.identifiers.len(), 5, "the identifier cap holds");
    // The cap counts identifiers only, not the counters a merge leaves on the survivor.
    let rules = IdentityRules {
        max_identifiers_per_profile: 4,
        ..IdentityRules::default()
    };
    let older = stitch_raw(store, &rules, &ids(&[("device_id", "tv")]), 10).await;
    stitch_raw(store, &rules, &ids(&[("email", "tv@x.io")]), 11).await;
    let linked = stitch_raw(
        store,
        &rules,
        &ids(&[("device_id", "tv"), ("email", "tv@x.io")]),
        12,
    )
    .await;
    assert_eq!(linked.profile, older.profile);
    assert_eq!(linked.merges.len(), 1);
    new_cookies(store, &rules, "tv", 4, 13).await;
    let node = node_of(store, &older.profile).await;
    assert_eq!(node.merges, 1);
    assert_eq!(
        node.identifiers.len(),
        4,
        "two of the four anonymous ids fit: {:?}",
        node.identifiers
    );
    // Separate visitors each merged into one shared profile through a linking event.
    let rules = IdentityRules {
        max_merges_per_profile: 2,
        ..IdentityRules::default()
    };
    let hub = stitch_raw(store, &rules, &ids(&[("push_token", "hub")]), 100).await;
    let mut refused = 0;
    for n in 0..5 {
        let token = format!("t{n}");
        stitch_raw(
            store,
            &rules,
            &ids(&[
                ("phone", &format!("+4479111234{n:02}")),
                ("email", &format!("{token}@x.io")),
            ]),
            200 + n,
        )
        .await;
        let link = stitch_raw(
            store,
            &rules,
            &ids(&[("push_token", "hub"), ("email", &format!("{token}@x.io"))]),
            300 + n,
        )
        .await;
        refused += link
            .conflicts
            .iter()
            .filter(|(_, r)| *r == Refusal::TooManyMerges)
            .count();
    }
    let node = node_of(store, &hub.profile).await;
    assert_eq!(node.merges, 2, "the merge cap holds");
    assert_eq!(refused, 3);
}

/// Two events of the same millisecond whose first new identifier is the same derive the same
/// new profile id ([`ProfileId::derive`]). The later one, stitched from a lookup taken
/// before the first claimed, finds that profile made already: it joins what the profile has
/// become (merged into an older one meanwhile), a profile made full keeps its limits, and an
/// identifier that profile lost to another is found where it went.
pub async fn an_event_of_the_same_millisecond_joins_the_profile_it_would_make<S: IdentityStore>(
    store: &S,
) {
    let rules = IdentityRules {
        max_identifiers_per_profile: 3,
        ..IdentityRules::default()
    };
    let limits = rules.limits();
    let prepare = |pairs: &[(&str, &str)]| rules.prepare(&ids(pairs)).accepted;
    // Stitched from a lookup taken before the first event's claims: it found nothing.
    let late_stitch = |identifiers: Vec<Identifier>, at: i64| {
        let limits = &limits;
        async move {
            let stale = Found {
                pointers: vec![None; identifiers.len()],
                roots: Vec::new(),
            };
            stitch_found(store, limits, &identifiers, stale, at)
                .await
                .expect("stitch from a lookup before the first event's claims")
        }
    };

    // Made, then merged into an older profile.
    let first = stitch(store, &limits, &prepare(&[("email", "e1@x.io")]), 5)
        .await
        .expect("stitch");
    let older = stitch(store, &limits, &prepare(&[("device_id", "d9")]), 1)
        .await
        .expect("stitch");
    let linking = prepare(&[("email", "e1@x.io"), ("device_id", "d9")]);
    let merged = stitch(store, &limits, &linking, 6).await.expect("stitch");
    assert_eq!(
        merged.merges,
        vec![Merge {
            survivor: older.profile.clone(),
            loser: first.profile.clone()
        }]
    );
    let late = prepare(&[("email", "e1@x.io"), ("anonymous_id", "a2")]);
    let again = late_stitch(late.clone(), 5).await;
    assert_eq!(
        find_root(store, &again.profile).await.expect("root"),
        older.profile
    );
    assert!(
        again.merges.is_empty() && again.conflicts.is_empty(),
        "{again:?}"
    );
    let all: BTreeSet<Identifier> = linking.into_iter().chain(late).collect();
    assert_eq!(
        node_of(store, &older.profile).await.identifiers,
        all,
        "the survivor holds the late event's identifiers, so its limits count them"
    );
    assert_eq!(grouping(store, &all).await.len(), 1);

    // Made and filled: the late event's extra identifier is refused, not added past the cap.
    let full = prepare(&[
        ("email", "b1@x.io"),
        ("device_id", "b2"),
        ("anonymous_id", "b3"),
    ]);
    let made = stitch(store, &limits, &full, 7).await.expect("stitch");
    let late = prepare(&[("email", "b1@x.io"), ("anonymous_id", "b4")]);
    let again = late_stitch(late, 7).await;
    assert_eq!(again.profile, made.profile);
    assert_eq!(
        again.conflicts,
        vec![("anonymous_id".to_owned(), Refusal::TooManyIdentifiers)]
    );
    assert_eq!(
        node_of(store, &made.profile).await.identifiers,
        full.into_iter().collect()
    );

    // Made, merged, and its first identifier claimed by a third profile (the first event's
    // claim lost): the late event finds that profile, though the survivor is full.
    let taker = stitch(store, &limits, &prepare(&[("email", "c1@x.io")]), 9)
        .await
        .expect("stitch");
    let seed = prepare(&[("email", "c1@x.io")]);
    let lost = ProfileId::derive(8, "email", "c1@x.io");
    let device = prepare(&[("device_id", "c2")]);
    let both: Vec<Identifier> = seed.iter().chain(&device).cloned().collect();
    let reservation = Reservation {
        identifiers: both,
        merges: 0,
    };
    store
        .reserve(&lost, &reservation, &limits)
        .await
        .expect("reserve");
    store.claim_all(&device, &lost).await.expect("claim");
    store.release(&lost, &seed).await.expect("release");
    let older = stitch(store, &limits, &prepare(&[("device_id", "c3")]), 2)
        .await
        .expect("stitch");
    let linking = prepare(&[
        ("device_id", "c2"),
        ("device_id", "c3"),
        ("anonymous_id", "c4"),
    ]);
    let merged = stitch(store, &limits, &linking, 10).await.expect("stitch");
    assert_eq!(merged.merges.len(), 1, "{merged:?}");
    assert_eq!(node_of(store, &older.profile).await.identifiers.len(), 3);
    let again = late_stitch(seed, 8).await;
    assert_eq!(again.profile, taker.profile, "{again:?}");
}

/// Rules without per-kind limits or caps: any grouping is the connected components.
pub fn unlimited_rules() -> IdentityRules {
    let mut rules = IdentityRules::default();
    for k in &mut rules.kinds {
        k.max_per_profile = None;
    }
    rules.max_identifiers_per_profile = u32::MAX;
    rules.max_merges_per_profile = u32::MAX;
    rules
}

/// Stitches `events` one after the other and returns the grouping.
pub async fn sequential<S: IdentityStore>(
    store: &S,
    events: &[Vec<Identifier>],
) -> BTreeSet<BTreeSet<Identifier>> {
    let rules = unlimited_rules();
    for (n, e) in events.iter().enumerate() {
        stitch_raw(store, &rules, e, i64::try_from(n).unwrap_or(0)).await;
    }
    let all = events.iter().flatten().cloned().collect();
    grouping(store, &all).await
}

/// The same events on two fresh stores give the same profile ids, merges included: each
/// profile is born when its first event occurred and named after the identifier that created
/// it, so holdout and split assignments, which hash the profile id, are the same on every run.
pub async fn the_same_events_give_the_same_profile_ids<S: IdentityStore>(first: &S, second: &S) {
    let events = overlapping_events(60, 11);
    let rules = unlimited_rules();
    let mut runs = Vec::new();
    for store in [first, second] {
        let mut ids = Vec::new();
        for (n, e) in events.iter().enumerate() {
            let at = 1_790_000_000_000 + i64::try_from(n).unwrap_or(0) * 1_000;
            let s = stitch_raw(store, &rules, e, at).await;
            let merges: Vec<(ProfileId, ProfileId)> = s
                .merges
                .iter()
                .map(|m| (m.survivor.clone(), m.loser.clone()))
                .collect();
            if s.created {
                assert_eq!(
                    s.profile.created_at(),
                    Some(at),
                    "born when its event occurred"
                );
            }
            ids.push((s.profile, merges));
        }
        runs.push(ids);
    }
    assert!(
        runs[0].iter().any(|(_, m)| !m.is_empty()),
        "the events merge profiles"
    );
    assert_eq!(runs[0], runs[1]);
}

/// The connected components of `events`: the grouping any correct stitcher must reach when
/// no limit is hit.
pub fn components(events: &[Vec<Identifier>]) -> BTreeSet<BTreeSet<Identifier>> {
    let mut groups: Vec<BTreeSet<Identifier>> = Vec::new();
    for e in events {
        let mut merged: BTreeSet<Identifier> = e.iter().cloned().collect();
        groups.retain(|g| {
            if g.iter().any(|i| merged.contains(i)) {
                merged.extend(g.iter().cloned());
                false
            } else {
                true
            }
        });
        groups.push(merged);
    }
    groups.into_iter().collect()
}

/// Overlapping events without conflicts (anonymous ids and devices only, few enough to stay
/// under every cap), for the concurrency check.
pub fn overlapping_events(n: usize, seed: u64) -> Vec<Vec<Identifier>> {
    let mut x = seed | 1;
    let mut next = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    (0..n)
        .map(|_| {
            vec![
                Identifier::new("anonymous_id", format!("a{}", next(40))),
                Identifier::new("device_id", format!("d{}", next(40))),
            ]
        })
        .collect()
}

/// 8 tasks stitching overlapping identifiers at once reach the same grouping as the
/// connected components.
pub async fn concurrent_stitchers_agree<S: IdentityStore + 'static>(
    store: Arc<S>,
    events: Vec<Vec<Identifier>>,
) {
    let expected = components(&events);
    let rules = Arc::new(unlimited_rules());
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let mine: Vec<Vec<Identifier>> = events.iter().skip(worker).step_by(8).cloned().collect();
        let (store, rules) = (store.clone(), rules.clone());
        tasks.spawn(async move {
            for (n, e) in mine.iter().enumerate() {
                stitch_raw(&*store, &rules, e, i64::try_from(n).unwrap_or(0)).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("stitcher task");
    }
    let all = events.iter().flatten().cloned().collect();
    assert_eq!(
        grouping(&*store, &all).await,
        expected,
        "concurrent stitching changed the grouping"
    );
}
