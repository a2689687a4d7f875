//! CPU time of processes and threads, from `/proc/<pid>/stat` (user + system), in seconds.

/// Clock ticks per second of `/proc` times (`getconf CLK_TCK`; 100 on Linux).
const TICKS: f64 = 100.0;

/// CPU seconds used so far by `pid` ("self" for this process); 0 when unreadable.
pub fn seconds(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(0.0, |stat| from_stat(&stat))
}

/// User + system seconds in a `stat` line of `/proc`.
fn from_stat(stat: &str) -> f64 {
    // The command name may hold spaces: fields count from after its closing parenthesis.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    (field(11) + field(12)) / TICKS
}

/// CPU seconds used so far by this process's threads whose name starts with `prefix` (those
/// alive now: a thread's time leaves `/proc/self/task` with it).
pub fn threads_named(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter(|stat| {
            stat.split_once('(')
                .is_some_and(|(_, name)| name.starts_with(prefix))
        })
        .map(|stat| from_stat(&stat))
        .sum()
}
