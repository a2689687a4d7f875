//! Avro datums with the schema's names resolved once per schema and thread.
//!
//! apache-avro's `to_avro_datum` and `from_avro_datum` resolve the whole schema (walk it and
//! build its table of names) on every call, which cost more than the encoding itself. Its
//! single-object writer and reader keep the resolved schema; these give them a header we do
//! not use (the framing is ours, see [`crate::framing`]) and cache them by fingerprint.

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use apache_avro::headers::HeaderBuilder;
use apache_avro::types::Value;
use apache_avro::{GenericSingleObjectReader, GenericSingleObjectWriter};

use crate::resolver::RegisteredSchema;

/// The writer needs a header of 10 to 20 bytes; this one is cut off after each write.
const PLACEHOLDER: usize = 10;

struct Placeholder;

impl HeaderBuilder for Placeholder {
    fn build_header(&self) -> Vec<u8> {
        vec![0; PLACEHOLDER]
    }
}

/// The reader is handed the datum alone.
struct NoHeader;

impl HeaderBuilder for NoHeader {
    fn build_header(&self) -> Vec<u8> {
        Vec::new()
    }
}

thread_local! {
    static WRITERS: RefCell<HashMap<u64, GenericSingleObjectWriter>> = RefCell::default();
    static READERS: RefCell<HashMap<u64, GenericSingleObjectReader>> = RefCell::default();
}

/// Appends the datum of `value`, validated against `schema`, to `out`.
pub(crate) fn write(
    schema: &RegisteredSchema,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<(), apache_avro::Error> {
    WRITERS.with_borrow_mut(|writers| {
        let writer = match writers.entry(schema.fingerprint) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(
                GenericSingleObjectWriter::new_with_capacity_and_header_builder(
                    &schema.schema,
                    1024,
                    Placeholder,
                )?,
            ),
        };
        let start = out.len();
        writer.write_value_ref(value, out)?;
        out.drain(start..start + PLACEHOLDER);
        Ok(())
    })
}

/// The longest string, bytes, array or map a datum may declare: every record is smaller
/// than this, so a longer one is a malformed length. apache-avro's own default (512 MiB)
/// lets a 20-byte input reserve gigabytes for an array (found by the `avro_confluent` fuzz
/// target).
pub const MAX_LEN: usize = 256 * 1024;

/// Reads one datum written with `schema` from the front of `body`, leaving the rest there.
pub(crate) fn read(
    schema: &RegisteredSchema,
    body: &mut &[u8],
) -> Result<Value, apache_avro::Error> {
    // Set once per process; the first decode sets it before any allocation.
    apache_avro::util::max_allocation_bytes(MAX_LEN);
    READERS.with_borrow_mut(|readers| {
        let reader = match readers.entry(schema.fingerprint) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(GenericSingleObjectReader::new_with_header_builder(
                schema.schema.clone(),
                NoHeader,
            )?),
        };
        reader.read_value(body)
    })
}
