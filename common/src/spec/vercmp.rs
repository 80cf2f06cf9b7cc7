//! Version comparison for `v"..."` literals in expressions (rpm's rpmvercmp
//! over `[epoch:]version[-release]`).

use std::cmp::Ordering;

/// rpm's `rpmvercmp`: compares alternating digit and alpha segments; `~`
/// sorts before anything, `^` after the end but before any other segment.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
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
        let (Some(ca), Some(_)) = (ca, cb) else { break };
        let numeric = ca.is_ascii_digit();
        let take = |s: &[u8], mut k: usize| {
            let start = k;
            while k < s.len() && (if numeric { s[k].is_ascii_digit() } else { s[k].is_ascii_alphabetic() }) {
                k += 1;
            }
            (start, k)
        };
        let (sa, ea) = take(a, i);
        let (sb, eb) = take(b, j);
        if sb == eb {
            // Segments of different types: numeric is newer.
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        let (mut seg_a, mut seg_b) = (&a[sa..ea], &b[sb..eb]);
        if numeric {
            while seg_a.first() == Some(&b'0') {
                seg_a = &seg_a[1..];
            }
            while seg_b.first() == Some(&b'0') {
                seg_b = &seg_b[1..];
            }
            match seg_a.len().cmp(&seg_b.len()) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        match seg_a.cmp(seg_b) {
            Ordering::Equal => {}
            other => return other,
        }
        i = ea;
        j = eb;
    }
    let (ra, rb) = (i >= a.len(), j >= b.len());
    match (ra, rb) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

fn split_evr(s: &str) -> (&str, &str, Option<&str>) {
    let (epoch, rest) = match s.find(':') {
        Some(k) if s[..k].bytes().all(|b| b.is_ascii_digit()) => (&s[..k], &s[k + 1..]),
        _ => ("", s),
    };
    match rest.rfind('-') {
        Some(k) => (epoch, &rest[..k], Some(&rest[k + 1..])),
        None => (epoch, rest, None),
    }
}

/// Compares two `[epoch:]version[-release]` strings; a missing epoch is 0,
/// a missing release on either side is not compared.
pub fn compare_evr(a: &str, b: &str) -> Ordering {
    let (ea, va, ra) = split_evr(a);
    let (eb, vb, rb) = split_evr(b);
    let num = |e: &str| e.parse::<u64>().unwrap_or(0);
    num(ea).cmp(&num(eb)).then_with(|| rpmvercmp(va, vb)).then_with(|| match (ra, rb) {
        (Some(x), Some(y)) => rpmvercmp(x, y),
        _ => Ordering::Equal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn rpmvercmp_vectors() {
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "2.0", Less),
            ("2.0.1", "2.0", Greater),
            ("1.10", "1.9", Greater),
            ("1.0a", "1.0", Greater),
            ("1.0", "1.0~rc1", Greater),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0^", "1.0", Greater),
            ("1.0^git1", "1.0.1", Less),
            ("010", "10", Equal),
            ("a", "1", Less),
            ("fc4", "fc.4", Equal),
        ] {
            assert_eq!(rpmvercmp(a, b), want, "{a} vs {b}");
        }
        assert_eq!(compare_evr("1:1.0-1", "2.0-1"), Greater);
        assert_eq!(compare_evr("1.0", "1.0-5"), Equal);
    }
}
