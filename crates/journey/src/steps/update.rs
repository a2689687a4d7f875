//! `update`: set attributes from CEL expressions, increment counters, add and remove tags.

use switchboard_codec::{AttrValue, ChannelEvent};

use crate::condition::Condition;
use crate::context::{event_value, profile_value};
use crate::interpret::Run;

pub(super) fn run(
    run: &mut Run<'_>,
    event: &ChannelEvent,
    set: &[(String, Condition)],
    increment: &[(String, i64)],
    add_tags: &[String],
    remove_tags: &[String],
) {
    let (event, profile) = (event_value(event), profile_value(&run.customer.profile));
    let p = &mut run.customer.profile;
    for (name, expr) in set {
        if let Ok(v) = expr.evaluate(&event, &profile) {
            let value = match v {
                cel::Value::Bool(b) => AttrValue::Bool(b),
                cel::Value::Int(i) => AttrValue::Long(i),
                cel::Value::UInt(u) => AttrValue::Long(i64::try_from(u).unwrap_or(i64::MAX)),
                cel::Value::Float(f) => AttrValue::Double(f),
                cel::Value::Null => AttrValue::Null,
                other => AttrValue::String(crate::condition::render(&other)),
            };
            p.attributes.insert(name.clone(), value);
        }
    }
    for (name, by) in increment {
        let current = match p.attributes.get(name) {
            Some(AttrValue::Long(i)) => *i,
            _ => 0,
        };
        p.attributes
            .insert(name.clone(), AttrValue::Long(current.saturating_add(*by)));
    }
    for t in add_tags {
        p.tags.insert(t.clone());
    }
    for t in remove_tags {
        p.tags.remove(t);
    }
}
