//! The Avro contracts of Switchboard and the codec that reads and writes them.
//!
//! Channel systems frame their events either the Confluent way (magic byte `0`, a 4-byte
//! big-endian schema id, the Avro datum) or with Avro single-object encoding (`C3 01`, the
//! 8-byte little-endian Rabin fingerprint of the writer schema, the datum). [`Codec`] reads
//! both, resolves the writer schema through a [`SchemaResolver`] (the checked-in
//! [`LocalSchemas`] or a Confluent [`RegistrySchemas`]), applies Avro reader/writer schema
//! resolution so older producers keep working, and turns the datum into a typed record.
//!
//! Every malformed input is a typed [`CodecError`], never a panic: the stitcher sends such
//! input to the dead-letter topic with [`CodecError::reason`] in a header.

#[cfg(feature = "registry")]
mod any;
mod binary;
mod codec;
mod datum;
mod error;
mod fields;
mod framing;
mod local;
mod records;
#[cfg(feature = "registry")]
mod registry;
mod resolver;

#[cfg(feature = "registry")]
pub use any::AnySchemas;
pub use binary::{Datum, Malformed, Reader};
pub use codec::Codec;
pub use error::CodecError;
pub use framing::{Framing, SchemaRef, parse_header};
pub use local::LocalSchemas;
pub use records::{
    AttrValue, AvroRecord, ChannelEvent, CustomerEvent, CustomerPayload, Identifier,
    JourneyTransition, ProfileMerged, SendCommand, SendReason, SourcePosition, TransitionKind,
};
#[cfg(feature = "registry")]
pub use registry::{RegistryAuth, RegistrySchemas};
pub use resolver::{RegisteredSchema, SchemaResolver};

/// Where the checked-in schemas live, relative to the workspace root.
pub const SCHEMA_DIR: &str = "schemas";
