//! A cached client of the Confluent Schema Registry REST API, for production.
//!
//! Writer schemas are fetched once per id (`GET /schemas/ids/{id}`) and kept for the life
//! of the process, as ids are immutable. Switchboard registers the schemas it writes under
//! the record-name subject strategy (`POST /subjects/{full name}/versions`), which returns
//! the existing id when the schema is already registered.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apache_avro::Schema;
use serde::{Deserialize, Serialize};

use crate::resolver::{RegisteredSchema, SchemaResolver};
use crate::{CodecError, LocalSchemas, SchemaRef};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Basic-auth credentials for a registry (Confluent Cloud API key and secret).
#[derive(Debug, Clone)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

/// Schema Registry resolver with an id cache.
#[derive(Debug)]
pub struct RegistrySchemas {
    url: String,
    http: reqwest::Client,
    auth: Option<RegistryAuth>,
    ours: LocalSchemas,
    by_id: RwLock<HashMap<u32, Arc<RegisteredSchema>>>,
    by_fingerprint: RwLock<HashMap<u64, Arc<RegisteredSchema>>>,
    writers: RwLock<HashMap<String, Arc<RegisteredSchema>>>,
}

#[derive(Deserialize)]
struct SchemaResponse {
    schema: String,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
}

#[derive(Serialize)]
struct RegisterRequest<'a> {
    schema: &'a str,
}

#[derive(Deserialize)]
struct RegisterResponse {
    id: u32,
}

impl RegistrySchemas {
    /// A client of the registry at `url` (e.g. `https://registry:8081`); `ours` are the
    /// schemas this process writes, registered on first use.
    pub fn new(
        url: &str,
        auth: Option<RegistryAuth>,
        ours: LocalSchemas,
    ) -> Result<Self, CodecError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| CodecError::Registry {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            http,
            auth,
            ours,
            by_id: RwLock::default(),
            by_fingerprint: RwLock::default(),
            writers: RwLock::default(),
        })
    }

    fn unavailable(&self, reason: impl ToString) -> CodecError {
        CodecError::Registry {
            url: self.url.clone(),
            reason: reason.to_string(),
        }
    }

    fn request(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let builder = builder.header(reqwest::header::ACCEPT, CONTENT_TYPE);
        match &self.auth {
            Some(a) => builder.basic_auth(&a.username, Some(&a.password)),
            None => builder,
        }
    }

    fn remember(&self, s: Arc<RegisteredSchema>) {
        if let Ok(mut m) = self.by_fingerprint.write() {
            m.insert(s.fingerprint, Arc::clone(&s));
        }
        if let Ok(mut m) = self.by_id.write() {
            m.insert(s.id, s);
        }
    }

    async fn fetch(&self, id: u32) -> Result<Arc<RegisteredSchema>, CodecError> {
        let url = format!("{}/schemas/ids/{id}", self.url);
        let response = self
            .request(self.http.get(&url))
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(CodecError::UnknownSchemaId(id));
        }
        if !status.is_success() {
            return Err(self.unavailable(format!("GET {url}: HTTP {status}")));
        }
        let body: SchemaResponse = response.json().await.map_err(|e| self.unavailable(e))?;
        if body.schema_type.as_deref().is_some_and(|t| t != "AVRO") {
            return Err(CodecError::WrongType {
                expected: "Avro",
                found: body.schema_type.unwrap_or_default(),
            });
        }
        let schema = Schema::parse_str(&body.schema).map_err(|e| CodecError::SchemaFile {
            path: url.clone(),
            reason: e.to_string(),
        })?;
        let registered = Arc::new(RegisteredSchema::new(id, schema));
        self.remember(Arc::clone(&registered));
        Ok(registered)
    }

    async fn register(&self, name: &str) -> Result<Arc<RegisteredSchema>, CodecError> {
        let local = self
            .ours
            .newest(name)
            .ok_or_else(|| CodecError::SchemaFile {
                path: "manifest.toml".into(),
                reason: format!("no schema for record {name}"),
            })?;
        let url = format!("{}/subjects/{name}/versions", self.url);
        let canonical = local.schema.canonical_form();
        let response = self
            .request(self.http.post(&url))
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .json(&RegisterRequest { schema: &canonical })
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(self.unavailable(format!("POST {url}: HTTP {status}: {text}")));
        }
        let RegisterResponse { id } = response.json().await.map_err(|e| self.unavailable(e))?;
        let registered = Arc::new(RegisteredSchema::new(id, local.schema.clone()));
        self.remember(Arc::clone(&registered));
        if let Ok(mut w) = self.writers.write() {
            w.insert(name.to_owned(), Arc::clone(&registered));
        }
        Ok(registered)
    }
}

impl SchemaResolver for RegistrySchemas {
    async fn resolve(&self, r: SchemaRef) -> Result<Arc<RegisteredSchema>, CodecError> {
        match r {
            SchemaRef::Id(id) => {
                let cached = self.by_id.read().ok().and_then(|m| m.get(&id).cloned());
                match cached {
                    Some(s) => Ok(s),
                    None => self.fetch(id).await,
                }
            }
            // The registry cannot be searched by fingerprint: single-object payloads must
            // use a schema this process has seen (its own, or one fetched by id).
            SchemaRef::Fingerprint(fp) => self
                .by_fingerprint
                .read()
                .ok()
                .and_then(|m| m.get(&fp).cloned())
                .map_or_else(|| self.ours.lookup(r), Ok),
        }
    }

    async fn writer_for(&self, name: &str) -> Result<Arc<RegisteredSchema>, CodecError> {
        let cached = self.writers.read().ok().and_then(|m| m.get(name).cloned());
        match cached {
            Some(s) => Ok(s),
            None => self.register(name).await,
        }
    }
}
