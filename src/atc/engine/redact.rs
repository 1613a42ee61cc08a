//! Redaction of secret values from build events (auth.md §11.3): what a build fetched from
//! a var source, or loaded with `load_var` without `reveal`, never reaches a stored event.
//!
//! Each value is tracked line by line (a multi-line secret echoed unquoted comes out with
//! its lines joined by spaces), each line trimmed; lines of one character are never
//! redacted. The standard base64 of the value and of each line, and their URL-encoded
//! (percent-encoded) forms, are tracked too: `base64 <<< ...` and query strings are common
//! ways a secret leaks. A base64 of the secret *inside* a longer encoded string cannot be
//! found this way; that is a known limit, as upstream's.

use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

/// What replaces a secret.
pub const REDACTED: &str = "((redacted))";

/// Unreserved characters (RFC 3986) stay as they are, as Go's `url.QueryEscape` does.
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The strings to replace, longest first.
#[derive(Debug, Clone)]
pub struct Secrets {
    enabled: bool,
    needles: Vec<String>,
}

impl Default for Secrets {
    fn default() -> Self {
        Secrets {
            enabled: true,
            needles: Vec::new(),
        }
    }
}

impl Secrets {
    /// Tracks nothing and redacts nothing (`--disable-redact-secrets`).
    pub fn disabled() -> Secrets {
        Secrets {
            enabled: false,
            needles: Vec::new(),
        }
    }

