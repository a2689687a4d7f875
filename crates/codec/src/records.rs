//! The Rust side of the Avro contracts in `schemas/`, one type per record.
//!
//! Field documentation lives in the `.avsc` files; these types mirror them and are also
//! (de)serialisable as JSON, for topics configured for JSON and for `switchboard simulate`.

use std::collections::BTreeMap;

use apache_avro::types::Value;
use serde::{Deserialize, Serialize};

use crate::CodecError;
use crate::binary::{Datum, Malformed, Reader};
use crate::fields::{Fields, as_string, optional, record, shape, strings, unwrap_union};

/// A record with a schema in `schemas/`.
pub trait AvroRecord: Sized {
    /// Full Avro name, e.g. `io.switchboard.ChannelEvent`.
    const NAME: &'static str;
    /// The record as apache-avro's `Value`, in the newest schema of its kind.
    fn to_value(&self) -> Value;
    fn from_value(value: Value) -> Result<Self, CodecError>;
    /// Writes the record's datum in the newest schema of its kind, straight from its fields
    /// (the encode path; [`AvroRecord::to_value`] gives the same datum through apache-avro).
    fn write(&self, out: &mut Datum<'_>);
    /// Reads a datum written in the newest schema of its kind, straight into the fields (the
    /// decode path; [`AvroRecord::from_value`] reads it, or an older one, through apache-avro).
    fn read(input: &mut Reader<'_>) -> Result<Self, Malformed>;
}

/// One identifier a channel knows for a customer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    pub kind: String,
    pub value: String,
}

impl Identifier {
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            value: value.into(),
        }
    }
}

/// A typed event attribute; in JSON (and the engine's stored records) the bare value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AttrValue {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    String(String),
}

/// Reads the bare value by its kind. (`#[serde(untagged)]` would buffer each value and try
/// the variants in turn, building an error for every miss.)
impl<'de> Deserialize<'de> for AttrValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = AttrValue;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("null, a boolean, a number or a string")
            }

            fn visit_unit<E>(self) -> Result<AttrValue, E> {
                Ok(AttrValue::Null)
            }

            fn visit_none<E>(self) -> Result<AttrValue, E> {
                Ok(AttrValue::Null)
            }

            fn visit_bool<E>(self, b: bool) -> Result<AttrValue, E> {
                Ok(AttrValue::Bool(b))
            }

            fn visit_i64<E>(self, i: i64) -> Result<AttrValue, E> {
                Ok(AttrValue::Long(i))
            }

            /// A whole number beyond `i64` is kept as a double, as JSON readers do.
            #[allow(clippy::cast_precision_loss)]
            fn visit_u64<E>(self, u: u64) -> Result<AttrValue, E> {
                Ok(i64::try_from(u).map_or(AttrValue::Double(u as f64), AttrValue::Long))
            }

            fn visit_f64<E>(self, f: f64) -> Result<AttrValue, E> {
                Ok(AttrValue::Double(f))
            }

            fn visit_str<E>(self, s: &str) -> Result<AttrValue, E> {
                Ok(AttrValue::String(s.to_owned()))
            }

            fn visit_string<E>(self, s: String) -> Result<AttrValue, E> {
                Ok(AttrValue::String(s))
            }
        }

        d.deserialize_any(Visitor)
    }
}

impl AttrValue {
    fn to_value(&self) -> Value {
        let (index, v) = match self {
            Self::Null => (0, Value::Null),
            Self::Bool(b) => (1, Value::Boolean(*b)),
            Self::Long(i) => (2, Value::Long(*i)),
            Self::Double(d) => (3, Value::Double(*d)),
            Self::String(s) => (4, Value::String(s.clone())),
        };
        Value::Union(index, Box::new(v))
    }

