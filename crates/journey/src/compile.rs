//! Validation: a [`JourneyFile`] becomes a [`Journey`], or every error it has is listed with
//! file, line and state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use crate::condition::Condition;
use crate::journey::{Journey, Optimize, Reentry, State, StateId, StepKind};
use crate::model::{JourneyFile, Located, ReentryDef, StepDef};
use crate::time::{parse_duration, parse_time_of_day};

/// One thing wrong with a journey file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {}{message}", state.as_ref().map(|s| format!("state `{s}`: ")).unwrap_or_default())]
pub struct JourneyError {
    pub file: String,
    /// 1-based; 0 when the error is about the file as a whole.
    pub line: u32,
    pub state: Option<String>,
    pub message: String,
}

struct Errors<'a> {
    file: &'a str,
    list: Vec<JourneyError>,
}

impl Errors<'_> {
    fn push(&mut self, line: u32, state: Option<&str>, message: impl Into<String>) {
        self.list.push(JourneyError {
            file: self.file.to_owned(),
            line,
            state: state.map(str::to_owned),
            message: message.into(),
        });
    }
}

fn line_of(l: &Located) -> u32 {
    u32::try_from(l.referenced.line()).unwrap_or(0)
}

/// Parses and validates one journey file. `channels` are the channels the policies know.
pub fn compile(file: &str, text: &str, channels: &[String]) -> Result<Journey, Vec<JourneyError>> {
    if looks_like_policies(text) {
        return Err(vec![JourneyError {
            file: file.to_owned(),
            line: 1,
            state: None,
            message: "this is a policies file (it has `channels` and no `journey`): give it \
                      with `--policies FILE`; the journeys folder holds journeys only"
                .into(),
        }]);
    }
    let parsed: JourneyFile = serde_saphyr::from_str(text).map_err(|e| {
        let message = plain_parse_error(&e.to_string());
        let line = message
            .split("line ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        vec![JourneyError {
            file: file.to_owned(),
            line,
            state: None,
            message: first_line(&message),
        }]
    })?;
    let mut errors = Errors {
        file,
        list: Vec::new(),
    };
    let journey = build(file, parsed, channels, &mut errors);
    if errors.list.is_empty() {
        journey.ok_or_else(Vec::new)
    } else {
        Err(errors.list)
    }
}

/// A policies file has top-level `channels` and no top-level `journey`.
fn looks_like_policies(text: &str) -> bool {
    let top = |key: &str| {
        text.lines().any(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.starts_with(':'))
        })
    };
    top("channels") && !top("journey")
}

