//! Reading Avro datums with the schema's names resolved once per schema and thread.
//!
//! apache-avro's `from_avro_datum` resolves the whole schema (walks it and builds its table
//! of names) on every call, which cost more than the decoding itself. Its single-object
//! reader keeps the resolved schema; this hands it the datum without the header it expects
//! (the framing is ours, see [`crate::framing`]) and caches it by fingerprint. It reads
//! datums of older writer schemas only: writing, and reading the newest schema, go straight
//! between bytes and records ([`crate::binary`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use apache_avro::GenericSingleObjectReader;
use apache_avro::headers::HeaderBuilder;
use apache_avro::types::Value;

use crate::resolver::RegisteredSchema;

/// The reader is handed the datum alone.
struct NoHeader;

impl HeaderBuilder for NoHeader {
    fn build_header(&self) -> Vec<u8> {
        Vec::new()
    }
}

thread_local! {
    static READERS: RefCell<HashMap<u64, GenericSingleObjectReader>> = RefCell::default();
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
