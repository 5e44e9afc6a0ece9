//! Reading what the test SMTP server (aiosmtpd with a Maildir, started by `scripts/test`)
//! received.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The SMTP port and Maildir from `REGSTACK_TEST_SMTP_PORT` and `REGSTACK_TEST_MAILDIR`.
pub fn sink() -> (u16, PathBuf) {
    let port = std::env::var("REGSTACK_TEST_SMTP_PORT")
        .expect("REGSTACK_TEST_SMTP_PORT must name the test SMTP server (scripts/test starts one)");
    let dir = std::env::var("REGSTACK_TEST_MAILDIR").expect("REGSTACK_TEST_MAILDIR must name its Maildir");
    (port.parse().expect("a port number"), PathBuf::from(dir))
}

/// Waits up to 15 s for a message to `to` in the Maildir and returns its raw text.
pub async fn wait_for_mail(maildir: &Path, to: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(entries) = std::fs::read_dir(maildir.join("new")) {
            for e in entries.flatten() {
                let raw = std::fs::read_to_string(e.path()).unwrap_or_default();
                if raw.lines().any(|l| l.eq_ignore_ascii_case(&format!("To: {to}"))) {
                    return raw;
                }
            }
        }
        assert!(Instant::now() < deadline, "no mail to {to} arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Undoes quoted-printable soft line breaks and `=XX` escapes.
pub fn unquote(qp: &str) -> String {
    let joined = qp.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