/// The parser's message in a designer's words: its advice on parser options left out.
fn plain_parse_error(message: &str) -> String {
    let message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    match message.split_once("duplicate mapping key: ") {
        Some((at, key)) => {
            let key = key.lines().next().unwrap_or_default().trim();
            format!("{at}the key `{key}` appears twice in one mapping (each key may appear once)")
        }
        None => message,
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_owned()
}

fn condition(errors: &mut Errors<'_>, state: Option<&str>, source: &Located) -> Option<Condition> {
    Condition::compile(&source.value)
        .map_err(|e| errors.push(line_of(source), state, e))
        .ok()
}

fn build(
    file: &str,
    f: JourneyFile,
    channels: &[String],
    errors: &mut Errors<'_>,
) -> Option<Journey> {
    if f.journey.trim().is_empty() {
        errors.push(1, None, "`journey` (the id) is empty");
    }
    let holdout = f.holdout.as_ref().map_or(0.0, |h| h.value);
    if let Some(h) = f
        .holdout
        .as_ref()
        .filter(|h| !(0.0..1.0).contains(&h.value))
    {
        let line = u32::try_from(h.referenced.line()).unwrap_or(0);
        errors.push(
            line,
            None,
            format!(
                "holdout {} is outside 0..1 (a share, e.g. 0.1 for 10%)",
                h.value
            ),
        );
    }
    let names: Vec<&String> = f.steps.keys().collect();
    let index: HashMap<&str, StateId> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), StateId(i)))
        .collect();
    let resolve = |errors: &mut Errors<'_>,
                   state: &str,
                   what: &str,
                   target: Option<&Located>,
                   fallback_line: u32|
     -> Option<StateId> {
        match target {
            None => {
                errors.push(fallback_line, Some(state), format!("missing `{what}`"));
                None
            }
            Some(t) => index.get(t.value.as_str()).copied().or_else(|| {
                errors.push(
                    line_of(t),
                    Some(state),
                    format!("`{what}` names unknown state `{}`", t.value),
                );
                None
            }),
        }
    };

    let trigger_if = f
        .trigger
        .condition
        .as_ref()
        .and_then(|c| condition(errors, None, c));
    let audience = f.audience.as_ref().and_then(|c| condition(errors, None, c));
    let reentry = match &f.reentry {
        ReentryDef::Never => Reentry::Never,
        ReentryDef::Always => Reentry::Always,
        ReentryDef::After(d) => parse_duration(d).map(Reentry::AfterMs).unwrap_or_else(|e| {
            errors.push(0, None, format!("reentry: {e}"));
            Reentry::Never
        }),
    };
    let goal = f
        .goal
        .as_ref()
        .and_then(|g| match parse_duration(&g.within) {
            Ok(ms) => Some((g.event.clone(), ms)),
            Err(e) => {
                errors.push(0, None, format!("goal.within: {e}"));
                None
            }
        });
    let start = index.get(f.start.value.as_str()).copied().or_else(|| {
        errors.push(
            line_of(&f.start),
            None,
            format!("`start` names unknown state `{}`", f.start.value),
        );
        None
    });

    let mut states = Vec::new();
    for (name, spanned) in &f.steps {
        let line = u32::try_from(spanned.referenced.line()).unwrap_or(0);
        if let Some(kind) = step(name, line, &spanned.value, channels, errors, &resolve) {
            states.push(State {
                name: name.clone(),
                line,
                kind,
            });
        }
    }
    check_optimize(&f, goal.as_ref(), errors);
    let migrate_from_previous: BTreeMap<String, StateId> = f
        .migrate_from_previous
        .iter()
        .filter_map(|(old, new)| match index.get(new.as_str()) {
            Some(id) => Some((old.clone(), *id)),
            None => {
                errors.push(
                    0,
                    None,
                    format!("migrate_from_previous maps `{old}` to unknown state `{new}`"),
                );
                None
            }
        })
        .collect();
    if !errors.list.is_empty() || states.len() != names.len() {
        return None;
    }
    let start = start?;
    let journey = Journey {
        id: f.journey,
        version: f.version,
        description: f.description,
        priority: f.priority,
        trigger_event: f.trigger.event,
        trigger_if,
        audience,
        reentry,
        holdout,
        exit_on: f.exit_on,
        goal,
        start,
        states,
        migrate_from_previous,
        source: file.to_owned(),
    };
    check_graph(&journey, errors);
    Some(journey)
}

