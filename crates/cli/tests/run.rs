//! `switchboard run --generate 500`: the embedded default produces commands, serves metrics,
//! and exits cleanly on SIGINT.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use switchboard_test_support::free_port;

fn metrics(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the admin port");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn run_generate_produces_commands_and_exits_cleanly_on_sigint() {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "--admin-listen",
            &format!("127.0.0.1:{port}"),
            "run",
            "--generate",
            "500",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env_remove("SWITCHBOARD_CONFIG")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start switchboard run");
    std::thread::sleep(Duration::from_secs(20));
    let text = metrics(port);
    let consumed = sample(&text, "switchboard_events_consumed_total");
    let commands = sample(&text, "switchboard_commands_total");
    assert!(
        consumed > 5_000.0,
        "about 10 000 events in 20 s, consumed {consumed}"
    );
    assert!(commands > 0.0, "commands produced: {text}");
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "switchboard did not stop within 20 s of SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "exit status {status}: {stderr}");
    assert!(
        stderr.contains("embedded mode: Kafka-protocol mock cluster on 127.0.0.1:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("journeys entered"),
        "live progress is printed: {stderr}"
    );
    assert!(stderr.contains("switchboard: stopped"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// True when `text` holds `prefix` followed by at least `digits` ASCII digits.
fn holds_code(text: &str, prefix: char, digits: usize) -> bool {
    text.char_indices().any(|(i, c)| {
        c == prefix
            && text[i + 1..]
                .chars()
                .take(digits)
                .filter(char::is_ascii_digit)
                .count()
                == digits
    })
}

#[test]
fn json_logs_at_info_never_hold_a_customer_identifier() {
    let port = free_port();
    // Malformed records, identity conflicts and merges all log: the paths most tempted to
    // print an identifier.
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "--admin-listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
            "--log-level",
            "info",
            "run",
            "--generate",
            "400",
            "--customers",
            "300",
            "--malformed-every",
            "50",
            "--duration",
            "10",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env_remove("SWITCHBOARD_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run switchboard");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs: Vec<String> = [&out.stdout, &out.stderr]
        .iter()
        .flat_map(|b| {
            String::from_utf8_lossy(b)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|l| l.starts_with('{'))
        .collect();
    let mut warnings = 0;
    for line in &logs {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            entry["timestamp"].is_string() && entry["level"].is_string(),
            "{line}"
        );
        if entry["level"] == "WARN" {
            warnings += 1;
        }
        for value in [
            "@example.com",
            "+447911",
            "shopper",
            "cookie-",
            "dev-",
            "tok-",
        ] {
            assert!(
                !line.contains(value),
                "an identifier ({value}) is logged: {line}"
            );
        }
        assert!(
            !holds_code(line, 'C', 7) && !holds_code(line, 'L', 9),
            "a customer id or loyalty card is logged: {line}"
        );
    }
    assert!(logs.len() >= 5, "info logs are written: {logs:?}");
    assert!(
        warnings > 0,
        "identity conflicts log warnings, so the check saw them: {logs:?}"
    );
}
