//! Everything that can go wrong while framing, resolving or (de)serialising a record.

/// A codec failure, with the context an operator needs to find the bad input.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty payload")]
    Empty,
    #[error("payload of {len} bytes is shorter than the {framing} header of {need} bytes")]
    ShortHeader {
        framing: &'static str,
        len: usize,
        need: usize,
    },
    #[error(
        "unknown framing: first bytes {found:02x?}, expected 00 (Confluent) or c3 01 (Avro single-object)"
    )]
    WrongMagic { found: Vec<u8> },
    #[error("schema id {0} is not known to the schema resolver")]
    UnknownSchemaId(u32),
    #[error("schema fingerprint {0:016x} is not known to the schema resolver")]
    UnknownFingerprint(u64),
    #[error("expected a {expected} record but the writer schema is {found}")]
    WrongType {
        expected: &'static str,
        found: String,
    },
    #[error("body does not decode with writer schema {schema}: {reason}")]
    Body { schema: String, reason: String },
    #[error("{trailing} bytes left over after decoding a {schema}")]
    TrailingBytes { schema: String, trailing: usize },
    #[error("record {record}, field {field}: {reason}")]
    Shape {
        record: &'static str,
        field: String,
        reason: String,
    },
    #[error("cannot encode {record}: {reason}")]
    Encode {
        record: &'static str,
        reason: String,
    },
    #[error("schema registry {url}: {reason}")]
    Registry { url: String, reason: String },
    #[error("schema file {path}: {reason}")]
    SchemaFile { path: String, reason: String },
    #[error(
        "{name}: data written with schema id {older} cannot be read with schema id {newer}: {reason}"
    )]
    Incompatible {
        name: String,
        older: u32,
        newer: u32,
        reason: String,
    },
}

impl CodecError {
    /// A short, stable label for metrics and the dead-letter `reason` header.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::ShortHeader { .. } => "short_header",
            Self::WrongMagic { .. } => "wrong_magic",
            Self::UnknownSchemaId(_) => "unknown_schema_id",
            Self::UnknownFingerprint(_) => "unknown_fingerprint",
            Self::WrongType { .. } => "wrong_type",
            Self::Body { .. } => "bad_body",
            Self::TrailingBytes { .. } => "trailing_bytes",
            Self::Shape { .. } => "bad_shape",
            Self::Encode { .. } => "encode",
            Self::Registry { .. } => "registry_unavailable",
            Self::SchemaFile { .. } => "schema_file",
            Self::Incompatible { .. } => "incompatible_schema",
        }
    }

    /// Whether the same input may succeed later (the registry was unreachable): retry
    /// rather than dead-letter.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Registry { .. })
    }
}
