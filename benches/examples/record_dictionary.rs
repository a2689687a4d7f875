//! Trains a zstd dictionary for the engine's stored records (`crates/redis/src/state/record-v<N>.dict`)
//! from records as the engine leaves them: the traffic of `switchboard run --generate`
//! applied through the example journeys and `deploy/policies.yaml`, one sample per event
//! applied, with its offset and recent event ids. A trained dictionary carries entropy tables
//! as well as text, so zstd codes a small record without building its own tables.
//!
//! `cargo run --release -p switchboard-bench --example record_dictionary -- <out> [customers] [bytes]`
//!
//! A released dictionary never changes (records written with it must stay readable): a new
//! one gets the next number in `stored.rs`.

use std::collections::HashMap;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_engine::{RecentEvents, Record};
use switchboard_journey::{Customer, Input, JourneySet, Policies, Profile, apply, load_dir};
use switchboard_redis::stored;
use switchboard_services::generate::event;

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or("usage: record_dictionary <out> [customers] [bytes]")?;
    let customers: u32 = args.next().map_or(Ok(5_000), |a| a.parse())?;
    let bytes: usize = args.next().map_or(Ok(4_096), |a| a.parse())?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let policies = Policies::from_path(&root.join("deploy/policies.yaml"))?;
    let journeys = JourneySet::new(
        load_dir(&root.join("journeys"), &policies.channels)
            .map_err(|errors| format!("example journeys: {errors:?}"))?,
    );
    let mut rng = StdRng::seed_from_u64(2);
    // Fixed times and seeded ids: the same dictionary from every run.
    let now: i64 = 1_764_000_000_000;
    let mut records: HashMap<String, Record> = HashMap::new();
    let mut samples: Vec<Vec<u8>> = Vec::new();
    for seq in 0..u64::from(customers) * 5 {
        let mut e = event(&mut rng, customers, seq);
        e.occurred_at = now - 1_000 * i64::try_from(seq).unwrap_or(0);
        let Some(key) = e.identifiers.first().map(|i| i.value.clone()) else {
            continue;
        };
        let record = records.entry(key).or_insert_with(|| Record {
            customer: Customer {
                profile: Profile {
                    id: ulid::Ulid::from_parts(
                        u64::try_from(now).unwrap_or(0) - rng.random_range(0..86_400_000 * 365),
                        rng.random(),
                    )
                    .to_string(),
                    ..Profile::default()
                },
                ..Customer::default()
            },
            offset: -1,
            merged_into: None,
            recent: RecentEvents::default(),
            absorbed: Vec::new(),
        });
        record.recent.first_time(&e.event_id, now, 86_400_000);
        record.offset = i64::try_from(seq).unwrap_or(i64::MAX) * 6 + rng.random_range(0..6);
        let customer = std::mem::take(&mut record.customer);
        record.customer = apply(&journeys, &policies, customer, &Input::Event(e), now).0;
        samples.push(stored::packed(record)?);
    }
    let dict = zstd::dict::from_samples(&samples, bytes)?;
    std::fs::write(&out, &dict)?;
    println!(
        "{} samples ({} bytes on average) -> {} bytes of dictionary in {out}",
        samples.len(),
        samples.iter().map(Vec::len).sum::<usize>() / samples.len().max(1),
        dict.len()
    );
    Ok(())
}
