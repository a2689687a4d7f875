//! Either schema source, chosen at startup from configuration.

use std::sync::Arc;

use crate::{
    CodecError, LocalSchemas, RegisteredSchema, RegistrySchemas, SchemaRef, SchemaResolver,
};

/// The embedded schemas, or a Confluent Schema Registry.
#[derive(Debug)]
pub enum AnySchemas {
    Local(LocalSchemas),
    Registry(Box<RegistrySchemas>),
}

impl SchemaResolver for AnySchemas {
    async fn resolve(&self, r: SchemaRef) -> Result<Arc<RegisteredSchema>, CodecError> {
        match self {
            Self::Local(s) => s.resolve(r).await,
            Self::Registry(s) => s.resolve(r).await,
        }
    }

    async fn writer_for(&self, name: &str) -> Result<Arc<RegisteredSchema>, CodecError> {
        match self {
            Self::Local(s) => s.writer_for(name).await,
            Self::Registry(s) => s.writer_for(name).await,
        }
    }
}
