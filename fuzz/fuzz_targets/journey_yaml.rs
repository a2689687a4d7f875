//! Journey files: any text compiles or is refused with errors that name the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let channels = ["email", "sms", "push", "web"].map(String::from);
    if let Err(errors) = switchboard_journey::compile("fuzz.yaml", text, &channels) {
        assert!(!errors.is_empty());
        for e in &errors {
            assert!(e.to_string().starts_with("fuzz.yaml:"), "{e}");
            assert!(e.line as usize <= yaml_lines(text) + 1, "{e}");
        }
    }
});

/// Lines as YAML counts them: LF, CRLF and a lone CR each end one.
fn yaml_lines(text: &str) -> usize {
    text.replace("\r\n", "\n")
        .chars()
        .filter(|c| matches!(c, '\n' | '\r'))
        .count()
        + 1
}
