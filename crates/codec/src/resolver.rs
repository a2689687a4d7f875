//! The port through which the codec finds writer schemas.

use std::future::Future;
use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::rabin::Rabin;

use crate::{CodecError, SchemaRef};

/// A writer schema as a resolver knows it.
#[derive(Debug)]
pub struct RegisteredSchema {
    /// Schema Registry id (or the id in `schemas/manifest.toml`).
    pub id: u32,
    /// CRC-64-AVRO (Rabin) fingerprint of the parsing canonical form.
    pub fingerprint: u64,
    /// Full name of the record, e.g. `io.switchboard.ChannelEvent`.
    pub name: String,
    pub schema: Schema,
}

impl RegisteredSchema {
    pub fn new(id: u32, schema: Schema) -> Self {
        let fingerprint = rabin_fingerprint(&schema);
        let name = match &schema {
            Schema::Record(r) => r.name.fullname(None),
            other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)),
        };
        Self {
            id,
            fingerprint,
            name,
            schema,
        }
    }
}

/// The 64-bit Rabin fingerprint used by Avro single-object encoding.
pub fn rabin_fingerprint(schema: &Schema) -> u64 {
    let fp = schema.fingerprint::<Rabin>();
    let bytes: [u8; 8] = fp.bytes.as_slice().try_into().unwrap_or([0; 8]);
    u64::from_le_bytes(bytes)
}

/// Finds the writer schema named by a framed payload.
///
/// Implementations cache: the codec calls this for every message.
pub trait SchemaResolver: Send + Sync {
    /// The writer schema for `r`, or [`CodecError::UnknownSchemaId`] /
    /// [`CodecError::UnknownFingerprint`] when there is none, or a retryable
    /// [`CodecError::Registry`] when the registry cannot be reached.
    fn resolve(
        &self,
        r: SchemaRef,
    ) -> impl Future<Output = Result<Arc<RegisteredSchema>, CodecError>> + Send;

    /// The schema (and id) this process writes records of `name` with.
    fn writer_for(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Arc<RegisteredSchema>, CodecError>> + Send;
}
