//! Durations in settings, one syntax for every binary and every layer:
//! `1500ms`, `90s`, `2m`, `4h`, or a bare number of seconds (`90`, `0.5`).

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration option's value (`--lease-ttl 90s`, `lease_ttl = "90s"`,
/// `DBUILD_LEASE_TTL=90`). Written back in the largest unit that keeps it
/// exact, so a value read, written and read again is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub Duration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad duration {0:?}: use e.g. 1500ms, 90s, 2m, 4h or a number of seconds")]
pub struct SpanError(pub String);

impl Span {
    pub const fn from_secs(secs: u64) -> Span {
        Span(Duration::from_secs(secs))
    }

    pub const fn get(self) -> Duration {
        self.0
    }

    fn from_secs_f64(secs: f64, text: &str) -> Result<Span, SpanError> {
        Duration::try_from_secs_f64(secs)
            .map(Span)
            .map_err(|_| SpanError(text.to_string()))
    }
}

impl FromStr for Span {
    type Err = SpanError;

    fn from_str(text: &str) -> Result<Span, SpanError> {
        let s = text.trim();
        let (number, unit) = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
            .into_iter()
            .find_map(|(suffix, unit)| s.strip_suffix(suffix).map(|n| (n, unit)))
            .unwrap_or((s, 1.0));
        let value: f64 = number
            .trim()
            .parse()
            .map_err(|_| SpanError(text.to_string()))?;
        Span::from_secs_f64(value * unit, text)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return write!(f, "0s");
        }
        for (unit, suffix) in [(3_600_000, "h"), (60_000, "m"), (1000, "s")] {
            if ms / unit * unit == ms {
                return write!(f, "{}{suffix}", ms / unit);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Span, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Span;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"90s\", \"1500ms\", \"2m\", \"4h\" or seconds")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Span, E> {
                Ok(Span::from_secs(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Span, E> {
                u64::try_from(v)
                    .map(Span::from_secs)
                    .map_err(|_| E::custom(SpanError(v.to_string())))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Span, E> {
                Span::from_secs_f64(v, &v.to_string()).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_form_parses_and_writes_back_exactly() {
        for (text, ms, written) in [
            ("1500ms", 1500, "1500ms"),
            ("90s", 90_000, "90s"),
            ("90", 90_000, "90s"),
            ("0.5", 500, "500ms"),
            ("2m", 120_000, "2m"),
            ("120s", 120_000, "2m"),
            (" 4h ", 14_400_000, "4h"),
            ("0", 0, "0s"),
        ] {
            let span: Span = text.parse().unwrap();
            assert_eq!(span.get(), Duration::from_millis(ms), "{text}");
            assert_eq!(span.to_string(), written, "{text}");
            assert_eq!(written.parse::<Span>().unwrap(), span, "{written}");
        }
    }

    #[test]
    fn nonsense_is_refused_naming_it() {
        for text in ["", "forever", "-1s", "5 minutes", "s", "1d"] {
            let e = text.parse::<Span>().unwrap_err().to_string();
            assert!(e.contains(&format!("{text:?}")), "{e}");
        }
    }
}
