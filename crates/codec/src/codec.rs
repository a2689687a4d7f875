//! Encoding and decoding of typed records behind either framing.

use std::collections::HashMap;
use std::sync::Arc;

use crate::binary::{Datum, Reader};
use crate::datum;
use crate::framing::write_header;
use crate::resolver::{RegisteredSchema, SchemaResolver};
use crate::{
    AvroRecord, ChannelEvent, CodecError, CustomerEvent, Framing, JourneyTransition, SendCommand,
    parse_header,
};

/// Encodes and decodes Switchboard's records through a schema resolver.
///
/// The schemas this process writes (and reads into) are looked up once, at construction;
/// writer schemas of incoming payloads are looked up per id or fingerprint through the
/// resolver's cache.
#[derive(Debug)]
pub struct Codec<R> {
    resolver: R,
    ours: HashMap<&'static str, Arc<RegisteredSchema>>,
}

impl<R: SchemaResolver> Codec<R> {
    /// Looks up (or, with a registry, registers) the schema of every record.
    pub async fn new(resolver: R) -> Result<Self, CodecError> {
        let mut ours = HashMap::new();
        for name in [
            ChannelEvent::NAME,
            CustomerEvent::NAME,
            SendCommand::NAME,
            JourneyTransition::NAME,
        ] {
            ours.insert(name, resolver.writer_for(name).await?);
        }
        Ok(Self { resolver, ours })
    }

    pub fn resolver(&self) -> &R {
        &self.resolver
    }

    fn ours<T: AvroRecord>(&self) -> Result<&Arc<RegisteredSchema>, CodecError> {
        self.ours
            .get(T::NAME)
            .ok_or_else(|| CodecError::SchemaFile {
                path: "manifest.toml".into(),
                reason: format!("no schema for record {}", T::NAME),
            })
    }

    /// Frames and encodes `record` with the newest schema of its kind.
    pub fn encode<T: AvroRecord>(
        &self,
        record: &T,
        framing: Framing,
    ) -> Result<Vec<u8>, CodecError> {
        let schema = self.ours::<T>()?;
        let mut out = Vec::with_capacity(256);
        write_header(&mut out, framing, schema.id, schema.fingerprint);
        record.write(&mut Datum::new(&mut out));
        Ok(out)
    }

    /// The writer schema named by a framed payload: its record name says what it holds.
    pub async fn writer_of(&self, bytes: &[u8]) -> Result<Arc<RegisteredSchema>, CodecError> {
        let (schema_ref, _) = parse_header(bytes)?;
        self.resolver.resolve(schema_ref).await
    }

    /// Decodes a framed payload into `T`, resolving the writer schema into the newest one.
    pub async fn decode<T: AvroRecord>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let writer = self.writer_of(bytes).await?;
        self.decode_with::<T>(&writer, bytes)
    }

    /// Decodes a framed payload whose writer schema the caller already resolved.
    pub fn decode_with<T: AvroRecord>(
        &self,
        writer: &RegisteredSchema,
        bytes: &[u8],
    ) -> Result<T, CodecError> {
        let (_, body) = parse_header(bytes)?;
        if writer.name != T::NAME {
            return Err(CodecError::WrongType {
                expected: T::NAME,
                found: writer.name.clone(),
            });
        }
        let reader = self.ours::<T>()?;
        let body_error = |reason: String| CodecError::Body {
            schema: format!("{} (id {})", writer.name, writer.id),
            reason,
        };
        let trailing = |rest: usize| CodecError::TrailingBytes {
            schema: writer.name.clone(),
            trailing: rest,
        };
        if reader.fingerprint == writer.fingerprint {
            let mut input = Reader::new(body);
            let record = T::read(&mut input).map_err(|e| body_error(e.0))?;
            return match input.remaining() {
                0 => Ok(record),
                rest => Err(trailing(rest)),
            };
        }
        // An older writer: apache-avro resolves its datum into the newest schema.
        let mut rest = body;
        let value = datum::read(writer, &mut rest)
            .and_then(|v| v.resolve(&reader.schema))
            .map_err(|e| body_error(e.to_string()))?;
        if !rest.is_empty() {
            return Err(trailing(rest.len()));
        }
        T::from_value(value)
    }
}
