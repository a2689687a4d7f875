//! The journey file as designers write it (YAML), before validation.
//!
//! Locations are kept (`Spanned`) on state bodies, state references and CEL strings, so a
//! semantic error names its line. [`crate::compile`] turns this into a [`crate::Journey`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A YAML string with its location (shown as a plain string in the JSON Schema).
pub type Located = Spanned<String>;

/// One journey file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JourneyFile {
    /// Unique id of the journey, e.g. `abandoned-cart`.
    pub journey: String,
    /// Version; bump it on every change. Customers in flight stay on the version they entered.
    pub version: u32,
    #[serde(default)]
    pub description: String,
    /// Higher wins when frequency caps leave room for fewer sends than journeys want.
    #[serde(default)]
    pub priority: i32,
    pub trigger: TriggerDef,
    /// CEL over `profile` and `event`: who may enter.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub audience: Option<Located>,
    #[serde(default)]
    pub reentry: ReentryDef,
    /// Share of entrants (0..1) kept out as a control group, chosen deterministically per customer.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub holdout: Option<Spanned<f64>>,
    /// Event types, from any channel, that end the journey.
    #[serde(default)]
    pub exit_on: Vec<String>,
    #[serde(default)]
    pub goal: Option<GoalDef>,
    /// The first state.
    #[schemars(with = "String")]
    pub start: Located,
    /// The states, by name.
    #[schemars(with = "BTreeMap<String, StepDef>")]
    pub steps: BTreeMap<String, Spanned<StepDef>>,
    /// States of the previous version mapped to states of this one: customers in flight move
    /// to the new version; without a mapping they finish on the version they entered.
    #[serde(default)]
    pub migrate_from_previous: BTreeMap<String, String>,
}

/// What starts the journey.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerDef {
    /// Event type, e.g. `cart.updated`.
    pub event: String,
    /// CEL condition over `event` and `profile`.
    #[serde(default, rename = "if")]
    #[schemars(with = "Option<String>")]
    pub condition: Option<Located>,
}

/// Whether a customer may enter again.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ReentryDef {
    /// Once per customer, ever.
    #[default]
    Never,
    /// Whenever triggered, if not already in the journey.
    Always,
    /// After a cooldown since the last entry, e.g. `{ after: 7d }`.
    After(String),
}

/// A conversion goal: the event, within a window after entry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoalDef {
    pub event: String,
    /// e.g. `7d`.
    pub within: String,
}

/// One state. Exactly one of the kind fields (`send`, `wait`, `wait_until`, `wait_for`,
/// `branch`, `split`, `update`, `exit`) is set.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    #[serde(default)]
    pub send: Option<SendDef>,
    /// A duration: `1h`, `24h`, `7d`, `23h 30m`.
    #[serde(default)]
    pub wait: Option<String>,
    /// A local time of day in the customer's time zone, `HH:MM`.
    #[serde(default)]
    pub wait_until: Option<String>,
    #[serde(default)]
    pub wait_for: Option<WaitForDef>,
    #[serde(default)]
    pub branch: Option<Vec<BranchArmDef>>,
    #[serde(default)]
    pub split: Option<Vec<SplitArmDef>>,
    /// With `split`: pick a winner after a test period (see [`OptimizeDef`]).
    #[serde(default)]
    pub optimize: Option<OptimizeDef>,
    #[serde(default)]
    pub update: Option<UpdateDef>,
    /// Ends the journey; the value names the outcome.
    #[serde(default)]
    pub exit: Option<String>,
    /// The state that follows (send, wait, wait_until, update).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub next: Option<Located>,
    /// After `wait_for`: the state when the event arrives.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub on_event: Option<Located>,
    /// After `wait_for`: the state when the timeout passes first.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub on_timeout: Option<Located>,
}

/// Send a template on one channel or the first reachable of several.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendDef {
    #[serde(default)]
    pub channel: Option<String>,
    /// Preference order; the first the customer can receive and has consented to is used.
    #[serde(default)]
    pub channels: Vec<String>,
    pub template: String,
    /// Template variables: CEL expressions over `event` (the trigger) and `profile`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub vars: BTreeMap<String, Located>,
    /// Locale override; by default the customer's, else the policies' default.
    #[serde(default)]
    pub locale: Option<String>,
}

/// Wait for an event, with a timeout.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitForDef {
    pub event: String,
    #[serde(default)]
    pub timeout: Option<String>,
}

/// One arm of a branch: `{ if: <CEL>, next: <state> }`, or `{ else: <state> }` last.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchArmDef {
    #[serde(default, rename = "if")]
    #[schemars(with = "Option<String>")]
    pub condition: Option<Located>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub next: Option<Located>,
    #[serde(default, rename = "else")]
    #[schemars(with = "Option<String>")]
    pub otherwise: Option<Located>,
}

/// One variant of a split.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitArmDef {
    pub variant: String,
    pub weight: u32,
    #[schemars(with = "String")]
    pub next: Located,
}

/// How a split picks its winner: once `after` has passed since its first entry and every
/// variant has `min_entries`, new entries go to the variant that converts best to the
/// journey's goal, if it beats every other variant significantly.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptimizeDef {
    /// The goal event; the journey's own (`goal.event`), which this may only repeat.
    #[serde(default)]
    pub goal: Option<String>,
    /// The test period, e.g. `14d`, from the split's first entry.
    pub after: String,
    /// Entries every variant needs before a winner is picked.
    #[serde(default = "default_min_entries")]
    pub min_entries: u64,
}

fn default_min_entries() -> u64 {
    100
}

/// Changes to the profile.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDef {
    /// Attribute name to a CEL expression.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub set: BTreeMap<String, Located>,
    #[serde(default)]
    pub increment: BTreeMap<String, i64>,
    #[serde(default)]
    pub add_tags: Vec<String>,
    #[serde(default)]
    pub remove_tags: Vec<String>,
}
