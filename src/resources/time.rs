//! The `time` base type (upstream time-resource): versions are points in time, emitted on
//! an interval and/or inside a daily window on allowed days.

use super::{require_dir, ResourceError, Version, VersionResult};
use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::Deserialize;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    stop: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    days: Vec<String>,
    #[serde(default, deserialize_with = "crate::resources::null_as_default")]
    initial_version: bool,
    #[serde(default)]
    start_after: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Request {
    #[serde(default)]
    source: Option<Source>,
    #[serde(default)]
    version: Option<Version>,
}

/// A validated source.
struct Schedule {
    interval: Option<Duration>,
    window: Option<(Time, Time)>,
    tz: TimeZone,
    days: Vec<Weekday>,
    initial_version: bool,
    start_after: Option<Zoned>,
}

fn err(msg: impl Into<String>) -> ResourceError {
    ResourceError::new(msg)
}

/// `3:04 PM`, `3PM`, `3 PM`, `15:04`, `1504`, optionally followed by a ` -0700` offset
/// (deprecated upstream; accepted and ignored in favour of `location`).
fn parse_clock(s: &str) -> Option<Time> {
    let mut text = s.trim().to_string();
    if let Some((head, tail)) = text.rsplit_once(' ') {
        if (tail.starts_with('-') || tail.starts_with('+'))
            && tail.len() == 5
            && tail[1..].chars().all(|c| c.is_ascii_digit())
        {
            text = head.trim().to_string();
        }
    }
    let upper = text.to_ascii_uppercase();
    let (body, pm) = if let Some(b) = upper.strip_suffix("PM") {
        (b.trim().to_string(), Some(true))
    } else if let Some(b) = upper.strip_suffix("AM") {
        (b.trim().to_string(), Some(false))
    } else {
        (upper, None)
    };
    let (h, m): (i8, i8) = if let Some((h, m)) = body.split_once(':') {
        (h.parse().ok()?, m.parse().ok()?)
    } else if pm.is_some() {
        (body.parse().ok()?, 0)
    } else if body.len() == 4 {
        (body[..2].parse().ok()?, body[2..].parse().ok()?)
    } else {
        return None;
    };
    let h = match pm {
        Some(true) if (1..=12).contains(&h) => h % 12 + 12,
        Some(false) if (1..=12).contains(&h) => h % 12,
        Some(_) => return None,
        None => h,
    };
    Time::new(h, m, 0, 0).ok()
}

fn parse_day(s: &str) -> Option<Weekday> {
    Some(match s.to_ascii_lowercase().as_str() {
        "monday" | "mon" => Weekday::Monday,
        "tuesday" | "tue" => Weekday::Tuesday,
        "wednesday" | "wed" => Weekday::Wednesday,
        "thursday" | "thu" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" | "sat" => Weekday::Saturday,
        "sunday" | "sun" => Weekday::Sunday,
        _ => return None,
    })
}

fn parse_start_after(s: &str, tz: &TimeZone) -> Option<Zoned> {
    let formats = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H",
        "%Y-%m-%d %H:%M:%S",
    ];
    for f in formats {
        if let Ok(dt) = jiff::civil::DateTime::strptime(f, s) {
            return dt.to_zoned(tz.clone()).ok();
        }
    }
    jiff::civil::Date::strptime("%Y-%m-%d", s)
        .ok()
        .and_then(|d| d.to_zoned(tz.clone()).ok())
}

impl Schedule {
    fn from_source(source: Source) -> Result<Schedule, ResourceError> {
        let tz = match &source.location {
            Some(loc) => {
                TimeZone::get(loc).map_err(|e| err(format!("invalid location '{loc}': {e}")))?
            }
            None => TimeZone::UTC,
        };
        let window = match (&source.start, &source.stop) {
            (Some(a), Some(b)) => Some((
                parse_clock(a).ok_or_else(|| err(format!("invalid start '{a}'")))?,
                parse_clock(b).ok_or_else(|| err(format!("invalid stop '{b}'")))?,
            )),
            (Some(_), None) => return Err(err("must configure 'stop' if 'start' is set")),
            (None, Some(_)) => return Err(err("must configure 'start' if 'stop' is set")),
            (None, None) => None,
        };
        let interval = match &source.interval {
            Some(i) => Some(
                crate::config::parse_duration(i)
                    .ok()
                    .ok_or_else(|| err(format!("invalid interval '{i}'")))?,
            ),
            None => None,
        };
        let days = source
            .days
            .iter()
            .map(|d| parse_day(d).ok_or_else(|| err(format!("invalid day '{d}'"))))
            .collect::<Result<_, _>>()?;
        let start_after = match &source.start_after {
            Some(s) => Some(
                parse_start_after(s, &tz)
                    .ok_or_else(|| err(format!("invalid start_after '{s}'")))?,
            ),
            None => None,
        };
        Ok(Schedule {
            interval,
            window,
            tz,
            days,
            initial_version: source.initial_version,
            start_after,
        })
    }