    /// Tracks `value`: its lines, and the base64 and URL-encoded forms of both.
    pub fn add(&mut self, value: &str) {
        if !self.enabled {
            return;
        }
        let mut forms: Vec<String> = Vec::new();
        let lines: Vec<&str> = value
            .lines()
            .map(str::trim)
            .filter(|l| l.chars().count() > 1)
            .collect();
        if lines.is_empty() {
            return;
        }
        let mut originals: Vec<&str> = lines.clone();
        if value.trim() != lines[0] || lines.len() > 1 {
            originals.push(value);
        }
        for original in originals {
            let encoded = base64::engine::general_purpose::STANDARD.encode(original);
            for form in [original.to_string(), encoded] {
                let url = utf8_percent_encode(&form, URL_ENCODE).to_string();
                let query = url.replace("%20", "+");
                forms.extend([form, url, query]);
            }
        }
        for form in forms {
            // The whole value's raw form is covered by its lines; a needle with a newline
            // would only match where the lines already do.
            if form.contains('\n') || form.chars().count() <= 1 {
                continue;
            }
            if !self.needles.contains(&form) {
                self.needles.push(form);
            }
        }
        self.needles
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// `text` with every occurrence of a tracked string replaced by [`REDACTED`].
    /// Occurrences that overlap (two secrets sharing characters, or one secret repeating
    /// into itself) are replaced as one span, so no part of either shows.
    pub fn redact(&self, text: &str) -> String {
        if !self.enabled || self.needles.is_empty() {
            return text.to_string();
        }
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for needle in &self.needles {
            let mut from = 0;
            while let Some(at) = text[from..].find(needle.as_str()) {
                let start = from + at;
                spans.push((start, start + needle.len()));
                // Continue one character on, so overlapping occurrences are found too.
                from = start + text[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        if spans.is_empty() {
            return text.to_string();
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut written = 0;
        let mut i = 0;
        while i < spans.len() {
            let (start, mut end) = spans[i];
            i += 1;
            while i < spans.len() && spans[i].0 < end {
                end = end.max(spans[i].1);
                i += 1;
            }
            out.push_str(&text[written..start]);
            out.push_str(REDACTED);
            written = end;
        }
        out.push_str(&text[written..]);
        out
    }

    /// Redacts every string inside `value` (keys are left alone).
    pub fn redact_value(&self, value: &mut Value) {
        if !self.enabled || self.needles.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                let r = self.redact(s);
                if r != *s {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_value(v)),
            Value::Object(m) => m.values_mut().for_each(|v| self.redact_value(v)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secrets(values: &[&str]) -> Secrets {
        let mut s = Secrets::default();
        for v in values {
            s.add(v);
        }
        s
    }

    #[test]
    fn a_secret_is_replaced_wherever_it_appears() {
        let s = secrets(&["hunter2"]);
        assert_eq!(
            s.redact("pw=hunter2; again hunter2\n"),
            "pw=((redacted)); again ((redacted))\n"
        );
        assert_eq!(s.redact("nothing here"), "nothing here");
    }

    #[test]
    fn each_line_of_a_multi_line_secret_is_replaced_trimmed() {
        let s = secrets(&["  first line \nsecond\n\nx\n"]);
        assert_eq!(
            s.redact("+ echo first line second x\n"),
            "+ echo ((redacted)) ((redacted)) x\n",
            "one-character lines are not redacted"
        );
    }

    #[test]
    fn one_character_and_empty_values_are_not_tracked() {
        let s = secrets(&["a", "", " \n "]);
        assert_eq!(s.redact("a b c"), "a b c");
    }

    #[test]
    fn base64_forms_are_replaced() {
        let s = secrets(&["hunter2", "multi\nline"]);
        // base64("hunter2") and base64("multi\nline"), and each line's.
        assert_eq!(s.redact("aHVudGVyMg=="), REDACTED);
        assert_eq!(
            s.redact("token bXVsdGkKbGluZQ== end"),
            "token ((redacted)) end"
        );
        assert_eq!(s.redact("bXVsdGk="), REDACTED);
    }

    #[test]
    fn url_encoded_forms_are_replaced() {
        let s = secrets(&["p@ss w/rd&x"]);
        assert_eq!(
            s.redact("GET /?password=p%40ss%20w%2Frd%26x HTTP/1.1"),
            "GET /?password=((redacted)) HTTP/1.1"
        );
        assert_eq!(
            s.redact("password=p%40ss+w%2Frd%26x"),
            "password=((redacted))"
        );
        // base64 with `+`, `/` and `=` percent-encoded.
        let s = secrets(&["\u{ff}\u{fe}>?"]);
        let b64 = base64::engine::general_purpose::STANDARD.encode("\u{ff}\u{fe}>?");
        assert!(b64.contains('+') || b64.contains('/') || b64.contains('='));
        let url = utf8_percent_encode(&b64, URL_ENCODE).to_string();
        assert_eq!(s.redact(&format!("q={url}")), "q=((redacted))");
    }

    #[test]
    fn the_longest_secret_is_replaced_whole() {
        let s = secrets(&["abc", "abcdef"]);
        assert_eq!(s.redact("xabcdefx abc"), "x((redacted))x ((redacted))");
    }

    #[test]
    fn overlapping_secrets_are_replaced_as_one_span() {
        let s = secrets(&["abcd", "cdef"]);
        assert_eq!(s.redact("abcdef"), REDACTED, "no tail of either shows");
        let s = secrets(&["aa"]);
        assert_eq!(s.redact("aaa b"), "((redacted)) b");
        // A secret that is part of the replacement text does not mangle it.
        let s = secrets(&["redacted", "((re"]);
        assert_eq!(s.redact("redacted"), REDACTED);
    }

    #[test]
    fn non_ascii_text_around_secrets_is_kept() {
        let s = secrets(&["é秘密"]);
        assert_eq!(s.redact("ééé秘密ü"), "éé((redacted))ü");
    }

    #[test]
    fn strings_inside_values_are_redacted() {
        let s = secrets(&["hunter2"]);
        let mut v = json!({"run": {"path": "sh", "args": ["-c", "echo hunter2"], "dir": "hunter2"}, "n": 1});
        s.redact_value(&mut v);
        assert_eq!(
            v,
            json!({"run": {"path": "sh", "args": ["-c", "echo ((redacted))"], "dir": "((redacted))"}, "n": 1})
        );
    }

    #[test]
    fn disabled_redaction_keeps_text() {
        let mut s = Secrets::disabled();
        s.add("hunter2");
        assert_eq!(s.redact("hunter2"), "hunter2");
    }
}