    /// `["null", "boolean", "long", "double", "string"]`.
    fn write(&self, out: &mut Datum<'_>) {
        match self {
            Self::Null => out.branch(0),
            Self::Bool(b) => {
                out.branch(1);
                out.boolean(*b);
            }
            Self::Long(i) => {
                out.branch(2);
                out.long(*i);
            }
            Self::Double(d) => {
                out.branch(3);
                out.double(*d);
            }
            Self::String(s) => {
                out.branch(4);
                out.string(s);
            }
        }
    }

    fn read(input: &mut Reader<'_>) -> Result<Self, Malformed> {
        Ok(match input.branch(5)? {
            0 => Self::Null,
            1 => Self::Bool(input.boolean()?),
            2 => Self::Long(input.long()?),
            3 => Self::Double(input.double()?),
            _ => Self::String(input.string()?),
        })
    }

    fn from_value(record: &'static str, field: &str, v: Value) -> Result<Self, CodecError> {
        match unwrap_union(v) {
            Value::Null => Ok(Self::Null),
            Value::Boolean(b) => Ok(Self::Bool(b)),
            Value::Int(i) => Ok(Self::Long(i64::from(i))),
            Value::Long(i) => Ok(Self::Long(i)),
            Value::Float(f) => Ok(Self::Double(f64::from(f))),
            Value::Double(d) => Ok(Self::Double(d)),
            Value::String(s) => Ok(Self::String(s)),
            other => Err(shape(
                record,
                field,
                format!("unsupported attribute value {other:?}"),
            )),
        }
    }
}

/// What a channel system reports, on `events.<channel>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelEvent {
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub channel: String,
    /// Milliseconds since the Unix epoch.
    pub occurred_at: i64,
    /// In JSON, empty and absent fields are left out (and read back as empty): an event
    /// without identifiers is dead-lettered as `no_identifiers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<Identifier>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttrValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

fn identifiers_to_value(ids: &[Identifier]) -> Value {
    Value::Array(
        ids.iter()
            .map(|i| {
                record(vec![
                    ("kind", Value::String(i.kind.clone())),
                    ("value", Value::String(i.value.clone())),
                ])
            })
            .collect(),
    )
}

fn write_identifiers(out: &mut Datum<'_>, ids: &[Identifier]) {
    out.array(ids, |out, i| {
        out.string(&i.kind);
        out.string(&i.value);
    });
}

fn read_identifiers(input: &mut Reader<'_>) -> Result<Vec<Identifier>, Malformed> {
    input.array(|input| {
        Ok(Identifier {
            kind: input.string()?,
            value: input.string()?,
        })
    })
}

fn write_strings(out: &mut Datum<'_>, items: &[String]) {
    out.array(items, |out, s| out.string(s));
}

fn identifiers_from_value(items: Vec<Value>) -> Result<Vec<Identifier>, CodecError> {
    items
        .into_iter()
        .map(|v| {
            let mut f = Fields::new("Identifier", v)?;
            Ok(Identifier {
                kind: f.string("kind")?,
                value: f.string("value")?,
            })
        })
        .collect()
}

impl AvroRecord for ChannelEvent {
    const NAME: &'static str = "io.switchboard.ChannelEvent";