    /// The start of the window `now` is in, or None when it is outside every window.
    fn window_start(&self, now: &Zoned) -> Option<Zoned> {
        let today = now.date();
        let at =
            |date: jiff::civil::Date, t: Time| date.to_datetime(t).to_zoned(self.tz.clone()).ok();
        match self.window {
            None => at(today, Time::midnight()),
            Some((start, stop)) => {
                let t = now.time();
                if start < stop {
                    (t >= start && t < stop).then(|| at(today, start)).flatten()
                } else if t >= start {
                    // Crosses midnight (or equal: the whole day), started today.
                    at(today, start)
                } else if t < stop || start == stop {
                    at(today.yesterday().ok()?, start)
                } else {
                    None
                }
            }
        }
    }

    fn check(&self, previous: Option<Timestamp>, now: Zoned) -> Vec<Timestamp> {
        let mut out: Vec<Timestamp> = previous.into_iter().collect();
        if previous.is_none() && self.initial_version {
            return vec![now.timestamp()];
        }
        if !self.days.is_empty() && !self.days.contains(&now.weekday()) {
            return out;
        }
        if self.start_after.as_ref().is_some_and(|s| now < *s) {
            return out;
        }
        let Some(window_start) = self.window_start(&now) else {
            return out;
        };
        let due = match (previous, self.interval) {
            (None, _) => true,
            (Some(prev), Some(interval)) => {
                now.timestamp().duration_since(prev)
                    >= jiff::SignedDuration::try_from(interval).unwrap_or(jiff::SignedDuration::MAX)
            }
            (Some(prev), None) => prev < window_start.timestamp(),
        };
        if due {
            out.push(now.timestamp());
        }
        out
    }
}

fn version_of(t: Timestamp) -> Version {
    let mut v = Version::new();
    v.insert("time".into(), t.to_string());
    v
}

fn parse_request(request: &[u8]) -> Result<(Schedule, Option<Timestamp>), ResourceError> {
    let req: Request =
        serde_json::from_slice(request).map_err(|e| err(format!("invalid payload: {e}")))?;
    let schedule = Schedule::from_source(req.source.unwrap_or_default())?;
    let previous = match req.version.as_ref().and_then(|v| v.get("time")) {
        Some(t) => Some(
            t.parse::<Timestamp>()
                .map_err(|e| err(format!("invalid version time '{t}': {e}")))?,
        ),
        None => None,
    };
    Ok((schedule, previous))
}

