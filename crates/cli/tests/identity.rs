//! `switchboard identity show` against a real redis-server, after a merge.

mod common;

use common::{switchboard, text};
use switchboard_codec::Identifier;
use switchboard_config::RedisConfig;
use switchboard_identity::{IdentityRules, stitch};
use switchboard_redis::{Keys, RedisIdentityStore, connect};
use switchboard_test_support::{RedisServer, unique};

#[tokio::test]
async fn show_prints_the_profile_its_identifiers_and_merges() {
    let server = RedisServer::start();
    let prefix = unique("cli");
    let config = RedisConfig {
        url: server.url(),
        ..RedisConfig::default()
    };
    let store = RedisIdentityStore::new(connect(&config).await.unwrap(), Keys::new(prefix.clone()));
    let rules = IdentityRules::default();
    let limits = rules.limits();
    let mut stitched = Vec::new();
    for (at, ids) in [
        (1_000, vec![Identifier::new("anonymous_id", "cookie-7")]),
        (2_000, vec![Identifier::new("email", "ann@example.com")]),
        (
            3_000,
            vec![
                Identifier::new("email", "Ann@Example.com"),
                Identifier::new("anonymous_id", "cookie-7"),
            ],
        ),
    ] {
        let prepared = rules.prepare(&ids);
        stitched.push(
            stitch(&store, &limits, &prepared.accepted, at)
                .await
                .unwrap(),
        );
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "--redis-url",
            &server.url(),
            "identity",
            "show",
            "email: ANN@example.com ",
        ])
        .env("SWITCHBOARD_REDIS__KEY_PREFIX", &prefix)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("profile     {}", stitched[0].profile)),
        "{stdout}"
    );
    assert!(
        stdout.contains("  anonymous_id:cookie-7\n  email:ann@example.com\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("  {}", stitched[1].profile)),
        "the merged profile is listed: {stdout}"
    );

    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "--redis-url",
            &server.url(),
            "identity",
            "show",
            "email:nobody@example.com",
        ])
        .env("SWITCHBOARD_REDIS__KEY_PREFIX", &prefix)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("no profile holds email:nobody@example.com"));
    let bad = switchboard(&["identity", "show", "no-colon"]);
    assert!(
        text(&bad.stderr).contains("is not <kind>:<value>"),
        "{}",
        text(&bad.stderr)
    );
}
