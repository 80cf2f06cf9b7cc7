#![allow(clippy::unwrap_used)]

use super::*;
use std::time::Duration;

/// `S` with `args` as its command line and `sources` below them.
fn load_with<S: Layered>(args: &[&str], sources: Sources) -> Result<S, SettingsError> {
    let matches = S::augment_args(clap::Command::new("test"))
        .try_get_matches_from(std::iter::once("test").chain(args.iter().copied()))
        .unwrap();
    load(&S::from_arg_matches(&matches).unwrap(), &matches, sources)
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn toml_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("settings.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn scheduler(args: &[&str], file: Option<PathBuf>, env: &[(&str, &str)]) -> SchedulerSettings {
    try_scheduler(args, file, env).unwrap()
}

fn try_scheduler(
    args: &[&str],
    file: Option<PathBuf>,
    env: &[(&str, &str)],
) -> Result<SchedulerSettings, SettingsError> {
    let sources = Sources {
        file,
        env: vars(env),
        ..Sources::default()
    };
    load_with(args, sources)
}

#[test]
fn defaults_are_clap_defaults() {
    let s = SchedulerSettings::default();
    assert_eq!(s.policy.lease_ttl, Span::from_secs(90));
    assert_eq!(s.policy.max_build_time, Span::from_secs(24 * 3600));
    assert_eq!(
        (s.state_sync, s.listen.as_str()),
        (StateSync::Full, "127.0.0.1:8080")
    );
    assert_eq!((s.spec.arch.as_str(), s.build_dir), (DEFAULT_ARCH, None));
    let w = WorkerSettings::default();
    assert_eq!(w.connect_timeout, Span::from_secs(300));
    assert_eq!((w.build.slots, w.build.chroot_mode), (1, ChrootMode::Auto));
    assert_eq!(w.build.build_timeout, Span::from_secs(4 * 3600));
    assert_eq!(w, load_with(&[], Sources::default()).unwrap());
}

#[test]
fn each_layer_wins_over_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    // Options of a group (max_attempts, lease_ttl, check) and of the type itself (keep_history).
    let file = toml_file(
        &dir,
        "max_attempts = 4\nkeep_history = 40\nlease_ttl = 120\ncheck = false\n",
    );
    let s = scheduler(&[], None, &[]);
    assert_eq!((s.policy.max_attempts, s.keep_history), (3, 200));
    let s = scheduler(&[], Some(file.clone()), &[]);
    assert_eq!((s.policy.max_attempts, s.keep_history), (4, 40));
    assert_eq!(s.policy.lease_ttl, Span::from_secs(120));
    let env = [
        ("DBUILD_MAX_ATTEMPTS", "5"),
        ("DBUILD_KEEP_HISTORY", "50"),
        ("DBUILD_LEASE_TTL", "1500ms"),
        ("DBUILD_CHECK", "true"),
    ];
    let s = scheduler(&[], Some(file.clone()), &env);
    assert_eq!((s.policy.max_attempts, s.keep_history), (5, 50));
    assert_eq!(s.policy.lease_ttl.get(), Duration::from_millis(1500));
    assert!(s.spec.check);
    let flags = [
        "--max-attempts",
        "6",
        "--keep-history",
        "60",
        "--lease-ttl",
        "2m",
    ];
    let s = scheduler(&flags, Some(file), &env);
    assert_eq!((s.policy.max_attempts, s.keep_history), (6, 60));
    assert_eq!(s.policy.lease_ttl, Span::from_secs(120));
    // A flag left at its default does not hide what a lower layer says.
    assert!(s.spec.check);
}