type Resolve<'r> =
    dyn Fn(&mut Errors<'_>, &str, &str, Option<&Located>, u32) -> Option<StateId> + 'r;

fn step(
    name: &str,
    line: u32,
    s: &StepDef,
    channels: &[String],
    errors: &mut Errors<'_>,
    resolve: &Resolve<'_>,
) -> Option<StepKind> {
    let kinds = [
        s.send.is_some(),
        s.wait.is_some(),
        s.wait_until.is_some(),
        s.wait_for.is_some(),
        s.branch.is_some(),
        s.split.is_some(),
        s.update.is_some(),
        s.exit.is_some(),
    ];
    match kinds.iter().filter(|k| **k).count() {
        1 => {}
        0 => {
            errors.push(line, Some(name), "has no step kind: use one of send, wait, wait_until, wait_for, branch, split, update, exit");
            return None;
        }
        _ => {
            errors.push(
                line,
                Some(name),
                "has more than one step kind; split it into states",
            );
            return None;
        }
    }
    if s.optimize.is_some() && s.split.is_none() {
        errors.push(line, Some(name), "`optimize` belongs to a `split`");
    }
    let duration = |errors: &mut Errors<'_>, what: &str, d: &str| {
        parse_duration(d)
            .map_err(|e| errors.push(line, Some(name), format!("{what}: {e}")))
            .ok()
    };

    if let Some(send) = &s.send {
        let mut wanted: Vec<String> = send.channel.iter().cloned().collect();
        wanted.extend(send.channels.iter().cloned());
        if wanted.is_empty() {
            errors.push(line, Some(name), "send needs `channel` or `channels`");
        }
        for c in wanted.iter().filter(|c| !channels.contains(c)) {
            errors.push(
                line,
                Some(name),
                format!("unknown channel `{c}` (known: {})", channels.join(", ")),
            );
        }
        let vars = send
            .vars
            .iter()
            .filter_map(|(k, v)| condition(errors, Some(name), v).map(|c| (k.clone(), c)))
            .collect();
        let next = resolve(errors, name, "next", s.next.as_ref(), line);
        return Some(StepKind::Send {
            channels: wanted,
            template: send.template.clone(),
            vars,
            locale: send.locale.clone(),
            next: next?,
        });
    }
    if let Some(w) = &s.wait {
        let ms = duration(errors, "wait", w);
        let next = resolve(errors, name, "next", s.next.as_ref(), line);
        return Some(StepKind::Wait {
            ms: ms?,
            next: next?,
        });
    }
    if let Some(t) = &s.wait_until {
        let minute = parse_time_of_day(t)
            .map_err(|e| errors.push(line, Some(name), format!("wait_until: {e}")))
            .ok();
        let next = resolve(errors, name, "next", s.next.as_ref(), line);
        return Some(StepKind::WaitUntil {
            minute_of_day: minute?,
            next: next?,
        });
    }
    if let Some(w) = &s.wait_for {
        let timeout = match &w.timeout {
            None => {
                errors.push(
                    line,
                    Some(name),
                    format!(
                        "wait_for `{}` has no timeout: a customer would wait forever",
                        w.event
                    ),
                );
                None
            }
            Some(t) => duration(errors, "wait_for.timeout", t),
        };
        let on_event = resolve(errors, name, "on_event", s.on_event.as_ref(), line);
        let on_timeout = resolve(errors, name, "on_timeout", s.on_timeout.as_ref(), line);
        return Some(StepKind::WaitFor {
            event: w.event.clone(),
            timeout_ms: timeout?,
            on_event: on_event?,
            on_timeout: on_timeout?,
        });
    }
    if let Some(arms) = &s.branch {
        let mut compiled = Vec::new();
        let mut otherwise = None;
        for (i, arm) in arms.iter().enumerate() {
            match (&arm.condition, &arm.otherwise) {
                (Some(c), None) => {
                    let cond = condition(errors, Some(name), c);
                    let next = resolve(errors, name, "next", arm.next.as_ref(), line_of(c));
                    if let (Some(cond), Some(next)) = (cond, next) {
                        compiled.push((cond, next));
                    }
                }
                (None, Some(e)) if i + 1 == arms.len() => {
                    otherwise = resolve(errors, name, "else", Some(e), line)
                }
                (None, Some(e)) => errors.push(
                    line_of(e),
                    Some(name),
                    "`else` must be the last arm of a branch",
                ),
                _ => errors.push(
                    line,
                    Some(name),
                    "each branch arm is `{ if: <CEL>, next: <state> }` or `{ else: <state> }`",
                ),
            }
        }
        if otherwise.is_none() && arms.last().is_none_or(|a| a.otherwise.is_none()) {
            errors.push(line, Some(name), "branch needs a final `else` arm");
        }
        return Some(StepKind::Branch {
            arms: compiled,
            otherwise: otherwise?,
        });
    }
    if let Some(arms) = &s.split {
        if arms.is_empty() || arms.iter().all(|a| a.weight == 0) {
            errors.push(
                line,
                Some(name),
                "split needs at least one variant with a weight above 0",
            );
        }
        let mut seen = BTreeSet::new();
        let mut compiled = Vec::new();
        for a in arms {
            if !seen.insert(&a.variant) {
                errors.push(
                    line_of(&a.next),
                    Some(name),
                    format!("variant `{}` appears twice", a.variant),
                );
            }
            if let Some(next) = resolve(errors, name, "next", Some(&a.next), line) {
                compiled.push((a.variant.clone(), a.weight, next));
            }
        }
        let optimize = s.optimize.as_ref().and_then(|o| {
            if o.min_entries == 0 {
                errors.push(line, Some(name), "optimize.min_entries must be at least 1");
            }
            duration(errors, "optimize.after", &o.after).map(|after_ms| Optimize {
                after_ms,
                min_entries: o.min_entries.max(1),
            })
        });
        return Some(StepKind::Split {
            arms: compiled,
            optimize,
        });
    }
    if let Some(u) = &s.update {
        let set = u
            .set
            .iter()
            .filter_map(|(k, v)| condition(errors, Some(name), v).map(|c| (k.clone(), c)))
            .collect();
        let next = resolve(errors, name, "next", s.next.as_ref(), line);
        return Some(StepKind::Update {
            set,
            increment: u.increment.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            add_tags: u.add_tags.clone(),
            remove_tags: u.remove_tags.clone(),
            next: next?,
        });
    }
    let outcome = s.exit.clone().unwrap_or_default();
    if let Some(n) = &s.next {
        errors.push(line_of(n), Some(name), "an exit step has no `next`");
    }
    Some(StepKind::Exit { outcome })
}