    fn to_value(&self) -> Value {
        record(vec![
            ("event_id", Value::String(self.event_id.clone())),
            ("type", Value::String(self.event_type.clone())),
            ("channel", Value::String(self.channel.clone())),
            ("occurred_at", Value::TimestampMillis(self.occurred_at)),
            ("identifiers", identifiers_to_value(&self.identifiers)),
            (
                "attributes",
                Value::Map(
                    self.attributes
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_value()))
                        .collect(),
                ),
            ),
            ("locale", optional(self.locale.clone().map(Value::String))),
            (
                "timezone",
                optional(self.timezone.clone().map(Value::String)),
            ),
        ])
    }

    fn write(&self, out: &mut Datum<'_>) {
        out.string(&self.event_id);
        out.string(&self.event_type);
        out.string(&self.channel);
        out.long(self.occurred_at);
        write_identifiers(out, &self.identifiers);
        out.map(self.attributes.iter(), |out, v| v.write(out));
        out.optional_string(self.locale.as_deref());
        out.optional_string(self.timezone.as_deref());
    }

    fn read(input: &mut Reader<'_>) -> Result<Self, Malformed> {
        let event_id = input.string()?;
        let event_type = input.string()?;
        let channel = input.string()?;
        let occurred_at = input.long()?;
        let identifiers = read_identifiers(input)?;
        let attributes = input.map(AttrValue::read)?;
        Ok(Self {
            event_id,
            event_type,
            channel,
            occurred_at,
            identifiers,
            attributes,
            locale: input.optional_string()?,
            timezone: input.optional_string()?,
        })
    }

    fn from_value(value: Value) -> Result<Self, CodecError> {
        const R: &str = "ChannelEvent";
        let mut f = Fields::new(R, value)?;
        let attributes = f
            .map("attributes")?
            .into_iter()
            .map(|(k, v)| AttrValue::from_value(R, &k, v).map(|v| (k, v)))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            event_id: f.string("event_id")?,
            event_type: f.string("type")?,
            channel: f.string("channel")?,
            occurred_at: f.long("occurred_at")?,
            identifiers: identifiers_from_value(f.array("identifiers")?)?,
            attributes,
            locale: f.optional_string("locale")?,
            timezone: f.optional_string("timezone")?,
        })
    }
}

/// Where an event was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Two profiles linked by an event; the loser's state folds into the survivor (all of it:
/// the engine's fold decides how). The schema's `fold` field, a list nothing ever read, is
/// written empty and skipped on read; it can leave the schema once a version that gives it a
/// default has reached every reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileMerged {
    pub survivor: String,
    pub loser: String,
    pub cause_event_id: String,
}

/// What a [`CustomerEvent`] carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CustomerPayload {
    Event(ChannelEvent),
    Merged(ProfileMerged),
}

/// A stitched event on `customer.events`, keyed by profile id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerEvent {
    pub profile_id: String,
    pub stitched_at: i64,
    pub source: SourcePosition,
    pub payload: CustomerPayload,
    pub identifiers: Vec<Identifier>,
}

impl AvroRecord for CustomerEvent {
    const NAME: &'static str = "io.switchboard.CustomerEvent";

    fn to_value(&self) -> Value {
        let payload = match &self.payload {
            CustomerPayload::Event(e) => Value::Union(0, Box::new(e.to_value())),
            CustomerPayload::Merged(m) => Value::Union(
                1,
                Box::new(record(vec![
                    ("survivor", Value::String(m.survivor.clone())),
                    ("loser", Value::String(m.loser.clone())),
                    ("fold", Value::Array(Vec::new())),
                    ("cause_event_id", Value::String(m.cause_event_id.clone())),
                ])),
            ),
        };
        record(vec![
            ("profile_id", Value::String(self.profile_id.clone())),
            ("stitched_at", Value::TimestampMillis(self.stitched_at)),
            (
                "source",
                record(vec![
                    ("topic", Value::String(self.source.topic.clone())),
                    ("partition", Value::Int(self.source.partition)),
                    ("offset", Value::Long(self.source.offset)),
                ]),
            ),
            ("payload", payload),
            ("identifiers", identifiers_to_value(&self.identifiers)),
        ])
    }

    fn write(&self, out: &mut Datum<'_>) {
        out.string(&self.profile_id);
        out.long(self.stitched_at);
        out.string(&self.source.topic);
        out.int(self.source.partition);
        out.long(self.source.offset);
        match &self.payload {
            CustomerPayload::Event(e) => {
                out.branch(0);
                e.write(out);
            }
            CustomerPayload::Merged(m) => {
                out.branch(1);
                out.string(&m.survivor);
                out.string(&m.loser);
                write_strings(out, &[]);
                out.string(&m.cause_event_id);
            }
        }
        write_identifiers(out, &self.identifiers);
    }

