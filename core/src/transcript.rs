//! What the console backends print, read back: the link and SMS kinds, and scraping them from
//! a server's output the way `regstack validate` does (docs/wire.md, "Console output"). The
//! conformance suite reads the server's output with the same functions.

/// The kinds of link the console mailer prints (docs/wire.md, "Console output").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// A registration verification link (`/verify`).
    Verify,
    /// A password-reset link (`/reset-password`).
    ResetPassword,
    /// An email-change confirmation link (`/confirm-email-change`).
    ConfirmEmailChange,
}

impl LinkKind {
    /// The path fragment a link of this kind contains.
    pub fn path(self) -> &'static str {
        match self {
            LinkKind::Verify => "/verify",
            LinkKind::ResetPassword => "/reset-password",
            LinkKind::ConfirmEmailChange => "/confirm-email-change",
        }
    }
}

/// The kinds of SMS the null SMS backend prints (docs/wire.md, "SMS codes", "Console output").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsKind {
    /// The phone-setup code sent by `POST /phone/start` (`… verification code: 123456. …`).
    PhoneSetup,
    /// The sign-in code sent by the MFA branch of `POST /login` (`… sign-in code: 123456. …`).
    LoginMfa,
}

impl SmsKind {
    /// The phrase the validate scraper looks for in front of the code.
    pub fn phrase(self) -> &'static str {
        match self {
            SmsKind::PhoneSetup => "verification code:",
            SmsKind::LoginMfa => "sign-in code:",
        }
    }
}

fn is_url_char(c: char) -> bool {
    !(c.is_whitespace() || c == '>' || c == '\'' || c == '"')
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._-+/=%".contains(c)
}

