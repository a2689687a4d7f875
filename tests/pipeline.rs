//! End to end on tansu and redis-server: channel events in, send commands out.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::Running;
use switchboard_codec::{AttrValue, ChannelEvent, Identifier};

fn journeys() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/journeys"))
}

fn event(
    id: &str,
    kind: &str,
    channel: &str,
    ids: &[(&str, &str)],
    attrs: &[(&str, AttrValue)],
) -> ChannelEvent {
    ChannelEvent {
        event_id: id.into(),
        event_type: kind.into(),
        channel: channel.into(),
        occurred_at: switchboard_pipeline::now_ms(),
        identifiers: ids.iter().map(|(k, v)| Identifier::new(*k, *v)).collect(),
        attributes: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        locale: Some("en-GB".into()),
        timezone: Some("UTC".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_app_install_gets_the_welcome_push() {
    let r = Running::start(&journeys()).await;
    r.produce(&[event(
        "w1",
        "app.installed",
        "app",
        &[
            ("customer_id", "C1"),
            ("push_token", "tok-1"),
            ("email", "c1@example.com"),
        ],
        &[],
    )])
    .await;
    let commands = r
        .commands_until(Duration::from_secs(30), |c| !c.is_empty())
        .await;
    assert_eq!(commands.len(), 1, "{commands:?}");
    let c = &commands[0];
    assert_eq!(
        (c.channel.as_str(), c.template.as_str(), c.journey.as_str()),
        ("push", "welcome-1", "welcome")
    );
    assert_eq!(c.address, "tok-1");
}