    fn read(input: &mut Reader<'_>) -> Result<Self, Malformed> {
        let profile_id = input.string()?;
        let stitched_at = input.long()?;
        let source = SourcePosition {
            topic: input.string()?,
            partition: input.int()?,
            offset: input.long()?,
        };
        let payload = match input.branch(2)? {
            0 => CustomerPayload::Event(ChannelEvent::read(input)?),
            _ => CustomerPayload::Merged(ProfileMerged {
                survivor: input.string()?,
                loser: input.string()?,
                cause_event_id: {
                    input.strings()?; // fold
                    input.string()?
                },
            }),
        };
        Ok(Self {
            profile_id,
            stitched_at,
            source,
            payload,
            identifiers: read_identifiers(input)?,
        })
    }

    fn from_value(value: Value) -> Result<Self, CodecError> {
        const R: &str = "CustomerEvent";
        let mut f = Fields::new(R, value)?;
        let mut source = Fields::new("SourcePosition", f.value("source")?)?;
        let payload = match f.value("payload")? {
            Value::Union(0, v) => CustomerPayload::Event(ChannelEvent::from_value(*v)?),
            Value::Union(1, v) => {
                let mut m = Fields::new("ProfileMerged", *v)?;
                CustomerPayload::Merged(ProfileMerged {
                    survivor: m.string("survivor")?,
                    loser: m.string("loser")?,
                    cause_event_id: m.string("cause_event_id")?,
                })
            }
            other => return Err(shape(R, "payload", format!("unexpected payload {other:?}"))),
        };
        Ok(Self {
            profile_id: f.string("profile_id")?,
            stitched_at: f.long("stitched_at")?,
            source: SourcePosition {
                topic: source.string("topic")?,
                partition: source.int("partition")?,
                offset: source.long("offset")?,
            },
            payload,
            identifiers: identifiers_from_value(f.array("identifiers")?)?,
        })
    }
}

/// Why a command was sent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SendReason {
    pub trigger: String,
    pub path: Vec<String>,
    pub fallback_from: Vec<String>,
}

/// An instruction to a channel system, on `commands.<channel>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendCommand {
    pub command_id: String,
    pub profile_id: String,
    pub channel: String,
    pub address: String,
    pub template: String,
    pub locale: String,
    pub vars: BTreeMap<String, String>,
    pub journey: String,
    pub version: i32,
    pub step: String,
    pub variant: Option<String>,
    pub not_after: Option<i64>,
    pub reason: SendReason,
    pub created_at: i64,
}

impl AvroRecord for SendCommand {
    const NAME: &'static str = "io.switchboard.SendCommand";

    fn to_value(&self) -> Value {
        record(vec![
            ("command_id", Value::String(self.command_id.clone())),
            ("profile_id", Value::String(self.profile_id.clone())),
            ("channel", Value::String(self.channel.clone())),
            ("address", Value::String(self.address.clone())),
            ("template", Value::String(self.template.clone())),
            ("locale", Value::String(self.locale.clone())),
            (
                "vars",
                Value::Map(
                    self.vars
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect(),
                ),
            ),
            ("journey", Value::String(self.journey.clone())),
            ("version", Value::Int(self.version)),
            ("step", Value::String(self.step.clone())),
            ("variant", optional(self.variant.clone().map(Value::String))),
            (
                "not_after",
                optional(self.not_after.map(Value::TimestampMillis)),
            ),
            (
                "reason",
                record(vec![
                    ("trigger", Value::String(self.reason.trigger.clone())),
                    ("path", strings(&self.reason.path)),
                    ("fallback_from", strings(&self.reason.fallback_from)),
                ]),
            ),
            ("created_at", Value::TimestampMillis(self.created_at)),
        ])
    }

    fn write(&self, out: &mut Datum<'_>) {
        out.string(&self.command_id);
        out.string(&self.profile_id);
        out.string(&self.channel);
        out.string(&self.address);
        out.string(&self.template);
        out.string(&self.locale);
        out.map(self.vars.iter(), |out, v| out.string(v));
        out.string(&self.journey);
        out.int(self.version);
        out.string(&self.step);
        out.optional_string(self.variant.as_deref());
        out.optional_long(self.not_after);
        out.string(&self.reason.trigger);
        write_strings(out, &self.reason.path);
        write_strings(out, &self.reason.fallback_from);
        out.long(self.created_at);
    }

