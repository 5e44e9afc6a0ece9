//! Which origin paths need a session, matched the way a lenient origin might read them.

/// Whether `path` matches one of the `origin_protected_paths` patterns: `/app` matches only
/// itself; `/app/*` matches `/app` and everything below it (not `/apple`).
///
/// Origins do not all read a path the way it was sent: many route case-insensitively, merge
/// `//`, ignore a trailing `/` or `;params`, or decode `%61` and `%2F` before routing. So a
/// path is protected when either its raw form or its [`canonical_path`] form matches the
/// pattern's canonical form: every spelling an origin might take for a protected path is
/// refused, at the price of also guarding a few that the origin would treat as different.
pub fn is_protected(patterns: &[String], path: &str) -> bool {
    let decoded = fully_decoded(path);
    let canonical = resolved(&decoded);
    // Some origins stop reading a path at a NUL byte.
    let truncated = decoded.split_once('\0').map(|(before, _)| resolved(before));
    patterns.iter().any(|p| {
        let matches = |pattern: &str, path: &str| match pattern.strip_suffix("/*") {
            Some(prefix) => {
                path == prefix
                    || prefix.is_empty()
                    || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
            }
            None => path == pattern,
        };
        let canonical_pattern = match p.strip_suffix("/*") {
            Some(prefix) => format!("{}/*", canonical_path(prefix).trim_end_matches('/')),
            None => canonical_path(p),
        };
        matches(p, path)
            || matches(&canonical_pattern, &canonical)
            || truncated.as_deref().is_some_and(|t| matches(&canonical_pattern, t))
    })
}

/// `path` as a lenient origin might route it: percent-decoded (repeatedly, for double
/// encoding), `\` read as `/`, `;params` and trailing dots and spaces (which Windows servers
/// ignore) dropped from each segment, empty and `.` segments dropped, `..` applied, and
/// lower-cased; always `/`-rooted with no trailing `/`.
pub fn canonical_path(path: &str) -> String {
    resolved(&fully_decoded(path))
}

fn fully_decoded(path: &str) -> String {
    let mut decoded = path.to_string();
    for _ in 0..3 {
        let next = percent_decode(&decoded);
        if next == decoded {
            break;
        }
        decoded = next;
    }
    decoded
}

fn resolved(decoded: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let slashed = decoded.replace('\\', "/");
    for segment in slashed.split('/') {
        let segment = segment.split(';').next().unwrap_or_default();
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => match s.trim_end_matches(['.', ' ']) {
                "" => {}
                trimmed => segments.push(trimmed),
            },
        }
    }
    format!("/{}", segments.join("/")).to_lowercase()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(crate::hex::decode);
        match escaped {
            Some(byte) => {
                out.extend(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_path_patterns() {
        let p = vec!["/app/*".to_string(), "/admin".to_string()];
        for yes in ["/app", "/app/", "/app/x/y", "/admin"] {
            assert!(is_protected(&p, yes), "{yes}");
        }
        for no in ["/apple", "/admin/x", "/", "/public"] {
            assert!(!is_protected(&p, no), "{no}");
        }
        assert!(is_protected(&["/*".to_string()], "/anything"));
    }

    #[test]
    fn other_spellings_of_a_protected_path_are_protected_too() {
        let p = vec!["/app/*".to_string(), "/admin".to_string(), "/Reports/*".to_string()];
        for yes in [
            "/App/x",
            "/ADMIN",
            "/admin/",
            "//app/x",
            "/./app/x",
            "/public/../app/x",
            "/app;jsessionid=1/x",
            "/admin;x",
            "/%61pp/x",
            "/%2561pp/x",
            "/%2Fapp/x",
            "/public%2F..%2Fapp/x",
            "\\app\\x",
            "/reports",
            "/REPORTS/q",
            "/admin%2e",
            "/admin%20",
            "/admin.",
            "/app./x",
            "/admin%00.html",
            "/app%00/../../public",
        ] {
            assert!(is_protected(&p, yes), "{yes}");
        }
        for no in [
            "/apple",
            "/admin/x",
            "/administrator",
            "/",
            "/public",
            "/%zzapp",
            "/app%",
        ] {
            assert!(!is_protected(&p, no), "{no}");
        }
        assert_eq!(canonical_path("/A//b/./c/../D;x/"), "/a/b/d");
        assert_eq!(canonical_path("/caf%C3%A9"), "/café");
        assert_eq!(canonical_path("/%ff"), "/\u{fffd}");
        assert_eq!(canonical_path(""), "/");
    }
}