#[test]
fn lists_come_comma_separated_from_the_environment() {
    let env = [
        ("DBUILD_DEFINES", "dist .ph5, with_check 0"),
        ("DBUILD_ASSUME_PROVIDED", "a,b,"),
        ("DBUILD_MACRO_FILES", ""),
        // Not the scheduler's: another binary's option, the log filter.
        ("DBUILD_WORKERS", "many"),
        ("DBUILD_LOG", "debug"),
    ];
    let s = scheduler(&["--macros-file", "/m"], None, &env);
    assert_eq!(s.spec.defines, ["dist .ph5", "with_check 0"]);
    assert_eq!(s.policy.assume_provided, ["a", "b"]);
    // The flag wins over the (empty) variable.
    assert_eq!(s.spec.macro_files, [PathBuf::from("/m")]);
    let sources = Sources {
        env: vars(&[("DBUILD_SOURCES", "/x,/y"), ("DBUILD_NO_PREFETCH", "1")]),
        ..Sources::default()
    };
    let w: WorkerSettings = load_with(&[], sources).unwrap();
    assert_eq!(w.build.sources, [PathBuf::from("/x"), PathBuf::from("/y")]);
    assert!(w.build.no_prefetch);
}

#[test]
fn unknown_keys_in_the_file_are_named_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = toml_file(&dir, "max_attempts = 4\nmax_atempts = 5\n[policy]\nx = 1\n");
    let e = try_scheduler(&[], Some(file.clone()), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_atempts, policy"), "{e}");
    assert!(e.contains(&file.display().to_string()), "{e}");
    let e = try_scheduler(&[], Some(dir.path().join("none.toml")), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("none.toml") && e.contains("no such file"), "{e}");
}

#[test]
fn a_wrong_value_names_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = toml_file(&dir, "state_sync = \"sometimes\"\n");
    let e = try_scheduler(&[], Some(file.clone()), &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&file.display().to_string()) && e.contains("sometimes"),
        "{e}"
    );
    let e = try_scheduler(&[], None, &[("DBUILD_MAX_ATTEMPTS", "many")])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("DBUILD_MAX_ATTEMPTS: ") && e.contains("many"),
        "{e}"
    );
    let e = try_scheduler(&[], None, &[("DBUILD_MAX_WAIT", "forever")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("DBUILD_MAX_WAIT") && e.contains("bad duration"),
        "{e}"
    );
}

#[test]
fn written_settings_read_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = WorkerSettings {
        scheduler: Some("http://127.0.0.1:1234".into()),
        worker_name: Some("007".into()),
        grace: Span(Duration::from_millis(2500)),
        ..WorkerSettings::default()
    };
    w.build.sources = vec!["/src/a".into(), "/src/b".into()];
    w.build.chroot_mode = ChrootMode::Copy;
    w.build.no_prefetch = true;
    let file = toml_file(&dir, &to_toml(&w).unwrap());
    let sources = Sources {
        file: Some(file),
        ..Sources::default()
    };
    assert_eq!(load_with::<WorkerSettings>(&[], sources).unwrap(), w);

    let mut s = SchedulerSettings {
        build_dir: Some("/share/b1".into()),
        token_file: Some("/share/token".into()),
        restart_finished: true,
        state_sync: StateSync::Normal,
        ..SchedulerSettings::default()
    };
    s.spec.defines = vec!["dist .ph5".into()];
    s.spec.check = true;
    s.policy.retry_package_failures = true;
    s.policy.max_build_time = Span::from_secs(3600);
    let file = toml_file(&dir, &to_toml(&s).unwrap());
    assert_eq!(scheduler(&[], Some(file), &[]), s);
}

#[test]
fn with_check_is_the_last_define_in_check_mode() {
    let mut spec = SpecOptions {
        defines: vec!["with_check 0".into(), "dist .ph5".into()],
        ..SpecOptions::default()
    };
    assert_eq!(spec.effective_defines(), ["with_check 0", "dist .ph5"]);
    spec.check = true;
    assert_eq!(
        spec.effective_defines(),
        ["with_check 0", "dist .ph5", "with_check 1"]
    );
}

#[test]
fn a_missing_required_option_says_how_to_give_it() {
    let s = scheduler(&[], None, &[]);
    let e = required(&s.build_dir, "build_dir").unwrap_err().to_string();
    assert_eq!(
        e,
        "missing --build-dir: give it as a flag, as `build_dir` in the --config file or as DBUILD_BUILD_DIR"
    );
}
