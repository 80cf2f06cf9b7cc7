//! rpm version comparison: `rpmvercmp`, `[epoch:]version[-release]` parsing
//! and the range-overlap test rpm uses to decide whether a Provides satisfies
//! a Requires (`rpmdsCompareIndex` / `rpmverOverlap` in rpm 4.18).

use crate::spec::{Constraint, Op};
use std::cmp::Ordering;

/// rpm's segmented version compare (rpmio/rpmvercmp.c, rpm >= 4.15).
///
/// Strings are split into maximal runs of ASCII digits or ASCII letters;
/// everything else separates segments (non-ASCII bytes included, as in rpm).
/// `~` sorts before anything, even the end of the string; `^` sorts after the
/// end of the string but before any further segment.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    let is_sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';

    while i < a.len() || j < b.len() {
        while i < a.len() && is_sep(a[i]) {
            i += 1;
        }
        while j < b.len() && is_sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());

        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }

        // The exhaustion tests come first: "1.0" < "1.0^x" but "1.0^x" < "1.0.1".
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }

        if i >= a.len() || j >= b.len() {
            break;
        }

        // The segment type is decided by `a`; `b` is cut with the same class.
        let numeric = a[i].is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let ea = i + a[i..].iter().take_while(|c| class(c)).count();
        let eb = j + b[j..].iter().take_while(|c| class(c)).count();
        let (mut sa, mut sb) = (&a[i..ea], &b[j..eb]);

        // Segments of different types: numeric is newer than alpha.
        if sb.is_empty() {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        if numeric {
            sa = trim_leading_zeros(sa);
            sb = trim_leading_zeros(sb);
            match sa.len().cmp(&sb.len()) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        match sa.cmp(sb) {
            Ordering::Equal => {}
            other => return other,
        }
        i = ea;
        j = eb;
    }

    // All segments equal; only the separators differed, or one side has more.
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

fn trim_leading_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b'0').count();
    &s[n..]
}

/// A parsed `[epoch:]version[-release]`.
///
/// `epoch` and `release` stay `None` when not written, because rpm's range
/// test treats "not written" differently from "0" / any release.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Evr {
    pub epoch: Option<String>,
    pub version: String,
    pub release: Option<String>,
}

impl Evr {
    /// Splits like rpm's `parseEVR`: leading digits followed by `:` are the
    /// epoch (an empty epoch means `0`), the text after the last `-` is the
    /// release.
    pub fn parse(evr: &str) -> Evr {
        let digits = evr.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, rest) = if evr.as_bytes().get(digits) == Some(&b':') {
            let e = &evr[..digits];
            (
                Some(if e.is_empty() {
                    "0".to_string()
                } else {
                    e.to_string()
                }),
                &evr[digits + 1..],
            )
        } else {
            (None, evr)
        };
        let (version, release) = match rest.rfind('-') {
            Some(p) => (&rest[..p], Some(rest[p + 1..].to_string())),
            None => (rest, None),
        };
        Evr {
            epoch,
            version: version.to_string(),
            release,
        }
    }

    /// The epoch as a number (`0` when missing), as rpm's `atol` reads it.
    pub fn epoch_value(&self) -> u64 {
        self.epoch.as_deref().map_or(0, |e| e.parse().unwrap_or(0))
    }

    /// Total order of rpm's `rpmverCmp`: a missing epoch is `0`, a missing
    /// release sorts before any release. Used to pick the newest provider.
    pub fn cmp_rpm(&self, other: &Evr) -> Ordering {
        let e1 = self.epoch.as_deref().unwrap_or("0");
        let e2 = other.epoch.as_deref().unwrap_or("0");
        rpmvercmp(e1, e2)
            .then_with(|| rpmvercmp(&self.version, &other.version))
            .then_with(|| match (&self.release, &other.release) {
                (Some(a), Some(b)) => rpmvercmp(a, b),
                (Some(_), None) => Ordering::Greater,
                (None, Some(_)) => Ordering::Less,
                (None, None) => Ordering::Equal,
            })
    }
}

impl std::fmt::Display for Evr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(e) = &self.epoch {
            write!(f, "{e}:")?;
        }
        f.write_str(&self.version)?;
        if let Some(r) = &self.release {
            write!(f, "-{r}")?;
        }
        Ok(())
    }
}