    fn read(input: &mut Reader<'_>) -> Result<Self, Malformed> {
        let command_id = input.string()?;
        let profile_id = input.string()?;
        let channel = input.string()?;
        let address = input.string()?;
        let template = input.string()?;
        let locale = input.string()?;
        let vars = input.map(Reader::string)?;
        Ok(Self {
            command_id,
            profile_id,
            channel,
            address,
            template,
            locale,
            vars,
            journey: input.string()?,
            version: input.int()?,
            step: input.string()?,
            variant: input.optional_string()?,
            not_after: input.optional_long()?,
            reason: SendReason {
                trigger: input.string()?,
                path: input.strings()?,
                fallback_from: input.strings()?,
            },
            created_at: input.long()?,
        })
    }

    fn from_value(value: Value) -> Result<Self, CodecError> {
        const R: &str = "SendCommand";
        let mut f = Fields::new(R, value)?;
        let vars = f
            .map("vars")?
            .into_iter()
            .map(|(k, v)| as_string(R, "vars", v).map(|v| (k, v)))
            .collect::<Result<_, _>>()?;
        let mut reason = Fields::new("SendReason", f.value("reason")?)?;
        Ok(Self {
            command_id: f.string("command_id")?,
            profile_id: f.string("profile_id")?,
            channel: f.string("channel")?,
            address: f.string("address")?,
            template: f.string("template")?,
            locale: f.string("locale")?,
            vars,
            journey: f.string("journey")?,
            version: f.int("version")?,
            step: f.string("step")?,
            variant: f.optional_string("variant")?,
            not_after: f.optional_long("not_after")?,
            reason: SendReason {
                trigger: reason.string("trigger")?,
                path: reason.strings("path")?,
                fallback_from: reason.strings("fallback_from")?,
            },
            created_at: f.long("created_at")?,
        })
    }
}

/// What happened in a customer's journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    Entered,
    Step,
    Exited,
    Goal,
    Holdout,
    Suppressed,
    Forgotten,
    /// A send waits for the end of the customer's quiet hours (a timer retries it).
    Deferred,
    /// An optimized split picked its winning variant: new entries go there (v3).
    Winner,
    /// A symbol written by a newer producer that this reader does not know.
    Unknown,
}

impl TransitionKind {
    /// In the order of the schema's enum (v3).
    const SYMBOLS: [(Self, &'static str); 10] = [
        (Self::Entered, "entered"),
        (Self::Step, "step"),
        (Self::Exited, "exited"),
        (Self::Goal, "goal"),
        (Self::Holdout, "holdout"),
        (Self::Suppressed, "suppressed"),
        (Self::Forgotten, "forgotten"),
        (Self::Deferred, "deferred"),
        (Self::Winner, "winner"),
        (Self::Unknown, "unknown"),
    ];

    /// Every kind, in the schema's order.
    pub fn all() -> impl Iterator<Item = Self> {
        Self::SYMBOLS.iter().map(|(k, _)| *k)
    }

    /// The symbol's position in the schema's enum (`unknown` for one it does not list).
    fn index(self) -> u32 {
        let last = Self::SYMBOLS.len() - 1;
        let i = Self::SYMBOLS
            .iter()
            .position(|(k, _)| *k == self)
            .unwrap_or(last);
        u32::try_from(i).unwrap_or(0)
    }

    pub fn as_str(self) -> &'static str {
        Self::SYMBOLS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("unknown", |(_, s)| s)
    }
}

