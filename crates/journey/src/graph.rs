//! Drawings of a journey's state machine: Mermaid (`stateDiagram-v2`) and Graphviz DOT.

use crate::{Journey, State, StepKind};

fn describe(s: &State) -> String {
    let d = |ms: i64| {
        humantime::format_duration(std::time::Duration::from_millis(
            u64::try_from(ms).unwrap_or(0),
        ))
        .to_string()
    };
    match &s.kind {
        StepKind::Send {
            channels, template, ..
        } => format!("send {template} via {}", channels.join(" > ")),
        StepKind::Wait { ms, .. } => format!("wait {}", d(*ms)),
        StepKind::WaitUntil { minute_of_day, .. } => format!(
            "wait until {:02}:{:02} local",
            minute_of_day / 60,
            minute_of_day % 60
        ),
        StepKind::WaitFor {
            event, timeout_ms, ..
        } => format!("wait for {event} up to {}", d(*timeout_ms)),
        StepKind::Branch { .. } => "branch".into(),
        StepKind::Split { .. } => "split".into(),
        StepKind::Update { .. } => "update profile".into(),
        StepKind::Exit { outcome } => format!("exit {outcome}"),
    }
}

fn id(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn quote(s: &str) -> String {
    s.replace('"', "'")
}

/// Mermaid state diagram: states with what they do, edges labelled with conditions,
/// variants, awaited events and timeouts; exits lead to the end.
pub fn mermaid(j: &Journey) -> String {
    let mut out = format!(
        "---\ntitle: {} v{}\n---\nstateDiagram-v2\n",
        j.id, j.version
    );
    for s in &j.states {
        out.push_str(&format!(
            "    state \"{}: {}\" as {}\n",
            quote(&s.name),
            quote(&describe(s)),
            id(&s.name)
        ));
    }
    if let Some(start) = j.state(j.start) {
        out.push_str(&format!(
            "    [*] --> {} : {}\n",
            id(&start.name),
            quote(&j.trigger_event)
        ));
    }
    for s in &j.states {
        for (next, label) in s.kind.successors() {
            let Some(to) = j.state(next) else { continue };
            if label.is_empty() {
                out.push_str(&format!("    {} --> {}\n", id(&s.name), id(&to.name)));
            } else {
                out.push_str(&format!(
                    "    {} --> {} : {}\n",
                    id(&s.name),
                    id(&to.name),
                    quote(&label).replace(':', "#colon;")
                ));
            }
        }
        if matches!(s.kind, StepKind::Exit { .. }) {
            out.push_str(&format!("    {} --> [*]\n", id(&s.name)));
        }
    }
    if !j.exit_on.is_empty() {
        out.push_str(&format!(
            "    note right of {}\n        exits on {}\n    end note\n",
            j.state(j.start).map_or(String::new(), |s| id(&s.name)),
            j.exit_on.join(", ")
        ));
    }
    out
}

/// Graphviz DOT of the same machine.
pub fn dot(j: &Journey) -> String {
    let mut out = format!(
        "digraph \"{} v{}\" {{\n    rankdir=LR;\n    start [shape=point];\n",
        quote(&j.id),
        j.version
    );
    for s in &j.states {
        let shape = match s.kind {
            StepKind::Branch { .. } | StepKind::Split { .. } => "diamond",
            StepKind::Exit { .. } => "doublecircle",
            _ => "box",
        };
        out.push_str(&format!(
            "    {} [shape={shape}, label=\"{}\\n{}\"];\n",
            id(&s.name),
            quote(&s.name),
            quote(&describe(s))
        ));
    }
    if let Some(start) = j.state(j.start) {
        out.push_str(&format!(
            "    start -> {} [label=\"{}\"];\n",
            id(&start.name),
            quote(&j.trigger_event)
        ));
    }
    for s in &j.states {
        for (next, label) in s.kind.successors() {
            if let Some(to) = j.state(next) {
                out.push_str(&format!(
                    "    {} -> {} [label=\"{}\"];\n",
                    id(&s.name),
                    id(&to.name),
                    quote(&label)
                ));
            }
        }
    }
    out.push_str("}\n");
    out
}