/// Unreachable states, and cycles a customer could run round without ever waiting.
/// A split that picks a winner counts conversions to the journey's goal, so the journey
/// needs one; and one such split per journey (an entry has one variant).
fn check_optimize(f: &JourneyFile, goal: Option<&(String, i64)>, errors: &mut Errors<'_>) {
    let optimized: Vec<_> = (f.steps.iter())
        .filter_map(|(name, s)| {
            let o = s.value.optimize.as_ref()?;
            Some((name, u32::try_from(s.referenced.line()).unwrap_or(0), o))
        })
        .collect();
    for (i, (name, line, o)) in optimized.iter().enumerate() {
        match (goal, &o.goal) {
            (None, _) => errors.push(
                *line,
                Some(name.as_str()),
                "`optimize` needs the journey's `goal`: conversions are counted against it",
            ),
            (Some((event, _)), Some(wanted)) if wanted != event => errors.push(
                *line,
                Some(name.as_str()),
                format!("optimize.goal `{wanted}` differs from the journey's goal `{event}`"),
            ),
            _ => {}
        }
        if i > 0 {
            errors.push(
                *line,
                Some(name.as_str()),
                "only one split per journey may `optimize` (an entry has one variant)",
            );
        }
    }
}

fn check_graph(j: &Journey, errors: &mut Errors<'_>) {
    let mut reached = vec![false; j.states.len()];
    let mut stack = vec![j.start];
    while let Some(StateId(i)) = stack.pop() {
        if reached.get(i).copied().unwrap_or(true) {
            continue;
        }
        if let Some(r) = reached.get_mut(i) {
            *r = true;
        }
        if let Some(s) = j.states.get(i) {
            stack.extend(s.kind.successors().into_iter().map(|(n, _)| n));
        }
    }
    for (s, r) in j.states.iter().zip(&reached) {
        if !r {
            errors.push(
                s.line,
                Some(&s.name),
                format!(
                    "unreachable from start state `{}`",
                    j.states.get(j.start.0).map_or("", |s| s.name.as_str())
                ),
            );
        }
    }
    // Depth-first search over the non-waiting states: a back edge is a cycle with no wait.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(j: &Journey, i: usize, marks: &mut [Mark], found: &mut Option<usize>) {
        if let Some(m) = marks.get_mut(i) {
            *m = Mark::Active;
        }
        for (StateId(n), _) in j
            .states
            .get(i)
            .map(|s| s.kind.successors())
            .unwrap_or_default()
        {
            if j.states.get(n).is_some_and(|s| s.kind.waits()) {
                continue;
            }
            match marks.get(n) {
                Some(Mark::Active) => *found = found.or(Some(n)),
                Some(Mark::New) => visit(j, n, marks, found),
                _ => {}
            }
        }
        if let Some(m) = marks.get_mut(i) {
            *m = Mark::Done;
        }
    }
    let mut marks = vec![Mark::New; j.states.len()];
    let mut found = None;
    for i in 0..j.states.len() {
        if marks.get(i) == Some(&Mark::New) && !j.states.get(i).is_some_and(|s| s.kind.waits()) {
            visit(j, i, &mut marks, &mut found);
        }
    }
    if let Some(s) = found.and_then(|i| j.states.get(i)) {
        errors.push(
            s.line,
            Some(&s.name),
            "is on a cycle with no wait in it: a customer would loop without end",
        );
    }
}

/// Every journey of a folder (`*.yaml`, `*.yml`), or every error of every file; duplicate
/// (id, version) pairs are errors too.
pub fn load_dir(dir: &Path, channels: &[String]) -> Result<Vec<Journey>, Vec<JourneyError>> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect(),
        Err(e) => {
            return Err(vec![JourneyError {
                file: dir.display().to_string(),
                line: 0,
                state: None,
                message: format!("cannot read folder: {e}"),
            }]);
        }
    };
    files.sort();
    let mut journeys = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        let file = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => match compile(&file, &text, channels) {
                Ok(j) => journeys.push(j),
                Err(e) => errors.extend(e),
            },
            Err(e) => errors.push(JourneyError {
                file,
                line: 0,
                state: None,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    let mut seen: HashMap<(String, u32), String> = HashMap::new();
    for j in &journeys {
        if let Some(first) = seen.insert((j.id.clone(), j.version), j.source.clone()) {
            errors.push(JourneyError {
                file: j.source.clone(),
                line: 1,
                state: None,
                message: format!(
                    "duplicate journey id `{}` version {} (also in {first})",
                    j.id, j.version
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(journeys)
    } else {
        Err(errors)
    }
}