/// One record of `journeys.transitions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JourneyTransition {
    pub transition_id: String,
    pub profile_id: String,
    pub journey: String,
    pub version: i32,
    pub kind: TransitionKind,
    pub step: Option<String>,
    pub reason: Option<String>,
    pub trigger: String,
    pub at: i64,
    /// The split variant of the entry, once chosen.
    #[serde(default)]
    pub variant: Option<String>,
    /// The entry is in the control group.
    #[serde(default)]
    pub holdout: bool,
    /// The entry this transition belongs to; `None` for `forgotten`.
    #[serde(default)]
    pub entry_id: Option<String>,
    /// The kind of the step, where one applies (`send`, `wait`, ...).
    #[serde(default)]
    pub step_kind: Option<String>,
}

impl AvroRecord for JourneyTransition {
    const NAME: &'static str = "io.switchboard.JourneyTransition";

    fn to_value(&self) -> Value {
        record(vec![
            ("transition_id", Value::String(self.transition_id.clone())),
            ("profile_id", Value::String(self.profile_id.clone())),
            ("journey", Value::String(self.journey.clone())),
            ("version", Value::Int(self.version)),
            (
                "kind",
                Value::Enum(self.kind.index(), self.kind.as_str().to_owned()),
            ),
            ("step", optional(self.step.clone().map(Value::String))),
            ("reason", optional(self.reason.clone().map(Value::String))),
            ("trigger", Value::String(self.trigger.clone())),
            ("at", Value::TimestampMillis(self.at)),
            ("variant", optional(self.variant.clone().map(Value::String))),
            ("holdout", Value::Boolean(self.holdout)),
            (
                "entry_id",
                optional(self.entry_id.clone().map(Value::String)),
            ),
            (
                "step_kind",
                optional(self.step_kind.clone().map(Value::String)),
            ),
        ])
    }

    fn write(&self, out: &mut Datum<'_>) {
        out.string(&self.transition_id);
        out.string(&self.profile_id);
        out.string(&self.journey);
        out.int(self.version);
        out.branch(self.kind.index());
        out.optional_string(self.step.as_deref());
        out.optional_string(self.reason.as_deref());
        out.string(&self.trigger);
        out.long(self.at);
        out.optional_string(self.variant.as_deref());
        out.boolean(self.holdout);
        out.optional_string(self.entry_id.as_deref());
        out.optional_string(self.step_kind.as_deref());
    }

    fn read(input: &mut Reader<'_>) -> Result<Self, Malformed> {
        let transition_id = input.string()?;
        let profile_id = input.string()?;
        let journey = input.string()?;
        let version = input.int()?;
        let symbols = TransitionKind::SYMBOLS.len() as u32;
        let kind = TransitionKind::SYMBOLS
            .get(input.branch(symbols)? as usize)
            .map_or(TransitionKind::Unknown, |(k, _)| *k);
        Ok(Self {
            transition_id,
            profile_id,
            journey,
            version,
            kind,
            step: input.optional_string()?,
            reason: input.optional_string()?,
            trigger: input.string()?,
            at: input.long()?,
            variant: input.optional_string()?,
            holdout: input.boolean()?,
            entry_id: input.optional_string()?,
            step_kind: input.optional_string()?,
        })
    }

    fn from_value(value: Value) -> Result<Self, CodecError> {
        const R: &str = "JourneyTransition";
        let mut f = Fields::new(R, value)?;
        let kind = match f.value("kind")? {
            Value::Enum(_, symbol) => TransitionKind::SYMBOLS
                .iter()
                .find(|(_, s)| *s == symbol)
                .map_or(TransitionKind::Unknown, |(k, _)| *k),
            other => return Err(shape(R, "kind", format!("expected enum, found {other:?}"))),
        };
        Ok(Self {
            transition_id: f.string("transition_id")?,
            profile_id: f.string("profile_id")?,
            journey: f.string("journey")?,
            version: f.int("version")?,
            kind,
            step: f.optional_string("step")?,
            reason: f.optional_string("reason")?,
            trigger: f.string("trigger")?,
            at: f.long("at")?,
            variant: f.optional_string("variant")?,
            holdout: f.boolean("holdout")?,
            entry_id: f.optional_string("entry_id")?,
            step_kind: f.optional_string("step_kind")?,
        })
    }
}