fn has_less(op: Op) -> bool {
    matches!(op, Op::Lt | Op::Le)
}
fn has_greater(op: Op) -> bool {
    matches!(op, Op::Gt | Op::Ge)
}
fn has_equal(op: Op) -> bool {
    matches!(op, Op::Le | Op::Eq | Op::Ge)
}

/// Whether two versioned ranges overlap (rpm's `rpmverOverlap`).
pub fn ranges_overlap(a_op: Op, a: &Evr, b_op: Op, b: &Evr) -> bool {
    let nonempty = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    // Epoch: compared when both are written; otherwise a side with a positive
    // epoch is newer, so a missing epoch behaves as 0.
    let mut sense = if nonempty(&a.epoch) && nonempty(&b.epoch) {
        rpmvercmp(
            a.epoch.as_deref().unwrap_or(""),
            b.epoch.as_deref().unwrap_or(""),
        )
    } else if a.epoch_value() > 0 {
        Ordering::Greater
    } else if b.epoch_value() > 0 {
        Ordering::Less
    } else {
        Ordering::Equal
    };
    if sense == Ordering::Equal {
        sense = rpmvercmp(&a.version, &b.version);
        if sense == Ordering::Equal {
            if nonempty(&a.release) && nonempty(&b.release) {
                sense = rpmvercmp(
                    a.release.as_deref().unwrap_or(""),
                    b.release.as_deref().unwrap_or(""),
                );
            } else if (nonempty(&a.release) && has_equal(b_op))
                || (nonempty(&b.release) && has_equal(a_op))
            {
                // The side that omits the release matches any release.
                return true;
            }
        }
    }
    match sense {
        Ordering::Less => has_greater(a_op) || has_less(b_op),
        Ordering::Greater => has_less(a_op) || has_greater(b_op),
        Ordering::Equal => {
            (has_equal(a_op) && has_equal(b_op))
                || (has_less(a_op) && has_less(b_op))
                || (has_greater(a_op) && has_greater(b_op))
        }
    }
}

