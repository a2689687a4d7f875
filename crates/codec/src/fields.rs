//! Reading the fields of a resolved Avro record into Rust types, with typed errors.
//!
//! After reader/writer resolution the value has the reader schema's shape, so a mismatch
//! here means the reader schema and the Rust record disagree: still an error, never a panic.

use std::collections::HashMap;

use apache_avro::types::Value;

use crate::CodecError;

pub(crate) struct Fields {
    record: &'static str,
    fields: Vec<(String, Value)>,
}

impl Fields {
    pub(crate) fn new(record: &'static str, value: Value) -> Result<Self, CodecError> {
        match value {
            Value::Record(fields) => Ok(Self { record, fields }),
            other => Err(shape(
                record,
                "<record>",
                format!("expected a record, found {other:?}"),
            )),
        }
    }

    fn take(&mut self, name: &str) -> Result<Value, CodecError> {
        let at = self.fields.iter().position(|(n, _)| n == name);
        match at {
            Some(i) => Ok(self.fields.swap_remove(i).1),
            None => Err(shape(self.record, name, "missing")),
        }
    }

    pub(crate) fn string(&mut self, name: &str) -> Result<String, CodecError> {
        as_string(self.record, name, self.take(name)?)
    }

    pub(crate) fn int(&mut self, name: &str) -> Result<i32, CodecError> {
        match self.take(name)? {
            Value::Int(i) => Ok(i),
            other => Err(shape(
                self.record,
                name,
                format!("expected int, found {other:?}"),
            )),
        }
    }

    pub(crate) fn boolean(&mut self, name: &str) -> Result<bool, CodecError> {
        match self.take(name)? {
            Value::Boolean(b) => Ok(b),
            other => Err(shape(
                self.record,
                name,
                format!("expected boolean, found {other:?}"),
            )),
        }
    }

    pub(crate) fn long(&mut self, name: &str) -> Result<i64, CodecError> {
        match self.take(name)? {
            Value::Long(i) | Value::TimestampMillis(i) => Ok(i),
            Value::Int(i) => Ok(i64::from(i)),
            other => Err(shape(
                self.record,
                name,
                format!("expected long, found {other:?}"),
            )),
        }
    }

    pub(crate) fn optional_string(&mut self, name: &str) -> Result<Option<String>, CodecError> {
        match unwrap_union(self.take(name)?) {
            Value::Null => Ok(None),
            v => as_string(self.record, name, v).map(Some),
        }
    }

    pub(crate) fn optional_long(&mut self, name: &str) -> Result<Option<i64>, CodecError> {
        match unwrap_union(self.take(name)?) {
            Value::Null => Ok(None),
            Value::Long(i) | Value::TimestampMillis(i) => Ok(Some(i)),
            other => Err(shape(
                self.record,
                name,
                format!("expected long, found {other:?}"),
            )),
        }
    }

    pub(crate) fn array(&mut self, name: &str) -> Result<Vec<Value>, CodecError> {
        match self.take(name)? {
            Value::Array(items) => Ok(items),
            other => Err(shape(
                self.record,
                name,
                format!("expected array, found {other:?}"),
            )),
        }
    }

    pub(crate) fn strings(&mut self, name: &str) -> Result<Vec<String>, CodecError> {
        let record = self.record;
        self.array(name)?
            .into_iter()
            .map(|v| as_string(record, name, v))
            .collect()
    }

    pub(crate) fn map(&mut self, name: &str) -> Result<HashMap<String, Value>, CodecError> {
        match self.take(name)? {
            Value::Map(m) => Ok(m),
            other => Err(shape(
                self.record,
                name,
                format!("expected map, found {other:?}"),
            )),
        }
    }

    pub(crate) fn value(&mut self, name: &str) -> Result<Value, CodecError> {
        self.take(name)
    }
}

pub(crate) fn unwrap_union(v: Value) -> Value {
    match v {
        Value::Union(_, inner) => *inner,
        other => other,
    }
}

pub(crate) fn as_string(record: &'static str, field: &str, v: Value) -> Result<String, CodecError> {
    match unwrap_union(v) {
        Value::String(s) => Ok(s),
        other => Err(shape(
            record,
            field,
            format!("expected string, found {other:?}"),
        )),
    }
}

pub(crate) fn shape(record: &'static str, field: &str, reason: impl Into<String>) -> CodecError {
    CodecError::Shape {
        record,
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// `["null", T]` union value for an optional field.
pub(crate) fn optional(v: Option<Value>) -> Value {
    match v {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(v)),
    }
}

pub(crate) fn record(fields: Vec<(&str, Value)>) -> Value {
    Value::Record(fields.into_iter().map(|(n, v)| (n.to_owned(), v)).collect())
}

pub(crate) fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().cloned().map(Value::String).collect())
}
