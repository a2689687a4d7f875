//! The `event` and `profile` values that CEL conditions see, read in place: a condition that
//! reads `event.cart_value` converts that one attribute, borrowing its text, instead of the
//! whole event and profile being copied into CEL maps first (20 to 50 allocations to read one
//! field). Only what needs a whole map (`size`, a comprehension over the keys, equality, a
//! copy) builds one, once per view.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cel::common::traits::{Container, Indexer, Iterable, Iterator, Sizer};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, MAP_TYPE, Type,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, ExecutionError};
use switchboard_codec::{AttrValue, ChannelEvent};

use crate::condition::Condition;
use crate::state::Profile;

type Value<'a> = Box<dyn Val + 'a>;

fn string(s: &str) -> Value<'_> {
    Box::new(CelString::from(s))
}

fn optional(s: Option<&String>) -> Value<'_> {
    s.map_or_else(|| Box::new(CelNull) as Value<'_>, |s| string(s))
}

fn attr(v: &AttrValue) -> Value<'_> {
    match v {
        AttrValue::Null => Box::new(CelNull),
        AttrValue::Bool(b) => Box::new(CelBool::from(*b)),
        AttrValue::Long(i) => Box::new(CelInt::from(*i)),
        AttrValue::Double(d) => Box::new(CelDouble::from(*d)),
        AttrValue::String(s) => string(s),
    }
}

fn list<'a>(items: impl IntoIterator<Item = &'a String>) -> Value<'a> {
    Box::new(CelList::from(
        items.into_iter().map(|s| string(s)).collect::<Vec<_>>(),
    ))
}

/// Where conditions are evaluated: the built-in functions, with `event` and `profile` read in
/// place for each evaluation.
pub(crate) struct Scope {
    root: Context<'static, 'static>,
}

impl Default for Scope {
    fn default() -> Self {
        Self {
            root: crate::condition::context(),
        }
    }
}

impl Scope {
    /// Evaluates `c` with `e` as `event` and `p` as `profile`.
    pub(crate) fn evaluate(
        &self,
        c: &Condition,
        e: &ChannelEvent,
        p: &Profile,
    ) -> Result<cel::Value, String> {
        let bound = Bound {
            event: View::new(Of::Event(e)),
            profile: View::new(Of::Profile(p)),
        };
        let root: &Context<'_, '_> = &self.root;
        let mut context = root.new_inner_scope();
        context.set_variable_resolver(&bound);
        c.evaluate(&context)
    }

    /// Evaluates `c` as a condition: true only for a boolean `true`.
    pub(crate) fn holds(
        &self,
        c: &Condition,
        e: &ChannelEvent,
        p: &Profile,
    ) -> Result<bool, String> {
        match self.evaluate(c, e, p)? {
            cel::Value::Bool(b) => Ok(b),
            other => Err(format!("`{}` gave {other:?}, not a boolean", c.source())),
        }
    }
}

/// `event` and `profile` for one evaluation.
struct Bound<'a> {
    event: View<'a>,
    profile: View<'a>,
}

