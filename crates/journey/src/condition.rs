//! Conditions and expressions in CEL (through the `cel` crate), over `event` and `profile`.

use std::collections::HashMap;
use std::sync::Arc;

use cel::{Context, Env, Program, Value};

thread_local! {
    /// The built-in functions, registered once per thread: building them is most of the
    /// cost of a fresh `Context`.
    static ENV: Arc<Env> = Arc::new(Env::stdlib());
}

/// A context with the built-in functions and no variables.
pub(crate) fn context() -> Context<'static, 'static> {
    Context::with_env(ENV.with(Arc::clone))
}

/// A context with `event` and `profile` bound, for evaluating conditions outside a journey.
pub fn bindings(event: Value, profile: Value) -> Context<'static, 'static> {
    let mut c = context();
    c.add_variable_from_value("event", event);
    c.add_variable_from_value("profile", profile);
    c
}

/// A compiled CEL expression with its source text.
#[derive(Clone)]
pub struct Condition {
    source: String,
    program: Arc<Program>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Condition({:?})", self.source)
    }
}

impl Condition {
    /// Compiles `source`, or says why it is not valid CEL.
    pub fn compile(source: &str) -> Result<Self, String> {
        let program = std::panic::catch_unwind(|| Program::compile(source))
            .map_err(|_| "the CEL parser failed on this expression".to_owned())?
            .map_err(|e| format!("invalid CEL `{source}`: {e}"))?;
        Ok(Self {
            source: source.to_owned(),
            program: Arc::new(program),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates in `context`, which binds `event` and `profile`.
    pub fn evaluate(&self, context: &Context<'_, '_>) -> Result<Value, String> {
        self.program
            .execute(context)
            .map_err(|e| format!("`{}`: {e}", self.source))
    }

    /// Evaluates as a condition: true only for a boolean `true`.
    pub fn holds(&self, context: &Context<'_, '_>) -> Result<bool, String> {
        match self.evaluate(context)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!("`{}` gave {other:?}, not a boolean", self.source)),
        }
    }
}

/// A CEL map from string keys.
pub fn map(entries: HashMap<String, Value>) -> Value {
    Value::from(entries)
}

/// Renders a CEL value as a template variable.
pub fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => format!("{other:?}"),
    }
}
