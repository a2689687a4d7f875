//! `update`: set attributes from CEL expressions, increment counters, add and remove tags.
//! Every expression of one update sees the profile as it was before the update; later steps
//! see it updated.

use switchboard_codec::{AttrValue, ChannelEvent};

use crate::condition::Condition;
use crate::run::Run;

pub(super) fn run(
    run: &mut Run<'_>,
    event: &ChannelEvent,
    set: &[(String, Condition)],
    increment: &[(String, i64)],
    add_tags: &[String],
    remove_tags: &[String],
) {
    let p = &mut run.customer.profile;
    for (name, expr) in set {
        if let Ok(v) = expr.evaluate(run.scope.bind(event, p)) {
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
    run.scope.profile_changed();
}
