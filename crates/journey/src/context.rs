//! The `event` and `profile` values that CEL conditions see, built straight into CEL's own
//! representation (binding a `cel::Value` map copies and converts it twice over).

use std::collections::HashMap;

use cel::Context;
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString,
};
use cel::common::value::Val;
use switchboard_codec::{AttrValue, ChannelEvent};

use crate::state::Profile;

type Value = Box<dyn Val>;

fn string(s: &str) -> Value {
    Box::new(CelString::from(s.to_owned()))
}

fn optional(s: Option<&String>) -> Value {
    s.map_or_else(|| Box::new(CelNull) as Value, |s| string(s))
}

fn attr(v: &AttrValue) -> Value {
    match v {
        AttrValue::Null => Box::new(CelNull),
        AttrValue::Bool(b) => Box::new(CelBool::from(*b)),
        AttrValue::Long(i) => Box::new(CelInt::from(*i)),
        AttrValue::Double(d) => Box::new(CelDouble::from(*d)),
        AttrValue::String(s) => string(s),
    }
}

/// A map from string keys.
fn map<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    let entries: HashMap<CelMapKey<'static>, Value> = entries
        .into_iter()
        .map(|(k, v)| (CelMapKey::String(CelString::from(k.to_owned())), v))
        .collect();
    Box::new(CelMap::from(entries))
}

fn list<'a>(items: impl IntoIterator<Item = &'a String>) -> Value {
    Box::new(CelList::from(
        items.into_iter().map(|s| string(s)).collect::<Vec<_>>(),
    ))
}

/// The context conditions and expressions are evaluated in, with `event` and `profile`
/// bound when first needed and kept for the rest of one application: CEL converts a bound
/// value into its own representation, which costs more than most conditions. `event` is
/// bound for one event at a time (by id: an instance's trigger is a copy of the event that
/// entered it), `profile` until [`Scope::profile_changed`].
pub(crate) struct Scope {
    context: Context<'static, 'static>,
    event: Option<String>,
    profile: bool,
}

impl Default for Scope {
    fn default() -> Self {
        Self {
            context: crate::condition::context(),
            event: None,
            profile: false,
        }
    }
}

impl Scope {
    /// The context with `e` as `event` and `p` as `profile`.
    pub(crate) fn bind(&mut self, e: &ChannelEvent, p: &Profile) -> &Context<'static, 'static> {
        if self.event.as_deref() != Some(e.event_id.as_str()) {
            self.context.add_variable_as_val("event", event_value(e));
            self.event = Some(e.event_id.clone());
        }
        if !self.profile {
            self.context
                .add_variable_as_val("profile", profile_value(p));
            self.profile = true;
        }
        &self.context
    }

    /// The profile's attributes or tags changed: `profile` is bound again when next needed.
    pub(crate) fn profile_changed(&mut self) {
        self.profile = false;
    }
}

/// `event`: its attributes by name, plus `type`, `channel`, `id` and `occurred_at` (ms).
fn event_value(e: &ChannelEvent) -> Value {
    let fields = [
        ("type", string(&e.event_type)),
        ("channel", string(&e.channel)),
        ("id", string(&e.event_id)),
        (
            "occurred_at",
            Box::new(CelInt::from(e.occurred_at)) as Value,
        ),
    ];
    let attributes = e.attributes.iter().map(|(k, v)| (k.as_str(), attr(v)));
    map(attributes.chain(fields))
}

/// `profile`: its attributes by name, plus `id`, `tags`, `consent`, `channels` (reachable
/// ones), `locale`, `timezone` and `last_channel`.
fn profile_value(p: &Profile) -> Value {
    let consent = p
        .consent
        .iter()
        .map(|(k, v)| (k.as_str(), Box::new(CelBool::from(*v)) as Value));
    let fields = [
        ("id", string(&p.id)),
        ("tags", list(&p.tags)),
        ("consent", map(consent)),
        ("channels", list(p.addresses.keys())),
        ("locale", optional(p.locale.as_ref())),
        ("timezone", optional(p.timezone.as_ref())),
        ("last_channel", optional(p.last_channel.as_ref())),
    ];
    let attributes = p.attributes.iter().map(|(k, v)| (k.as_str(), attr(v)));
    map(attributes.chain(fields))
}
