//! Durations as people write them, the same on the command line and in `orch.yaml`: `90s`,
//! `30m`, `1h`, `1h 30m` (humantime's syntax), or a plain number of seconds.

use std::time::Duration;

/// Parses a duration; the error says how to write one.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!(
            "invalid duration `{text}` ({e}): write it like `90s`, `30m`, `1h` or `1h 30m`, \
             or as a number of seconds"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_plain_seconds() {
        assert_eq!(parse("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse(" 30m "), Ok(Duration::from_secs(1800)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        let err = parse("soon").unwrap_err();
        assert!(
            err.contains("invalid duration `soon`") && err.contains("`1h`"),
            "{err}"
        );
        assert!(parse("-5").is_err());
    }
}
