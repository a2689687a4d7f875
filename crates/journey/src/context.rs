//! The `event` and `profile` values that CEL conditions see.

use std::collections::HashMap;

use cel::Value;
use switchboard_codec::{AttrValue, ChannelEvent};

use crate::condition::map;
use crate::state::Profile;

fn attr(v: &AttrValue) -> Value {
    match v {
        AttrValue::Null => Value::Null,
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::Long(i) => Value::Int(*i),
        AttrValue::Double(d) => Value::Float(*d),
        AttrValue::String(s) => Value::String(s.clone().into()),
    }
}

/// `event`: its attributes by name, plus `type`, `channel`, `id` and `occurred_at` (ms).
pub fn event_value(e: &ChannelEvent) -> Value {
    let mut m: HashMap<String, Value> = e
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), attr(v)))
        .collect();
    m.insert("type".into(), Value::String(e.event_type.clone().into()));
    m.insert("channel".into(), Value::String(e.channel.clone().into()));
    m.insert("id".into(), Value::String(e.event_id.clone().into()));
    m.insert("occurred_at".into(), Value::Int(e.occurred_at));
    map(m)
}

/// `profile`: its attributes by name, plus `id`, `tags`, `consent`, `channels` (reachable
/// ones), `locale`, `timezone` and `last_channel`.
pub fn profile_value(p: &Profile) -> Value {
    let mut m: HashMap<String, Value> = p
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), attr(v)))
        .collect();
    m.insert("id".into(), Value::String(p.id.clone().into()));
    m.insert(
        "tags".into(),
        Value::List(std::sync::Arc::new(
            p.tags
                .iter()
                .map(|t| Value::String(t.clone().into()))
                .collect(),
        )),
    );
    m.insert(
        "consent".into(),
        map(p
            .consent
            .iter()
            .map(|(k, v)| (k.clone(), Value::Bool(*v)))
            .collect()),
    );
    m.insert(
        "channels".into(),
        Value::List(std::sync::Arc::new(
            p.addresses
                .keys()
                .map(|c| Value::String(c.clone().into()))
                .collect(),
        )),
    );
    let opt = |s: &Option<String>| s.clone().map_or(Value::Null, |s| Value::String(s.into()));
    m.insert("locale".into(), opt(&p.locale));
    m.insert("timezone".into(), opt(&p.timezone));
    m.insert("last_channel".into(), opt(&p.last_channel));
    map(m)
}
