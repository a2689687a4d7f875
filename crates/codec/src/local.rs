//! Schemas read from `schemas/` with the ids of its `manifest.toml`: the resolver for the
//! embedded mode, tests, and deployments without a Schema Registry.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;
use serde::Deserialize;

use crate::resolver::{RegisteredSchema, SchemaResolver};
use crate::{CodecError, SchemaRef};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    schema: Vec<ManifestEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestEntry {
    id: u32,
    file: String,
}

/// The checked-in schemas, compiled into the binary.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "manifest.toml",
        include_str!("../../../schemas/manifest.toml"),
    ),
    (
        "channel_event.v1.avsc",
        include_str!("../../../schemas/channel_event.v1.avsc"),
    ),
    (
        "customer_event.v1.avsc",
        include_str!("../../../schemas/customer_event.v1.avsc"),
    ),
    (
        "send_command.v1.avsc",
        include_str!("../../../schemas/send_command.v1.avsc"),
    ),
    (
        "journey_transition.v1.avsc",
        include_str!("../../../schemas/journey_transition.v1.avsc"),
    ),
    (
        "journey_transition.v2.avsc",
        include_str!("../../../schemas/journey_transition.v2.avsc"),
    ),
    (
        "journey_transition.v3.avsc",
        include_str!("../../../schemas/journey_transition.v3.avsc"),
    ),
];

/// Every schema version of the manifest, by id and by fingerprint; the newest version of
/// each record (highest id) is the one written and read into.
#[derive(Debug, Clone)]
pub struct LocalSchemas {
    by_id: HashMap<u32, Arc<RegisteredSchema>>,
    by_fingerprint: HashMap<u64, Arc<RegisteredSchema>>,
    newest: HashMap<String, Arc<RegisteredSchema>>,
}

impl LocalSchemas {
    /// The schemas compiled into this binary (the `schemas/` folder it was built from).
    pub fn embedded() -> Result<Self, CodecError> {
        Self::from_sources(|file| {
            EMBEDDED
                .iter()
                .find(|(name, _)| *name == file)
                .map(|(_, text)| (*text).to_owned())
                .ok_or_else(|| CodecError::SchemaFile {
                    path: file.to_owned(),
                    reason: "not among the embedded schemas".into(),
                })
        })
    }

    /// Reads `dir/manifest.toml` and the schema files it names.
    pub fn load(dir: &Path) -> Result<Self, CodecError> {
        Self::from_sources(|file| {
            let path = dir.join(file);
            std::fs::read_to_string(&path).map_err(|e| CodecError::SchemaFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        })
    }

    fn from_sources(read: impl Fn(&str) -> Result<String, CodecError>) -> Result<Self, CodecError> {
        let manifest: Manifest =
            toml::from_str(&read("manifest.toml")?).map_err(|e| CodecError::SchemaFile {
                path: "manifest.toml".into(),
                reason: e.to_string(),
            })?;
        let mut by_id = HashMap::new();
        for entry in manifest.schema {
            let text = read(&entry.file)?;
            let schema = Schema::parse_str(&text).map_err(|e| CodecError::SchemaFile {
                path: entry.file.clone(),
                reason: e.to_string(),
            })?;
            let registered = Arc::new(RegisteredSchema::new(entry.id, schema));
            if by_id.insert(entry.id, registered).is_some() {
                return Err(CodecError::SchemaFile {
                    path: entry.file,
                    reason: format!("schema id {} is used twice in manifest.toml", entry.id),
                });
            }
        }
        Self::from_registered(by_id.into_values().collect())
    }

    /// Indexes the given versions and checks that the newest version of each record can
    /// read every older one (Avro backward compatibility).
    pub fn from_registered(all: Vec<Arc<RegisteredSchema>>) -> Result<Self, CodecError> {
        let mut newest: HashMap<String, Arc<RegisteredSchema>> = HashMap::new();
        for s in &all {
            let keep_old = newest.get(&s.name).is_some_and(|n| n.id > s.id);
            if !keep_old {
                newest.insert(s.name.clone(), Arc::clone(s));
            }
        }
        for s in &all {
            if let Some(reader) = newest.get(&s.name).filter(|r| r.id != s.id) {
                SchemaCompatibility::can_read(&s.schema, &reader.schema).map_err(|e| {
                    CodecError::Incompatible {
                        name: s.name.clone(),
                        older: s.id,
                        newer: reader.id,
                        reason: e.to_string(),
                    }
                })?;
            }
        }
        let by_fingerprint = all.iter().map(|s| (s.fingerprint, Arc::clone(s))).collect();
        let by_id = all.into_iter().map(|s| (s.id, s)).collect();
        Ok(Self {
            by_id,
            by_fingerprint,
            newest,
        })
    }

    /// The newest version of the record called `name`.
    pub fn newest(&self, name: &str) -> Option<&Arc<RegisteredSchema>> {
        self.newest.get(name)
    }

    pub(crate) fn lookup(&self, r: SchemaRef) -> Result<Arc<RegisteredSchema>, CodecError> {
        match r {
            SchemaRef::Id(id) => self
                .by_id
                .get(&id)
                .cloned()
                .ok_or(CodecError::UnknownSchemaId(id)),
            SchemaRef::Fingerprint(fp) => self
                .by_fingerprint
                .get(&fp)
                .cloned()
                .ok_or(CodecError::UnknownFingerprint(fp)),
        }
    }
}

impl SchemaResolver for LocalSchemas {
    async fn resolve(&self, r: SchemaRef) -> Result<Arc<RegisteredSchema>, CodecError> {
        self.lookup(r)
    }

    async fn writer_for(&self, name: &str) -> Result<Arc<RegisteredSchema>, CodecError> {
        self.newest(name)
            .cloned()
            .ok_or_else(|| CodecError::SchemaFile {
                path: "manifest.toml".into(),
                reason: format!("no schema for record {name}"),
            })
    }
}
