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
        let mut alternatives = vec![];
        expand(&self.0, vec![], &mut alternatives);
        alternatives.iter().any(|p| match_simple(p, &chars))
    }
}

/// A glob without alternatives.
#[derive(Debug, Clone)]
enum Simple {
    Lit(char),
    Any,
    Single,
    Class(bool, Vec<(char, char)>),
}

/// Most alternatives a `{a,b}` glob may expand to; beyond that only the first ones count.
const MAX_ALTERNATIVES: usize = 256;

/// Expands `{a,b}` alternatives into plain patterns (bounded).
fn expand(toks: &[Tok], prefix: Vec<Simple>, out: &mut Vec<Vec<Simple>>) {
    if out.len() >= MAX_ALTERNATIVES {
        return;
    }
    let mut prefix = prefix;
    for (i, tok) in toks.iter().enumerate() {
        match tok {
            Tok::Lit(c) => prefix.push(Simple::Lit(*c)),
            Tok::Any => prefix.push(Simple::Any),
            Tok::Single => prefix.push(Simple::Single),
            Tok::Class { negated, ranges } => prefix.push(Simple::Class(*negated, ranges.clone())),
            Tok::Alt(alts) => {
                for alt in alts {
                    let mut joined = alt.clone();
                    joined.extend_from_slice(&toks[i + 1..]);
                    expand(&joined, prefix.clone(), out);
                }
                return;
            }
        }
    }
    out.push(prefix);
}

/// Wildcard matching with a single backtrack point: O(pattern × name), never exponential.
fn match_simple(p: &[Simple], s: &[char]) -> bool {
    let one = |tok: &Simple, c: char| match tok {
        Simple::Lit(l) => *l == c,
        Simple::Single => true,
        Simple::Class(negated, ranges) => {
            ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
        }
        Simple::Any => false,
    };
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && matches!(p[pi], Simple::Any) {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && one(&p[pi], s[si]) {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|t| matches!(t, Simple::Any))
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

/// Go's `path.Match` (its chunk algorithm: no exponential backtracking); a malformed
/// pattern matches nothing, as upstream ignores the error.
pub fn path_match(pattern: &str, name: &str) -> bool {
    let mut p: &[char] = &pattern.chars().collect::<Vec<_>>();
    let owned: Vec<char> = name.chars().collect();
    let mut n: &[char] = &owned;
    'pattern: while !p.is_empty() {
        let (star, chunk, rest) = scan_chunk(p);
        p = rest;
        if star && chunk.is_empty() {
            return !n.contains(&'/');
        }
        match match_chunk(chunk, n) {
            Err(()) => return false,
            Ok(Some(t)) if t.is_empty() || !p.is_empty() => {
                n = t;
                continue;
            }
            _ => {}
        }
        if star {
            let mut i = 0;
            while i < n.len() && n[i] != '/' {
                match match_chunk(chunk, &n[i + 1..]) {
                    Err(()) => return false,
                    Ok(Some(t)) => {
                        if p.is_empty() && !t.is_empty() {
                            i += 1;
                            continue;
                        }
                        n = t;
                        continue 'pattern;
                    }
                    Ok(None) => {}
                }
                i += 1;
            }
        }
        return false;
    }
    n.is_empty()
}

fn scan_chunk(mut p: &[char]) -> (bool, &[char], &[char]) {
    let mut star = false;
    while p.first() == Some(&'*') {
        p = &p[1..];
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' if i + 1 < p.len() => i += 1,
            '[' => in_range = true,
            ']' => in_range = false,
            '*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &p[..i], &p[i..])
}

/// Matches `chunk` at the start of `s`: the rest of `s`, `None` for no match, `Err` for a
/// malformed pattern.
fn match_chunk<'a>(mut chunk: &[char], mut s: &'a [char]) -> Result<Option<&'a [char]>, ()> {
    let mut failed = false;
    while !chunk.is_empty() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match chunk[0] {
            '[' => {
                let c = if failed { None } else { Some(s[0]) };
                if !failed {
                    s = &s[1..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut n = 0;
                loop {
                    if !chunk.is_empty() && chunk[0] == ']' && n > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&'-') {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if let Some(c) = c {
                        if lo <= c && c <= hi {
                            matched = true;
                        }
                    }
                    n += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            '?' => {
                if !failed {
                    if s[0] == '/' {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
            '\\' => {
                chunk = &chunk[1..];
                if chunk.is_empty() {
                    return Err(());
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
            c => {
                if !failed {
                    if c != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

fn get_esc(chunk: &[char]) -> Result<(char, &[char]), ()> {
    match chunk.first() {
        None | Some('-') | Some(']') => Err(()),
        Some('\\') => {
            let c = *chunk.get(1).ok_or(())?;
            let rest = &chunk[2..];
            if rest.is_empty() {
                return Err(());
            }
            Ok((c, rest))
        }
        Some(c) => {
            let rest = &chunk[1..];
            if rest.is_empty() {
                return Err(());
            }
            Ok((*c, rest))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob_matches(p: &str, n: &str) -> bool {
        Glob::compile(p).unwrap().matches(n)
    }

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
        assert!(!path_match("a[", "a"));
        assert!(path_match("*x*y*z", "axbyz"));
        // Pathological patterns stay fast.
        let name = "a".repeat(60);
        assert!(!path_match(&"*a".repeat(30), &format!("{name}b")));
        assert!(!glob_matches(&"*a".repeat(30), &format!("{name}b")));
    }
}