pub fn run(
    action: &str,
    dir: Option<&str>,
    request: &[u8],
    _log: &mut dyn Write,
) -> Result<serde_json::Value, ResourceError> {
    let (schedule, previous) = parse_request(request)?;
    let now = Timestamp::now().to_zoned(schedule.tz.clone());
    let out = match action {
        "check" => serde_json::to_value(
            schedule
                .check(previous, now)
                .into_iter()
                .map(version_of)
                .collect::<Vec<_>>(),
        ),
        "in" => {
            let dir = Path::new(require_dir(action, dir)?);
            let t = previous.unwrap_or_else(|| now.timestamp());
            let zoned = t.to_zoned(schedule.tz.clone());
            let files = [
                ("input", String::from_utf8_lossy(request).into_owned()),
                (
                    "timestamp",
                    zoned.strftime("%Y-%m-%d %H:%M:%S%.f %z %Z").to_string(),
                ),
                ("epoch", t.as_second().to_string()),
            ];
            for (name, contents) in files {
                std::fs::write(dir.join(name), contents)
                    .map_err(|e| err(format!("writing {name}: {e}")))?;
            }
            serde_json::to_value(VersionResult {
                version: version_of(t),
                metadata: vec![],
            })
        }
        "out" => {
            require_dir(action, dir)?;
            serde_json::to_value(VersionResult {
                version: version_of(Timestamp::now()),
                metadata: vec![],
            })
        }
        other => return Err(err(format!("unknown action '{other}' (check, in, out)"))),
    };
    out.map_err(|e| err(format!("encoding response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_source_fields_read_as_absent() {
        crate::resources::assert_null_is_absent::<Source>(
            serde_json::json!({}),
            &[
                "interval",
                "start",
                "stop",
                "location",
                "days",
                "initial_version",
                "start_after",
            ],
        );
        crate::resources::assert_null_is_absent::<Request>(
            serde_json::json!({}),
            &["source", "version"],
        );
    }

    fn schedule(json: serde_json::Value) -> Schedule {
        Schedule::from_source(serde_json::from_value(json).expect("source")).expect("valid")
    }

    fn at(s: &str) -> Zoned {
        format!("{s}[UTC]").parse().expect("zoned")
    }

    #[test]
    fn clock_formats_parse() {
        for (s, h, m) in [
            ("3:04 PM", 15, 4),
            ("3PM", 15, 0),
            ("3 PM", 15, 0),
            ("15:04", 15, 4),
            ("1504", 15, 4),
            ("12 AM", 0, 0),
            ("9:30 AM -0700", 9, 30),
        ] {
            assert_eq!(parse_clock(s), Some(Time::constant(h, m, 0, 0)), "{s}");
        }
        assert_eq!(parse_clock("25:00"), None);
        assert_eq!(parse_clock("13 PM"), None);
    }

    #[test]
    fn interval_emits_after_the_gap_only() {
        let s = schedule(serde_json::json!({"interval": "1h"}));
        let prev = at("2024-01-01T10:00:00").timestamp();
        assert_eq!(s.check(Some(prev), at("2024-01-01T10:30:00")), vec![prev]);
        assert_eq!(s.check(Some(prev), at("2024-01-01T11:00:00")).len(), 2);
        assert_eq!(s.check(None, at("2024-01-01T11:00:00")).len(), 1);
    }

    #[test]
    fn window_and_days_gate_new_versions() {
        let s = schedule(
            serde_json::json!({"start": "9:00 AM", "stop": "5:00 PM", "days": ["Monday"]}),
        );
        // 2024-01-01 is a Monday.
        assert_eq!(s.check(None, at("2024-01-01T08:00:00")), vec![]);
        assert_eq!(s.check(None, at("2024-01-01T09:30:00")).len(), 1);
        assert_eq!(
            s.check(None, at("2024-01-02T09:30:00")),
            vec![],
            "Tuesday is not allowed"
        );
        let prev = at("2024-01-01T09:30:00").timestamp();
        assert_eq!(
            s.check(Some(prev), at("2024-01-01T16:00:00")).len(),
            1,
            "once per window without interval"
        );
        assert_eq!(
            s.check(Some(prev), at("2024-01-08T09:00:00")).len(),
            2,
            "next window"
        );
    }

    #[test]
    fn window_may_cross_midnight() {
        let s = schedule(serde_json::json!({"start": "22:00", "stop": "02:00"}));
        assert_eq!(s.check(None, at("2024-01-01T23:00:00")).len(), 1);
        assert_eq!(s.check(None, at("2024-01-02T01:00:00")).len(), 1);
        assert_eq!(s.check(None, at("2024-01-02T03:00:00")).len(), 0);
    }

    #[test]
    fn bad_sources_are_refused_with_upstream_messages() {
        let e = Schedule::from_source(
            serde_json::from_value(serde_json::json!({"start": "9AM"})).expect("source"),
        );
        assert_eq!(
            e.err().map(|e| e.to_string()),
            Some("must configure 'stop' if 'start' is set".into())
        );
        let e = Schedule::from_source(
            serde_json::from_value(serde_json::json!({"stop": "9AM"})).expect("source"),
        );
        assert_eq!(
            e.err().map(|e| e.to_string()),
            Some("must configure 'start' if 'stop' is set".into())
        );
    }

    #[test]
    fn initial_version_emits_now_at_once() {
        let s =
            schedule(serde_json::json!({"initial_version": true, "start": "1AM", "stop": "2AM"}));
        assert_eq!(s.check(None, at("2024-01-01T12:00:00")).len(), 1);
    }
}
