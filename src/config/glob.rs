//! The two glob dialects of pipeline configs: group `jobs:` entries use gobwas/glob (`*`, `?`,
//! `[...]`, `[!...]`, `{a,b}`), while `passed:` and cycle detection use Go's `path.Match`.

use super::ConfigError;

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    Any,
    Single,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Alt(Vec<Vec<Tok>>),
}

/// A compiled group glob.
#[derive(Debug, Clone)]
pub struct Glob(Vec<Tok>);

impl Glob {
    pub fn compile(pattern: &str) -> Result<Glob, ConfigError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut pos = 0;
        let toks = parse_seq(&chars, &mut pos, false)
            .map_err(|m| ConfigError::new(format!("invalid glob expression '{pattern}': {m}")))?;
        if pos != chars.len() {
            return Err(ConfigError::new(format!(
                "invalid glob expression '{pattern}': unexpected '}}'"
            )));
        }
        Ok(Glob(toks))
    }

    pub fn matches(&self, name: &str) -> bool {
        let chars: Vec<char> = name.chars().collect();
        match_seq(&self.0, &chars, &mut 0)
    }
}

fn parse_seq(c: &[char], pos: &mut usize, in_alt: bool) -> Result<Vec<Tok>, String> {
    let mut out = vec![];
    while *pos < c.len() {
        let ch = c[*pos];
        match ch {
            '}' | ',' if in_alt => return Ok(out),
            '*' => {
                *pos += 1;
                while *pos < c.len() && c[*pos] == '*' {
                    *pos += 1;
                }
                out.push(Tok::Any);
            }
            '?' => {
                *pos += 1;
                out.push(Tok::Single);
            }
            '\\' => {
                *pos += 1;
                let e = *c.get(*pos).ok_or("unexpected end of input after '\\'")?;
                *pos += 1;
                out.push(Tok::Lit(e));
            }
            '[' => {
                *pos += 1;
                let negated = c.get(*pos) == Some(&'!');
                if negated {
                    *pos += 1;
                }
                let mut ranges = vec![];
                loop {
                    let lo = *c.get(*pos).ok_or("unclosed '['")?;
                    *pos += 1;
                    if lo == ']' {
                        break;
                    }
                    if c.get(*pos) == Some(&'-') && c.get(*pos + 1).is_some_and(|h| *h != ']') {
                        let hi = c[*pos + 1];
                        *pos += 2;
                        if hi < lo {
                            return Err("invalid range".into());
                        }
                        ranges.push((lo, hi));
                    } else {
                        ranges.push((lo, lo));
                    }
                }
                if ranges.is_empty() {
                    return Err("empty character class".into());
                }
                out.push(Tok::Class { negated, ranges });
            }
            '{' => {
                *pos += 1;
                let mut alts = vec![];
                loop {
                    alts.push(parse_seq(c, pos, true)?);
                    match c.get(*pos) {
                        Some(',') => *pos += 1,
                        Some('}') => {
                            *pos += 1;
                            break;
                        }
                        _ => return Err("unclosed '{'".into()),
                    }
                }
                out.push(Tok::Alt(alts));
            }
            '}' if !in_alt => return Ok(out),
            other => {
                *pos += 1;
                out.push(Tok::Lit(other));
            }
        }
    }
    Ok(out)
}

fn match_seq(toks: &[Tok], s: &[char], _depth: &mut usize) -> bool {
    match toks.split_first() {
        None => s.is_empty(),
        Some((tok, rest)) => match tok {
            Tok::Lit(ch) => s.first() == Some(ch) && match_seq(rest, &s[1..], _depth),
            Tok::Single => !s.is_empty() && match_seq(rest, &s[1..], _depth),
            Tok::Class { negated, ranges } => match s.first() {
                Some(ch) => {
                    let inside = ranges.iter().any(|(lo, hi)| lo <= ch && ch <= hi);
                    inside != *negated && match_seq(rest, &s[1..], _depth)
                }
                None => false,
            },
            Tok::Any => (0..=s.len()).any(|i| match_seq(rest, &s[i..], _depth)),
            Tok::Alt(alts) => alts.iter().any(|alt| {
                let mut joined = alt.clone();
                joined.extend_from_slice(rest);
                match_seq(&joined, s, _depth)
            }),
        },
    }
}

/// Go's `path.Match`; a malformed pattern matches nothing (upstream ignores the error).
pub fn path_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    path_match_at(&p, &s).unwrap_or(false)
}

fn path_match_at(p: &[char], s: &[char]) -> Option<bool> {
    match p.first() {
        None => Some(s.is_empty()),
        Some('*') => {
            let rest = &p[1..];
            for i in 0..=s.len() {
                if i > 0 && s[i - 1] == '/' {
                    break;
                }
                if path_match_at(rest, &s[i..])? {
                    return Some(true);
                }
            }
            Some(false)
        }
        Some('?') => match s.first() {
            Some(c) if *c != '/' => path_match_at(&p[1..], &s[1..]),
            _ => Some(false),
        },
        Some('[') => {
            let mut i = 1;
            let negated = p.get(i) == Some(&'^');
            if negated {
                i += 1;
            }
            let ch = s.first().copied();
            let mut matched = false;
            let mut first = true;
            loop {
                let mut lo = *p.get(i)?;
                if lo == ']' && !first {
                    i += 1;
                    break;
                }
                first = false;
                if lo == '\\' {
                    i += 1;
                    lo = *p.get(i)?;
                }
                i += 1;
                let mut hi = lo;
                if p.get(i) == Some(&'-') {
                    i += 1;
                    hi = *p.get(i)?;
                    if hi == '\\' {
                        i += 1;
                        hi = *p.get(i)?;
                    }
                    if hi == ']' {
                        return None;
                    }
                    i += 1;
                }
                if let Some(c) = ch {
                    if lo <= c && c <= hi {
                        matched = true;
                    }
                }
            }
            match ch {
                Some(c) if c != '/' && matched != negated => path_match_at(&p[i..], &s[1..]),
                _ => Some(false),
            }
        }
        Some('\\') => {
            let e = p.get(1)?;
            if s.first() == Some(e) {
                path_match_at(&p[2..], &s[1..])
            } else {
                Some(false)
            }
        }
        Some(c) => {
            if s.first() == Some(c) {
                path_match_at(&p[1..], &s[1..])
            } else {
                Some(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_globs_match_like_gobwas() {
        let g = |p: &str, n: &str| Glob::compile(p).unwrap().matches(n);
        assert!(g("*", "anything"));
        assert!(g("build-*", "build-linux"));
        assert!(!g("build-*", "test-linux"));
        assert!(g("{unit,integration}-tests", "unit-tests"));
        assert!(g("job-?", "job-1"));
        assert!(g("job-[a-c]", "job-b"));
        assert!(!g("job-[!a-c]", "job-b"));
        assert!(g("a/*", "a/b/c"));
        assert!(Glob::compile("{a,b").is_err());
        assert!(Glob::compile("[ab").is_err());
    }

    #[test]
    fn passed_globs_match_like_path_match() {
        assert!(path_match("build-*", "build-1"));
        assert!(!path_match("a*", "a/b"));
        assert!(path_match("j[^x]b", "jab"));
        assert!(!path_match("[", "["));
        assert!(path_match("exact", "exact"));
    }
}
