//! Bad input never panics or hangs: unreadable files, self-including specs,
//! and thousands of mutated real specs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dbuild_common::spec::{parse_spec_file, parse_spec_text, parse_tree, ParseOptions, SpecError};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

fn corpus() -> PathBuf {
    dbuild_common::corpus::photon_specs()
}

#[test]
fn unreadable_file_is_an_io_error_naming_it() {
    let err =
        parse_spec_file(Path::new("/nonexistent/x.spec"), &ParseOptions::default()).unwrap_err();
    assert!(matches!(err, SpecError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/x.spec"), "{err}");
}

#[test]
fn a_spec_including_itself_stops_with_an_error() {
    let dir = tempdir("self-include");
    let spec = dir.join("loop.spec");
    std::fs::write(&spec, "Name: x\n%include loop.spec\n").unwrap();
    let err = parse_spec_file(&spec, &ParseOptions::default()).unwrap_err();
    assert!(err.to_string().contains("nested too deeply"), "{err}");
}

#[test]
fn one_bad_spec_does_not_stop_the_others() {
    let dir = tempdir("tree");
    std::fs::create_dir_all(dir.join("good")).unwrap();
    std::fs::create_dir_all(dir.join("bad")).unwrap();
    std::fs::write(
        dir.join("good/good.spec"),
        "Name: good\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\n%description\nd\n%files\n",
    )
    .unwrap();
    std::fs::write(dir.join("bad/bad.spec"), "Name: bad\n%if 1\n").unwrap();
    let results = parse_tree(&dir, &ParseOptions::default()).unwrap();
    assert_eq!(results.len(), 2);
    assert!(results[0]
        .1
        .as_ref()
        .is_err_and(|e| e.to_string().contains("bad.spec:2: Unclosed %if")));
    assert_eq!(results[1].1.as_ref().unwrap().name, "good");
}

#[test]
fn a_version_only_a_shell_could_give_is_an_error_naming_the_line() {
    // rpm runs the command; dbuild does not, and cannot guess a version.
    let text = "Name: x\nVersion: %(echo 1.0)\nRelease: 1\nSummary: s\nLicense: MIT\n%description\nd\n%files\n";
    let err = parse_spec_text(Path::new("shell.spec"), text, &ParseOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("shell.spec:2: Value comes only from %(...)"),
        "{err}"
    );
}

/// A tiny deterministic generator, so failures reproduce.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

const INSERTS: [&str; 12] = [
    "%{",
    "}",
    "%if 1\n",
    "%endif\n",
    "%else\n",
    "%(",
    "%[",
    "\\\n",
    "%define x %x\n",
    "%{expand:",
    "(",
    "\n%package -n",
];

/// How long one parse of a mutated spec may take before it counts as a hang
/// (a real spec parses in milliseconds).
const PARSE_DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn mutated_real_specs_never_panic_or_hang() {
    let dir = corpus();
    let mut specs: Vec<_> = dbuild_common::spec::find_specs(&dir).unwrap();
    specs.truncate(120);
    let mut rng = Lcg(42);
    // One parser thread; each input gets its own deadline, so a hang or a
    // panic fails at once, naming the spec and the mutation.
    let (inputs, parser_in) = mpsc::channel::<(PathBuf, String)>();
    let (parser_out, parsed) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let opts = ParseOptions::default();
        for (path, text) in parser_in {
            let _ = parse_spec_text(&path, &text, &opts);
            if parser_out.send(()).is_err() {
                return;
            }
        }
    });
    for rel in &specs {
        let path = dir.join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        for mutation in 0..15 {
            let t = mutate(&text, &mut rng);
            inputs.send((path.clone(), t.clone())).unwrap();
            match parsed.recv_timeout(PARSE_DEADLINE) {
                Ok(()) => {}
                Err(e) => {
                    let keep = std::env::temp_dir().join(
                        format!("dbuild-mutated-{}-{mutation}.spec", rel.display())
                            .replace('/', "_"),
                    );
                    let _ = std::fs::write(&keep, &t);
                    let what = match e {
                        RecvTimeoutError::Timeout => {
                            format!("did not finish within {PARSE_DEADLINE:?}")
                        }
                        RecvTimeoutError::Disconnected => "panicked".to_string(),
                    };
                    panic!(
                        "parsing mutation {mutation} of {} {what}; the input is in {}",
                        rel.display(),
                        keep.display()
                    );
                }
            }
        }
    }
}

/// One to four random cuts, insertions of rpm syntax, or truncations.
fn mutate(text: &str, rng: &mut Lcg) -> String {
    let mut t = text.to_string();
    for _ in 0..1 + rng.next(4) {
        let mut at = rng.next(t.len());
        while !t.is_char_boundary(at) {
            at -= 1;
        }
        match rng.next(3) {
            0 => t.truncate(at),
            1 => t.insert_str(at, INSERTS[rng.next(INSERTS.len())]),
            _ => {
                let mut end = (at + rng.next(40)).min(t.len());
                while !t.is_char_boundary(end) {
                    end -= 1;
                }
                t.replace_range(at..end, "");
            }
        }
    }
    t
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dbuild-parser-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