/// Every non-overlapping match of `https?://[^\s>'"]+?\?token=[A-Za-z0-9._\-+/=%]+` in `line`,
/// left to right, with the same (lazy) semantics as the Python `validate` scraper.
pub fn find_links(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        if let Some(end) = match_link_at(line, i) {
            out.push(line[i..end].to_string());
            i = end;
        } else {
            i += line[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

fn match_link_at(line: &str, start: usize) -> Option<usize> {
    let rest = &line[start..];
    let after_scheme = if rest.starts_with("https://") {
        start + 8
    } else if rest.starts_with("http://") {
        start + 7
    } else {
        return None;
    };
    // `[^\s>'"]+?` then `\?token=` then `[token chars]+`.
    let mut pos = after_scheme;
    let mut consumed_one = false;
    loop {
        let tail = &line[pos..];
        if consumed_one && tail.starts_with("?token=") {
            let token_start = pos + "?token=".len();
            let token_len: usize = line[token_start..]
                .chars()
                .take_while(|c| is_token_char(*c))
                .map(char::len_utf8)
                .sum();
            if token_len > 0 {
                return Some(token_start + token_len);
            }
        }
        let c = tail.chars().next()?;
        if !is_url_char(c) {
            return None;
        }
        pos += c.len_utf8();
        consumed_one = true;
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The (percent-decoded) `token` query parameter of a scraped link.
pub fn token_of(url: &str) -> Option<String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let query = query.split('#').next().unwrap_or("");
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token=").map(percent_decode))
}

/// The code of the first match of `<phrase>\s*(\d{4,10})` in `line` (the regexes of docs/wire.md, "Console output"
/// `verification code:\s*(\d{4,10})` and `sign-in code:\s*(\d{4,10})`, hand-written with the
/// same greedy semantics: up to ten digits are taken, and fewer than four do not match).
pub fn find_sms_code(line: &str, kind: SmsKind) -> Option<String> {
    let phrase = kind.phrase();
    let mut from = 0;
    while let Some(at) = line[from..].find(phrase) {
        let after = from + at + phrase.len();
        let rest = line[after..].trim_start_matches(char::is_whitespace);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).take(10).collect();
        if digits.len() >= 4 {
            return Some(digits);
        }
        from = after;
    }
    None
}

/// The recipient of a null-SMS line: the text after `To: ` up to the next ` |` (or the end).
pub fn sms_recipient(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("To: ")?;
    let to = rest.split(" |").next().unwrap_or(rest).trim();
    Some(to.to_string())
}

/// The marker every line of the null SMS backend carries (docs/wire.md, "Console output").
pub const NULL_SMS_MARKER: &str = "[regstack/null-sms]";

#[cfg(test)]
mod tests {
    use super::*;

    #[regstack_macros::dual_test]
    fn scrapes_links_like_validate() {
        let l = "  http://127.0.0.1:8765/account/verify?token=i1NfsqzlHp6J-Ho5g7jdYGasL-MQZk-6ekSXgsyosrs";
        assert_eq!(find_links(l), vec![l.trim().to_string()]);
        assert_eq!(
            token_of(l.trim()).as_deref(),
            Some("i1NfsqzlHp6J-Ho5g7jdYGasL-MQZk-6ekSXgsyosrs")
        );
        let l = "<a href=\"https://x.example/reset-password?token=a.b.c\">x</a> http://y/?token=";
        assert_eq!(
            find_links(l),
            vec!["https://x.example/reset-password?token=a.b.c".to_string()]
        );
        assert!(find_links("no links http:// here ?token=abc").is_empty());
        assert_eq!(
            find_links("http://h/p?x=1?token=abc"),
            vec!["http://h/p?x=1?token=abc".to_string()]
        );
        assert_eq!(
            token_of("http://h/confirm-email-change?token=a%2Bb&x=1").as_deref(),
            Some("a+b")
        );
    }

    #[regstack_macros::dual_test]
    fn scrapes_sms_codes_like_validate() {
        let setup = "2026-01-01T00:00:00.000000Z  INFO regstack.sms.null: [regstack/null-sms] To: +15555550123 | \
                     From: (unset) | Body: RegStack verification code: 910602. Expires in 5 minutes.";
        let login = "2026-01-01T00:00:00.000000Z  INFO regstack.sms.null: [regstack/null-sms] To: +15555550123 | \
                     From: (unset) | Body: RegStack sign-in code: 870037. Expires in 5 minutes. If you didn't try \
                     to sign in, ignore this message.";
        assert_eq!(find_sms_code(setup, SmsKind::PhoneSetup).as_deref(), Some("910602"));
        assert_eq!(find_sms_code(setup, SmsKind::LoginMfa), None);
        assert_eq!(find_sms_code(login, SmsKind::LoginMfa).as_deref(), Some("870037"));
        assert_eq!(find_sms_code(login, SmsKind::PhoneSetup), None);
        assert_eq!(sms_recipient(setup).as_deref(), Some("+15555550123"));
        assert_eq!(sms_recipient(login).as_deref(), Some("+15555550123"));
        // `\s*` allows no or several spaces; `\d{4,10}` is greedy and needs four digits.
        assert_eq!(
            find_sms_code("sign-in code:0123", SmsKind::LoginMfa).as_deref(),
            Some("0123")
        );
        assert_eq!(
            find_sms_code("verification code: \t 123456789012", SmsKind::PhoneSetup).as_deref(),
            Some("1234567890")
        );
        assert_eq!(
            find_sms_code("sign-in code: 123. sign-in code: 4567", SmsKind::LoginMfa).as_deref(),
            Some("4567")
        );
        assert_eq!(find_sms_code("sign-in code: 123", SmsKind::LoginMfa), None);
        let suppressed =
            "INFO regstack.sms.null: [regstack/null-sms] To: +15555550123 | From: (unset) | (body suppressed)";
        assert_eq!(find_sms_code(suppressed, SmsKind::PhoneSetup), None);
        assert_eq!(find_sms_code(suppressed, SmsKind::LoginMfa), None);
        assert_eq!(sms_recipient(suppressed).as_deref(), Some("+15555550123"));
    }
}
