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
    // Every expression sees the profile from before the update.
    let values: Vec<(&String, cel::Value)> = (set.iter())
        .filter_map(|(name, expr)| {
            let v = run
                .scope
                .evaluate(expr, event, &run.customer.profile)
                .ok()?;
            Some((name, v))
        })
        .collect();
    let p = &mut run.customer.profile;
    for (name, v) in values {
        {
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
