//! `switchboard report`: what `journeys.transitions` (and the commands) say about each
//! journey, version and variant: entries, a funnel of every step, sends by channel and
//! template, suppressions and deferrals by reason, goals, conversion, the time to goal, and
//! the lift of each variant against the control group ([`lift`] says how it is computed).
//! Pure: records in, a [`Report`] out, rendered as a table ([`table::render`]), JSON
//! (serde), or a self-contained HTML page ([`html::render`]).

mod aggregate;
pub mod html;
pub mod lift;
pub mod table;

pub use aggregate::{ALL, Arm, CONTROL, JourneyReport, Report, Seen, Sends, Step, Winner, report};
pub use lift::Lift;
