//! Go's `time.ParseDuration` and `Duration.String`, since configs hold Go duration strings
//! (`30s`, `1h30m`) and upstream's JSON re-renders `check_every` through `String()`.

use std::time::Duration;

/// Parses a Go duration string. Negative durations are returned as `Err` only when the caller
/// cares; here they parse (as their absolute value is meaningless, callers check the sign).
pub fn parse_go_duration(s: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(s));
    let mut rest = s;
    let mut neg = false;
    if let Some(r) = rest.strip_prefix('-') {
        neg = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let frac_len = r.bytes().take_while(|b| b.is_ascii_digit()).count();
            frac_part = &r[..frac_len];
            rest = &r[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("time: missing unit in duration {}", go_quote(s))),
            other => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(other),
                    go_quote(s)
                ))
            }
        };
        let whole: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse::<i128>().map_err(|_| invalid())?
        };
        let mut value = whole.checked_mul(scale).ok_or_else(invalid)?;
        if !frac_part.is_empty() {
            let digits = &frac_part[..frac_part.len().min(30)];
            let f: i128 = digits.parse().map_err(|_| invalid())?;
            value += f * scale / 10i128.pow(digits.len() as u32);
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > i64::MAX as i128 + 1 {
            return Err(invalid());
        }
    }
    if !neg && total > i64::MAX as i128 {
        return Err(invalid());
    }
    Ok(if neg { -total } else { total })
}

/// Parses a non-negative Go duration into a `Duration`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let nanos = parse_go_duration(s)?;
    if nanos < 0 {
        return Err(format!("time: invalid duration {}", go_quote(s)));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

fn go_quote(s: &str) -> String {
    format!("{s:?}")
}

/// Go's `Duration.String()` for a nanosecond count.
pub fn format_go_duration(nanos: i128) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        if u < 1_000 {
            out = format!("{u}ns");
        } else if u < 1_000_000 {
            out = format!("{}µs", frac(u, 3));
        } else {
            out = format!("{}ms", frac(u, 6));
        }
    } else {
        let secs_frac = frac(u % 60_000_000_000, 9);
        let mins = u / 60_000_000_000;
        if mins > 0 {
            let hours = mins / 60;
            if hours > 0 {
                out.push_str(&format!("{hours}h"));
            }
            out.push_str(&format!("{}m", mins % 60));
        }
        out.push_str(&format!("{secs_frac}s"));
    }
    if neg {
        format!("-{out}")
    } else {
        out
    }
}

fn frac(v: u128, prec: u32) -> String {
    let div = 10u128.pow(prec);
    let whole = v / div;
    let rem = v % div;
    if rem == 0 {
        return whole.to_string();
    }
    let digits = format!("{rem:0width$}", width = prec as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_and_format() {
        assert_eq!(parse_go_duration("1h30m").unwrap(), 5_400_000_000_000);
        assert_eq!(format_go_duration(parse_go_duration("1m").unwrap()), "1m0s");
        assert_eq!(
            format_go_duration(parse_go_duration("90s").unwrap()),
            "1m30s"
        );
        assert_eq!(
            format_go_duration(parse_go_duration("1.5s").unwrap()),
            "1.5s"
        );
        assert_eq!(
            format_go_duration(parse_go_duration("500ms").unwrap()),
            "500ms"
        );
        assert_eq!(
            format_go_duration(parse_go_duration("2h").unwrap()),
            "2h0m0s"
        );
        assert_eq!(
            parse_go_duration("x").unwrap_err(),
            "time: invalid duration \"x\""
        );
        assert_eq!(
            parse_go_duration("1").unwrap_err(),
            "time: missing unit in duration \"1\""
        );
        assert_eq!(
            parse_go_duration("1d").unwrap_err(),
            "time: unknown unit \"d\" in duration \"1d\""
        );
        assert!(parse_go_duration("").is_err());
    }
}