impl VariableResolver for Bound<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        match variable {
            "event" => Some(CowVal::Borrowed(&self.event)),
            "profile" => Some(CowVal::Borrowed(&self.profile)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Of<'a> {
    Event(&'a ChannelEvent),
    Profile(&'a Profile),
}

/// `event` or `profile` as a CEL map, read in place.
#[derive(Debug)]
struct View<'a> {
    of: Of<'a>,
    /// The whole map, built the first time something needs it.
    whole: OnceLock<CelMap<'a>>,
}

impl<'a> View<'a> {
    fn new(of: Of<'a>) -> Self {
        Self {
            of,
            whole: OnceLock::new(),
        }
    }

    /// The value at `key`: a field first, then an attribute of that name.
    fn field(&self, key: &str) -> Option<Value<'a>> {
        match self.of {
            // `event`: its attributes by name, plus `type`, `channel`, `id` and
            // `occurred_at` (ms).
            Of::Event(e) => Some(match key {
                "type" => string(&e.event_type),
                "channel" => string(&e.channel),
                "id" => string(&e.event_id),
                "occurred_at" => Box::new(CelInt::from(e.occurred_at)),
                _ => attr(e.attributes.get(key)?),
            }),
            // `profile`: its attributes by name, plus `id`, `tags`, `consent`, `channels`
            // (reachable ones), `locale`, `timezone` and `last_channel`.
            Of::Profile(p) => Some(match key {
                "id" => string(&p.id),
                "tags" => list(&p.tags),
                "consent" => {
                    let consent = (p.consent.iter())
                        .map(|(k, v)| (k.as_str(), Box::new(CelBool::from(*v)) as Value<'a>));
                    Box::new(map(consent))
                }
                "channels" => list(p.addresses.keys()),
                "locale" => optional(p.locale.as_ref()),
                "timezone" => optional(p.timezone.as_ref()),
                "last_channel" => optional(p.last_channel.as_ref()),
                _ => attr(p.attributes.get(key)?),
            }),
        }
    }

    fn fields(&self) -> &'static [&'static str] {
        match self.of {
            Of::Event(_) => &["type", "channel", "id", "occurred_at"],
            Of::Profile(_) => &[
                "id",
                "tags",
                "consent",
                "channels",
                "locale",
                "timezone",
                "last_channel",
            ],
        }
    }

    fn whole(&self) -> &CelMap<'a> {
        self.whole.get_or_init(|| {
            let attributes = match self.of {
                Of::Event(e) => &e.attributes,
                Of::Profile(p) => &p.attributes,
            };
            let keys = (attributes.keys().map(String::as_str)).chain(self.fields().iter().copied());
            map(keys.filter_map(|k| Some((k, self.field(k)?))))
        })
    }
}

/// A map from string keys.
fn map<'a>(entries: impl IntoIterator<Item = (&'a str, Value<'a>)>) -> CelMap<'a> {
    let entries: HashMap<CelMapKey<'a>, Value<'a>> = entries
        .into_iter()
        .map(|(k, v)| (CelMapKey::String(CelString::from(k)), v))
        .collect();
    CelMap::from(entries)
}

impl Val for View<'_> {
    fn get_type(&self) -> &Type {
        &MAP_TYPE
    }

    fn cel_type() -> &'static Type {
        &MAP_TYPE
    }

    fn as_container(&self) -> Option<&dyn Container> {
        Some(self)
    }

    fn as_indexer<'b, 'w>(&'b self) -> Option<&'b (dyn Indexer + 'w)>
    where
        Self: 'w,
    {
        Some(self)
    }

    fn as_iterable<'b, 'w>(&'b self) -> Option<&'b (dyn Iterable + 'w)>
    where
        Self: 'w,
    {
        Some(self)
    }

    fn as_sizer(&self) -> Option<&dyn Sizer> {
        Some(self)
    }

    /// Map equality, key by key, with any map (the other may be read in place too). Not
    /// `as_builtin`: the interpreter asks every value it selects on whether it is an
    /// optional, which would build the whole map each time.
    fn equals(&self, other: &dyn Val) -> bool {
        let whole = self.whole();
        let (Some(indexer), Some(sizer)) = (other.as_indexer(), other.as_sizer()) else {
            return false;
        };
        sizer.size() == whole.size()
            && whole.inner().iter().all(|(k, v)| {
                (indexer.get(k.inner())).is_ok_and(|theirs| v.equals(theirs.as_ref()))
            })
    }

    fn clone_as_boxed<'w>(&self) -> Box<dyn Val + 'w>
    where
        Self: 'w,
    {
        Box::new(self.whole().clone())
    }
}

impl Indexer for View<'_> {
    fn get<'b, 'w>(&'b self, key: &dyn Val) -> Result<CowVal<'b, 'w>, ExecutionError>
    where
        Self: 'w,
    {
        match <&str>::try_from(key) {
            Ok(name) => self
                .field(name)
                .map(CowVal::Owned)
                .ok_or_else(|| ExecutionError::NoSuchKey(Arc::new(name.to_owned()))),
            // Not a string: the map answers as any map does.
            Err(_) => self.whole().get(key),
        }
    }

    fn steal<'w>(self: Box<Self>, key: &dyn Val) -> Result<Box<dyn Val + 'w>, ExecutionError>
    where
        Self: 'w,
    {
        self.get(key).map(CowVal::into_owned)
    }
}

impl Container for View<'_> {
    fn contains(&self, value: &dyn Val) -> Result<bool, ExecutionError> {
        self.whole().contains(value)
    }
}

impl Iterable for View<'_> {
    fn iter<'b, 'w>(&'b self) -> Box<dyn Iterator<'b, 'w> + 'b>
    where
        Self: 'w,
    {
        self.whole().iter()
    }
}

impl Sizer for View<'_> {
    fn size(&self) -> CelInt {
        self.whole().size()
    }
}