/// Whether a Provides (unversioned when `provided` is `None`) satisfies a
/// Requires of the same name (unversioned when `required` is `None`),
/// following `rpmdsCompareIndex`: an existence test on either side always
/// matches, as does an empty EVR.
pub fn satisfies(provided: Option<&Constraint>, required: Option<&Constraint>) -> bool {
    match (provided, required) {
        (Some(p), Some(r)) if !p.evr.is_empty() && !r.evr.is_empty() => {
            ranges_overlap(p.op, &Evr::parse(&p.evr), r.op, &Evr::parse(&r.evr))
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Vectors from rpm's tests/rpmvercmp.at (including the caret cases of
    /// rpm >= 4.15 and the documented "oddities").
    const VECTORS: &[(&str, &str, i32)] = &[
        ("1.0", "1.0", 0),
        ("1.0", "2.0", -1),
        ("2.0", "1.0", 1),
        ("2.0.1", "2.0.1", 0),
        ("2.0", "2.0.1", -1),
        ("2.0.1", "2.0", 1),
        ("2.0.1a", "2.0.1a", 0),
        ("2.0.1a", "2.0.1", 1),
        ("2.0.1", "2.0.1a", -1),
        ("5.5p1", "5.5p1", 0),
        ("5.5p1", "5.5p2", -1),
        ("5.5p2", "5.5p1", 1),
        ("5.5p10", "5.5p10", 0),
        ("5.5p1", "5.5p10", -1),
        ("5.5p10", "5.5p1", 1),
        ("10xyz", "10.1xyz", -1),
        ("10.1xyz", "10xyz", 1),
        ("xyz10", "xyz10", 0),
        ("xyz10", "xyz10.1", -1),
        ("xyz10.1", "xyz10", 1),
        ("xyz.4", "xyz.4", 0),
        ("xyz.4", "8", -1),
        ("8", "xyz.4", 1),
        ("xyz.4", "2", -1),
        ("2", "xyz.4", 1),
        ("5.5p2", "5.6p1", -1),
        ("5.6p1", "5.5p2", 1),
        ("5.6p1", "6.5p1", -1),
        ("6.5p1", "5.6p1", 1),
        ("6.0.rc1", "6.0", 1),
        ("6.0", "6.0.rc1", -1),
        ("10b2", "10a1", 1),
        ("10a2", "10b2", -1),
        ("1.0aa", "1.0aa", 0),
        ("1.0a", "1.0aa", -1),
        ("1.0aa", "1.0a", 1),
        ("10.0001", "10.0001", 0),
        ("10.0001", "10.1", 0),
        ("10.1", "10.0001", 0),
        ("10.0001", "10.0039", -1),
        ("10.0039", "10.0001", 1),
        ("4.999.9", "5.0", -1),
        ("5.0", "4.999.9", 1),
        ("20101121", "20101121", 0),
        ("20101121", "20101122", -1),
        ("20101122", "20101121", 1),
        ("2_0", "2_0", 0),
        ("2.0", "2_0", 0),
        ("2_0", "2.0", 0),
        ("a", "a", 0),
        ("a+", "a+", 0),
        ("a+", "a_", 0),
        ("a_", "a+", 0),
        ("+a", "+a", 0),
        ("+a", "_a", 0),
        ("_a", "+a", 0),
        ("+_", "+_", 0),
        ("_+", "+_", 0),
        ("_+", "_+", 0),
        ("+", "_", 0),
        ("_", "+", 0),
        ("1.0~rc1", "1.0~rc1", 0),
        ("1.0~rc1", "1.0", -1),
        ("1.0", "1.0~rc1", 1),
        ("1.0~rc1", "1.0~rc2", -1),
        ("1.0~rc2", "1.0~rc1", 1),
        ("1.0~rc1~git123", "1.0~rc1~git123", 0),
        ("1.0~rc1~git123", "1.0~rc1", -1),
        ("1.0~rc1", "1.0~rc1~git123", 1),
        ("1.0^", "1.0^", 0),
        ("1.0^", "1.0", 1),
        ("1.0", "1.0^", -1),
        ("1.0^git1", "1.0^git1", 0),
        ("1.0^git1", "1.0", 1),
        ("1.0", "1.0^git1", -1),
        ("1.0^git1", "1.0^git2", -1),
        ("1.0^git2", "1.0^git1", 1),
        ("1.0^git1", "1.01", -1),
        ("1.01", "1.0^git1", 1),
        ("1.0^20160101", "1.0^20160101", 0),
        ("1.0^20160101", "1.0.1", -1),
        ("1.0.1", "1.0^20160101", 1),
        ("1.0^20160101^git1", "1.0^20160101^git1", 0),
        ("1.0^20160102", "1.0^20160101^git1", 1),
        ("1.0^20160101^git1", "1.0^20160102", -1),
        ("1.0~rc1^git1", "1.0~rc1^git1", 0),
        ("1.0~rc1^git1", "1.0~rc1", 1),
        ("1.0~rc1", "1.0~rc1^git1", -1),
        ("1.0^git1~pre", "1.0^git1~pre", 0),
        ("1.0^git1", "1.0^git1~pre", 1),
        ("1.0^git1~pre", "1.0^git1", -1),
        // rpm's documented oddities (RhBug:811992 and non-ASCII bytes).
        ("1b.fc17", "1b.fc17", 0),
        ("1b.fc17", "1.fc17", -1),
        ("1.fc17", "1b.fc17", 1),
        ("1g.fc17", "1g.fc17", 0),
        ("1g.fc17", "1.fc17", 1),
        ("1.fc17", "1g.fc17", -1),
        ("1.1.α", "1.1.α", 0),
        ("1.1.α", "1.1.β", 0),
        ("1.1.β", "1.1.α", 0),
        ("1.1.αα", "1.1.α", 0),
        ("1.1.α", "1.1.ββ", 0),
        ("1.1.ββ", "1.1.αα", 0),
    ];

    #[test]
    fn rpmvercmp_matches_rpm_test_vectors() {
        for &(a, b, want) in VECTORS {
            let got = match rpmvercmp(a, b) {
                Ordering::Less => -1,
                Ordering::Equal => 0,
                Ordering::Greater => 1,
            };
            assert_eq!(got, want, "rpmvercmp({a:?}, {b:?})");
        }
    }

    #[test]
    fn long_numbers_do_not_overflow() {
        assert_eq!(
            rpmvercmp("1.99999999999999999999999", "1.99999999999999999999998"),
            Ordering::Greater
        );
    }

    #[test]
    fn parse_evr_like_rpm() {
        assert_eq!(
            Evr::parse("1:2.3-4.ph5"),
            Evr {
                epoch: Some("1".into()),
                version: "2.3".into(),
                release: Some("4.ph5".into())
            }
        );
        assert_eq!(
            Evr::parse("2.3"),
            Evr {
                epoch: None,
                version: "2.3".into(),
                release: None
            }
        );
        assert_eq!(Evr::parse(":2.3").epoch.as_deref(), Some("0"));
        // The release is after the *last* dash.
        assert_eq!(Evr::parse("1.0-rc1-3").version, "1.0-rc1");
        assert_eq!(Evr::parse("1.0-rc1-3").release.as_deref(), Some("3"));
        assert_eq!(Evr::parse("1:2.3-4").to_string(), "1:2.3-4");
    }

    #[test]
    fn cmp_rpm_treats_missing_epoch_as_zero() {
        assert_eq!(
            Evr::parse("0:1.0-1").cmp_rpm(&Evr::parse("1.0-1")),
            Ordering::Equal
        );
        assert_eq!(
            Evr::parse("1:0.1-1").cmp_rpm(&Evr::parse("9.0-1")),
            Ordering::Greater
        );
        assert_eq!(
            Evr::parse("1.0").cmp_rpm(&Evr::parse("1.0-1")),
            Ordering::Less
        );
    }

    fn c(op: &str, evr: &str) -> Constraint {
        Constraint {
            op: Op::parse(op).unwrap(),
            evr: evr.into(),
        }
    }

    #[test]
    fn satisfies_versioned_ranges() {
        let p = c("=", "2.36-4.ph5");
        assert!(satisfies(Some(&p), Some(&c(">=", "2.30"))));
        assert!(satisfies(Some(&p), Some(&c("<", "3"))));
        assert!(!satisfies(Some(&p), Some(&c(">", "2.36-4.ph5"))));
        assert!(!satisfies(Some(&p), Some(&c("<", "2.36"))));
        assert!(!satisfies(Some(&p), Some(&c(">=", "2.37"))));
        assert!(satisfies(Some(&p), Some(&c("<=", "2.36-4.ph5"))));
        assert!(!satisfies(Some(&p), Some(&c("<", "2.36-4.ph5"))));
        assert!(satisfies(Some(&p), Some(&c(">", "2.36-3"))));
    }

    #[test]
    fn missing_release_in_requirement_is_not_compared() {
        let p = c("=", "2.36-4");
        assert!(satisfies(Some(&p), Some(&c("=", "2.36"))));
        assert!(satisfies(Some(&p), Some(&c("<=", "2.36"))));
        assert!(satisfies(Some(&p), Some(&c(">=", "2.36"))));
        // Strict operators do not contain EQUAL, so the range test decides.
        assert!(!satisfies(Some(&p), Some(&c(">", "2.36"))));
        assert!(!satisfies(Some(&p), Some(&c("<", "2.36"))));
    }

    #[test]
    fn epochs() {
        // A missing epoch acts as 0 against an explicit 0 ...
        assert!(satisfies(Some(&c("=", "0:1.0-1")), Some(&c(">=", "1.0"))));
        // ... and loses against a positive epoch.
        assert!(!satisfies(Some(&c("=", "1.0-1")), Some(&c(">=", "1:0.5"))));
        assert!(satisfies(Some(&c("=", "1:0.5-1")), Some(&c(">=", "9.0"))));
        assert!(!satisfies(Some(&c("=", "1:0.5-1")), Some(&c("<", "9.0"))));
    }

    #[test]
    fn unversioned_sides_always_match() {
        assert!(satisfies(None, Some(&c(">=", "99"))));
        assert!(satisfies(Some(&c("=", "1.0-1")), None));
        assert!(satisfies(None, None));
        assert!(satisfies(Some(&c("=", "")), Some(&c(">=", "1"))));
    }

    #[test]
    fn ranged_provides() {
        // A Provides can itself be a range, e.g. `Provides: foo > 1.0`.
        assert!(satisfies(Some(&c(">", "1.0")), Some(&c(">=", "5"))));
        assert!(!satisfies(Some(&c("<", "1.0")), Some(&c(">=", "5"))));
        assert!(satisfies(Some(&c("<", "1.0")), Some(&c("<", "0.5"))));
    }
}
