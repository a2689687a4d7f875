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

/// The variables a journey's expressions may name.
pub const DECLARED: [&str; 2] = ["event", "profile"];

impl Condition {
    /// Compiles `source`, or says why it is not valid CEL, or names a variable in it that is
    /// not one of [`DECLARED`] (nor bound by a macro such as `exists(t, ...)`).
    pub fn compile(source: &str) -> Result<Self, String> {
        let program = std::panic::catch_unwind(|| Program::compile(source))
            .map_err(|_| "the CEL parser failed on this expression".to_owned())?
            .map_err(|e| format!("invalid CEL `{source}`: {e}"))?;
        let mut bound = Vec::new();
        macro_variables(program.expression(), &mut bound);
        let references = program.references();
        let mut unknown: Vec<&str> = references
            .variables()
            .into_iter()
            .filter(|v| !DECLARED.contains(v) && !bound.contains(v))
            .collect();
        unknown.sort_unstable();
        if let Some(name) = unknown.first() {
            return Err(format!(
                "`{source}` names `{name}`, which is not a variable: expressions see `event` (its \
                 fields and attributes) and `profile`"
            ));
        }
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

/// The variables that macros (`exists`, `all`, `map`, `filter`, ...) bind inside `e`.
fn macro_variables<'e>(e: &'e cel::IdedExpr, out: &mut Vec<&'e str>) {
    use cel::common::ast::{EntryExpr, Expr};
    fn entry<'e>(e: &'e EntryExpr, out: &mut Vec<&'e str>) {
        match e {
            EntryExpr::StructField(f) => macro_variables(&f.value, out),
            EntryExpr::MapEntry(m) => {
                macro_variables(&m.key, out);
                macro_variables(&m.value, out);
            }
        }
    }
    match &e.expr {
        Expr::Comprehension(c) => {
            out.push(&c.iter_var);
            if let Some(v) = &c.iter_var2 {
                out.push(v);
            }
            out.push(&c.accu_var);
            for part in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                macro_variables(part, out);
            }
        }
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                macro_variables(target, out);
            }
            for arg in &call.args {
                macro_variables(arg, out);
            }
        }
        Expr::List(list) => {
            for item in &list.elements {
                macro_variables(item, out);
            }
        }
        Expr::Map(map) => map.entries.iter().for_each(|e| entry(&e.expr, out)),
        Expr::Select(select) => macro_variables(&select.operand, out),
        Expr::Struct(s) => s.entries.iter().for_each(|e| entry(&e.expr, out)),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        #[allow(unreachable_patterns)]
        _ => {}
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
