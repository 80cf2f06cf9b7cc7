//! Real rpmbuild in real chroots (overlayfs over a debootstrapped builder root).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use dbuild_common::wire::FailureKind;
use dbuild_worker::job::{BuildError, BuildJob};
use dbuild_worker::publish::PublishError;
use dbuild_worker::sources::SourceError;
use sha2::{Digest, Sha256, Sha512};
use std::time::{Duration, Instant};
use support::{dep_spec, Env};

fn sha256_hex(path: &std::path::Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buildrequires_installed_host_invisible_rpms_published() {
    let env = Env::new().await;
    // Something only on the host: the chroot must not see it.
    let host_marker = format!("/var/tmp/dbuild-host-marker-{}", std::process::id());
    std::fs::write(&host_marker, "host").unwrap();
    let crate_dir = env!("CARGO_MANIFEST_DIR");

    let dep = env.spec(
        "testdep",
        &dep_spec("testdep", "/usr/share/testdep/only-in-testdep"),
        &[],
    );
    let r = env.run(&env.job("testdep", &dep, &[], "slot-0")).await;
    let files = r.result.unwrap_or_else(|e| {
        panic!(
            "testdep: {e}\n{}",
            std::fs::read_to_string(r.log.unwrap()).unwrap_or_default()
        )
    });
    let rpm = files
        .iter()
        .find(|f| f.rel_path.starts_with("stage/RPMS/noarch/testdep-1-1.ph5"))
        .expect("testdep binary RPM")
        .clone();
    assert!(files.iter().any(|f| f
        .rel_path
        .starts_with("stage/SRPMS/testdep-1-1.ph5.src.rpm")));
    // Published into the lease's incoming directory, never into stage/.
    for f in &files {
        assert!(
            f.incoming.starts_with("incoming/test-lease-"),
            "{}",
            f.incoming
        );
        assert_eq!(
            f.sha256,
            sha256_hex(&env.share.path().join(&f.incoming)),
            "{}",
            f.incoming
        );
        assert!(!env.share.path().join(&f.rel_path).exists());
    }
    env.accept(&files);

    let app = format!(
        r#"Name: testapp
Version: 2
Release: 1%{{?dist}}
Summary: proves its BuildRequires and isolation
License: MIT
BuildRequires: testdep
BuildRequires: gcc make
%description
test
%prep
%build
test "$(cat /usr/share/testdep/only-in-testdep)" = from-testdep
test ! -e {host_marker}
test ! -e {crate_dir}
test -z "$(ls -A /.dbuild-rpms/0 2>/dev/null)"
rpm -q testdep
# a private PID namespace: only this build's processes
test "$(ls /proc | grep -c '^[0-9]')" -lt 20
printf '#include <stdio.h>\nint main(void) {{ puts("hello"); return 0; }}\n' > hello.c
gcc -o hello hello.c
./hello
%install
mkdir -p %{{buildroot}}/usr/bin
install -m 755 hello %{{buildroot}}/usr/bin/testapp-hello
%files
/usr/bin/testapp-hello
"#
    );
    let app = env.spec("testapp", &app, &[]);
    let r = env
        .run(&env.job(
            "testapp",
            &app,
            std::slice::from_ref(&rpm.rel_path),
            "slot-0",
        ))
        .await;
    let log = env.log_of(&r);
    let files = r.result.unwrap_or_else(|e| panic!("testapp: {e}\n{log}"));
    assert!(
        files.iter().any(|f| f
            .rel_path
            .starts_with("stage/RPMS/x86_64/testapp-2-1.ph5.x86_64.rpm")),
        "{files:?}"
    );
    assert!(log.contains("hello"), "{log}");
    assert!(r.phases.rpmbuild > Duration::ZERO && r.phases.install > Duration::ZERO);
    // The base root was not modified.
    assert!(!env.cfg.base_root.join("usr/share/testdep").exists());
    std::fs::remove_file(&host_marker).unwrap();
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_buildrequires_fail_in_rpmbuild() {
    let env = Env::new().await;
    let spec = env.spec(
        "needy",
        "Name: needy\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\nBuildRequires: not-installed-anywhere\n%description\nd\n%files\n",
        &[],
    );
    let r = env.run(&env.job("needy", &spec, &[], "slot-0")).await;
    let log = env.log_of(&r);
    assert!(
        matches!(
            r.result,
            Err(BuildError::Rpmbuild {
                exit_status: Some(_),
                ..
            })
        ),
        "{:?}",
        r.result
    );
    assert!(log.contains("not-installed-anywhere"), "{log}");
    let reason = r.result.unwrap_err().to_string();
    assert!(
        reason.contains(
            "Failed build dependencies: not-installed-anywhere is needed by needy-1-1.noarch"
        ),
        "{reason}"
    );
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_build_gives_failure_and_log() {
    let env = Env::new().await;
    let spec = env.spec(
        "broken",
        "Name: broken\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\n%description\nd\n%build\necho this-is-the-broken-build >&2\nexit 3\n%files\n",
        &[],
    );
    let r = env.run(&env.job("broken", &spec, &[], "slot-0")).await;
    let err = r.result.as_ref().expect_err("must fail");
    assert!(
        matches!(
            err,
            BuildError::Rpmbuild {
                exit_status: Some(1),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.failure_kind(),
        FailureKind::Package,
        "the package's own failure: not worth another attempt"
    );
    assert!(err.to_string().contains("broken"), "{err}");
    assert!(
        err.to_string()
            .contains(": Bad exit status from /var/tmp/rpm-tmp."),
        "{err}"
    );
    assert!(err.to_string().ends_with("(%build)"), "{err}");
    let log_path = r.log.clone().unwrap();
    assert!(log_path.ends_with("stage/LOGS/broken/1.log"));
    let log = env.log_of(&r);
    assert!(log.contains("this-is-the-broken-build"), "{log}");
    assert!(
        log.contains("failed: package broken: rpmbuild exited with status 1"),
        "{log}"
    );
    assert!(
        !env.share.path().join("incoming").exists()
            && std::fs::read_dir(env.share.path().join("stage/SRPMS"))
                .unwrap()
                .next()
                .is_none(),
        "nothing published"
    );
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_hang_is_killed() {
    let mut env = Env::new().await;
    env.cfg.build_limits.silent = Duration::from_secs(3);
    let spec = env.spec(
        "hangs",
        "Name: hangs\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\n%description\nd\n%build\necho going-quiet\n(sleep 1000; echo never) &\nsleep 1000\n%files\n",
        &[],
    );
    let t = Instant::now();
    let r = env.run(&env.job("hangs", &spec, &[], "slot-0")).await;
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t.elapsed()
    );
    let err = r.result.as_ref().expect_err("must fail");
    assert!(err.to_string().contains("no output for 3s"), "{err}");
    assert_eq!(err.failure_kind(), FailureKind::Package);
    let log = env.log_of(&r);
    assert!(
        log.contains("going-quiet") && log.contains("silent-time limit"),
        "{log}"
    );
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_time_limit_kills() {
    let mut env = Env::new().await;
    env.cfg.build_limits.wall = Duration::from_secs(4);
    let spec = env.spec(
        "chatty",
        "Name: chatty\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\n%description\nd\n%build\nwhile true; do echo tick; sleep 0.5; done\n%files\n",
        &[],
    );
    let r = env.run(&env.job("chatty", &spec, &[], "slot-0")).await;
    let err = r.result.as_ref().expect_err("must fail");
    assert!(err.to_string().contains("wall-time limit of 4s"), "{err}");
    env.assert_clean();
}

const SOURCED: &str = "Name: sourced\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\nSource0: https://example.org/sourced-%{version}.tar\nPatch0: fix.patch\n%description\nd\n%prep\ntest -f %{SOURCE0}\ntest -f %{PATCH0}\n%files\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_verified_against_config_yaml() {
    let env = Env::new().await;
    let tarball: &[u8] = b"pretend tarball";
    let good = hex::encode(Sha512::digest(tarball));
    let wrong = hex::encode(Sha512::digest(b"something else"));

    // Right checksum: builds.
    let yaml = format!("sources:\n    - archive: sourced-1.tar\n      archive_sha512sum: {good}\n      skip_validation: true\n");
    let spec = env.spec(
        "sourced",
        SOURCED,
        &[
            ("config.yaml", yaml.as_bytes()),
            ("fix.patch", b"--- a\n+++ b\n"),
        ],
    );
    std::fs::write(env.share.path().join("SOURCES/sourced-1.tar"), tarball).unwrap();
    let r = env.run(&env.job("sourced", &spec, &[], "slot-0")).await;
    let log = env.log_of(&r);
    r.result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert!(log.contains("1 verified against config.yaml"), "{log}");

    // Wrong checksum: fails before rpmbuild, naming the file and both hashes.
    let yaml =
        format!("sources:\n    - archive: sourced-1.tar\n      archive_sha512sum: {wrong}\n");
    std::fs::write(env.share.path().join("SPECS/sourced/config.yaml"), yaml).unwrap();
    let r = env.run(&env.job("sourced", &spec, &[], "slot-0")).await;
    match &r.result {
        Err(BuildError::Sources(
            e @ SourceError::Checksum {
                file,
                expected,
                actual,
                ..
            },
        )) => {
            assert_eq!(
                (file.as_str(), expected, actual),
                ("sourced-1.tar", &wrong, &good)
            );
            let msg = e.to_string();
            assert!(
                msg.contains("sourced-1.tar") && msg.contains(&wrong) && msg.contains(&good),
                "{msg}"
            );
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert_eq!(r.phases.rpmbuild, Duration::ZERO);

    // Missing source: fails naming it.
    std::fs::remove_file(env.share.path().join("SOURCES/sourced-1.tar")).unwrap();
    let r = env.run(&env.job("sourced", &spec, &[], "slot-0")).await;
    let err = r.result.expect_err("must fail").to_string();
    assert!(err.contains("source sourced-1.tar not found"), "{err}");
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_builds_do_not_see_each_other() {
    let env = Env::new().await;
    // Each build stamps the clock (one kernel clock for both) when its watch
    // begins and ends; the stamps, not the test's own timing, show the
    // overlap, so a slow machine or another test's clean-up cannot fake or
    // hide it.
    let spec_for = |me: &str, other: &str| {
        format!(
            "Name: {me}\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nd\n%build\n\
             mkdir -p /var/lib/isolation && echo {me} > /var/lib/isolation/{me}\necho {me} > /tmp/{me}\necho watch-began $(date +%s%N)\n\
             for i in $(seq 1 40); do test -e /var/lib/isolation/{other} && exit 7; test -e /tmp/{other} && exit 8; test -e /usr/src/dbuild/SPECS/{other}.spec && exit 9; sleep 0.1; done\n\
             echo watch-ended $(date +%s%N)\n%files\n"
        )
    };
    let a = env.spec("iso-a", &spec_for("iso-a", "iso-b"), &[]);
    let b = env.spec("iso-b", &spec_for("iso-b", "iso-a"), &[]);
    let (ja, jb) = (
        env.job("iso-a", &a, &[], "slot-0"),
        env.job("iso-b", &b, &[], "slot-1"),
    );
    let (ra, rb) = tokio::join!(env.run(&ja), env.run(&jb));
    let la = env.log_of(&ra);
    ra.result.unwrap_or_else(|e| panic!("{e}\n{la}"));
    let lb = env.log_of(&rb);
    rb.result.unwrap_or_else(|e| panic!("{e}\n{lb}"));
    let stamp = |log: &str, what: &str| -> u128 {
        let line = log
            .lines()
            .find_map(|l| l.trim().strip_prefix(what))
            .unwrap_or_else(|| panic!("no {what} in\n{log}"));
        line.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{what} {line}: {e}"))
    };
    let (began_a, ended_a) = (stamp(&la, "watch-began "), stamp(&la, "watch-ended "));
    let (began_b, ended_b) = (stamp(&lb, "watch-began "), stamp(&lb, "watch-ended "));
    // Each watch saw nothing of the other although they ran at the same time.
    assert!(
        began_a < ended_b && began_b < ended_a,
        "the builds did not overlap: a {began_a}..{ended_a}, b {began_b}..{ended_b}"
    );
    assert!(!env.cfg.base_root.join("var/lib/isolation").exists());
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_kills_and_cleans_up() {
    let env = Env::new().await;
    let spec = env.spec(
        "forever",
        "Name: forever\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\n%description\nd\n%build\nwhile true; do echo tick; sleep 0.2; done\n%files\n",
        &[],
    );
    let (tx, rx) = tokio::sync::watch::channel(false);
    let job = env.job("forever", &spec, &[], "slot-0");
    let cfg = env.cfg.clone();
    let handle = tokio::spawn(async move { dbuild_worker::job::run_job(&cfg, &job, rx).await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    tx.send(true).unwrap();
    let r = tokio::time::timeout(Duration::from_secs(30), handle)
        .await
        .expect("stops promptly")
        .unwrap();
    assert!(
        matches!(r.result, Err(BuildError::Cancelled { .. })),
        "{:?}",
        r.result
    );
    dbuild_worker::chroot::removals_done().await;
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_goes_to_incoming_and_never_touches_stage() {
    let env = Env::new().await;
    let first = env.spec("owner", &dep_spec("owner", "/usr/share/owner/f"), &[]);
    let job = env.job("owner", &first, &[], "slot-0");
    let r = env.run(&job).await;
    let files = r.result.unwrap();
    assert_eq!(
        files[0].incoming,
        format!(
            "incoming/{}/RPMS/noarch/owner-1-1.ph5.noarch.rpm",
            job.lease_id
        )
    );
    // The scheduler accepted it: it is shown in stage/.
    env.accept(&files);
    let shown = env.share.path().join(&files[0].rel_path);
    let before = sha256_hex(&shown);

    // A rebuild of the same package (another lease) goes to its own
    // directory; what stage/ shows stays until the scheduler accepts it.
    std::thread::sleep(Duration::from_millis(1100)); // a different build time, so different bytes
    let again = env.job("owner", &first, &[], "slot-0");
    let r = env.run(&again).await;
    let rebuilt = r.result.unwrap();
    assert_ne!(before, rebuilt[0].sha256);
    assert_eq!(sha256_hex(&shown), before);
    assert_eq!(
        sha256_hex(&env.share.path().join(&rebuilt[0].incoming)),
        rebuilt[0].sha256
    );
    let names = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(env.share.path().join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&format!("incoming/{}/RPMS/noarch", again.lease_id)),
        ["owner-1-1.ph5.noarch.rpm"],
        "no temporary file left"
    );
    dbuild_worker::publish::remove_incoming(env.share.path(), &again.lease_id).unwrap();
    assert!(!env
        .share
        .path()
        .join("incoming")
        .join(&again.lease_id)
        .exists());

    // Another source package producing the same file name as one shown is refused at once.
    let thief = env.spec(
        "thief",
        "Name: thief\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nd\n\
         %package -n owner\nVersion: 1\nRelease: 1.ph5\nSummary: same name\n%description -n owner\nd\n%files -n owner\n",
        &[],
    );
    let mut job = env.job("thief", &thief, &[], "slot-0");
    job.macros.clear();
    let r = env.run(&job).await;
    match &r.result {
        Err(BuildError::Publish(e @ PublishError::Conflict { .. })) => {
            let msg = e.to_string();
            assert!(
                msg.contains("owner-1-1.ph5.noarch.rpm")
                    && msg.contains("owner-1-1.ph5.src.rpm")
                    && msg.contains("thief-1-1.src.rpm"),
                "{msg}"
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(sha256_hex(&shown), before, "the owner's RPM is untouched");
    assert!(
        !env.share
            .path()
            .join("incoming")
            .join(&job.lease_id)
            .exists(),
        "nothing of a conflicting build is published"
    );
    assert_eq!(names("stage/SRPMS"), ["owner-1-1.ph5.src.rpm"]);
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_crashed_worker_are_cleaned() {
    let env = Env::new().await;
    // A "crashed" build: a chroot with a process still running in it, its handle forgotten.
    let chroot = dbuild_worker::chroot::Chroot::create(
        &env.cfg.slots_dir(),
        "slot-0",
        &env.cfg.base_root,
        true,
    )
    .await
    .unwrap();
    let mut cmd = chroot
        .chrooted(&[], &["sleep".into(), "1000".into()])
        .unwrap();
    cmd.kill_on_drop(false);
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while dbuild_worker::mounts::processes_rooted_under(env.work.path()).is_empty() {
        assert!(Instant::now() < deadline, "the build never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::mem::forget(child);
    let removed = dbuild_worker::mounts::clean_leftovers(&env.cfg.slots_dir())
        .await
        .unwrap();
    assert_eq!(removed, 1);
    // The unshare process is gone too (its PID namespace died with the build).
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
    {
        assert!(Instant::now() < deadline, "unshare {pid} still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_mode_builds_without_touching_the_base() {
    let mut env = Env::new().await;
    env.cfg.overlay = false;
    let spec = env.spec(
        "copied",
        "Name: copied\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nd\n%build\necho x > /etc/written-by-copied\n%files\n",
        &[],
    );
    let r = env.run(&env.job("copied", &spec, &[], "slot-0")).await;
    let log = env.log_of(&r);
    r.result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert!(!env.cfg.base_root.join("etc/written-by-copied").exists());
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buildrequires_from_a_prebuilt_repository() {
    let mut env = Env::new().await;
    let dep = env.spec(
        "prebuilt-dep",
        &dep_spec("prebuilt-dep", "/usr/share/prebuilt-dep/f"),
        &[],
    );
    let files = env
        .run(&env.job("prebuilt-dep", &dep, &[], "slot-0"))
        .await
        .result
        .unwrap();
    let rpm = files
        .iter()
        .find(|f| f.rel_path.contains("/RPMS/"))
        .unwrap();
    // Move it off the share into a "PUBLISHRPMS"-like directory.
    let repo = tempfile::Builder::new()
        .prefix("dbuild-repo-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let name = std::path::Path::new(&rpm.rel_path).file_name().unwrap();
    std::fs::rename(env.share.path().join(&rpm.incoming), repo.path().join(name)).unwrap();
    env.cfg.prebuilt = vec![repo.path().to_path_buf()];
    let user = env.spec(
        "prebuilt-user",
        "Name: prebuilt-user\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\nBuildRequires: prebuilt-dep\n%description\nd\n%build\ngrep -q from-prebuilt-dep /usr/share/prebuilt-dep/f\n%files\n",
        &[],
    );
    let r = env
        .run(&env.job(
            "prebuilt-user",
            &user,
            std::slice::from_ref(&rpm.rel_path),
            "slot-0",
        ))
        .await;
    let log = env.log_of(&r);
    r.result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rootfs_from_a_directory_of_rpms() {
    let env = Env::new().await;
    let a = env.spec("seed-a", &dep_spec("seed-a", "/usr/share/seed/a"), &[]);
    let b = env.spec("seed-b", &dep_spec("seed-b", "/usr/share/seed/b"), &[]);
    let rpms = tempfile::Builder::new()
        .prefix("dbuild-seed-")
        .tempdir_in("/var/tmp")
        .unwrap();
    for (name, spec) in [("seed-a", &a), ("seed-b", &b)] {
        for f in env
            .run(&env.job(name, spec, &[], "slot-0"))
            .await
            .result
            .unwrap()
        {
            if f.rel_path.contains("/RPMS/") {
                let src = env.share.path().join(&f.incoming);
                std::fs::copy(&src, rpms.path().join(src.file_name().unwrap())).unwrap();
            }
        }
    }
    let dest_parent = tempfile::Builder::new()
        .prefix("dbuild-seeded-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let dest = dest_parent.path().join("root");
    let spec = dbuild_worker::rootfs::RootfsSpec {
        from_rpms: Some(rpms.path().to_path_buf()),
        ..Default::default()
    };
    let report = dbuild_worker::rootfs::ensure(&spec, &dest).await.unwrap();
    assert!(!report.reused && report.bytes > 0);
    assert_eq!(
        std::fs::read_to_string(dest.join("usr/share/seed/b")).unwrap(),
        "from-seed-b\n"
    );
    let q = std::process::Command::new("rpm")
        .arg("--root")
        .arg(&dest)
        .args(["--dbpath", "/var/lib/rpm", "-qa"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&q.stdout);
    assert!(
        listed.contains("seed-a-1-1.ph5") && listed.contains("seed-b-1-1.ph5"),
        "{listed}"
    );
    assert!(
        dbuild_worker::rootfs::ensure(&spec, &dest)
            .await
            .unwrap()
            .reused
    );
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chroot_that_cannot_be_made_fails_cleanly() {
    let mut env = Env::new().await;
    env.cfg.overlay = false;
    env.cfg.base_root = env.work.path().join("no-such-base");
    let spec = env.spec("orphaned", &dep_spec("orphaned", "/usr/share/o"), &[]);
    let r = env.run(&env.job("orphaned", &spec, &[], "slot-0")).await;
    let err = r.result.as_ref().expect_err("must fail").to_string();
    assert!(err.contains("no-such-base"), "{err}");
    assert!(
        env.log_of(&r).contains("failed: copying base root"),
        "the log says why"
    );
    env.assert_clean();
}

/// `%build` prints the network interfaces it sees and whether loopback
/// answers (a refused connection on 127.0.0.1 means it is up; a down one is
/// unreachable), on lines of their own (stdout and stderr interleave in the log).
const NET_PROBE: &str = "%build\n\
    awk -F: 'NR > 2 { gsub(/ /, \"\", $1); print \"IFACE=\" $1 }' /proc/net/dev\n\
    bash -c 'exec 3<>/dev/tcp/127.0.0.1/9' 2>&1 | sed 's/.*: /LOOPBACK=/' || true\n\
    %files\n";

fn probed<'a>(log: &'a str, key: &str) -> std::collections::BTreeSet<&'a str> {
    log.lines().filter_map(|l| l.strip_prefix(key)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_have_only_loopback_unless_the_spec_requires_the_network() {
    let env = Env::new().await;
    let head = "Version: 1\nRelease: 1\nSummary: s\nLicense: MIT\n%description\nd\n";
    let offline = env.spec("offline", &format!("Name: offline\n{head}{NET_PROBE}"), &[]);
    let r = env.run(&env.job("offline", &offline, &[], "slot-0")).await;
    r.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    let log = env.log_of(&r);
    assert!(
        log.contains("network: none (a private network namespace with only loopback)"),
        "{log}"
    );
    assert_eq!(
        probed(&log, "IFACE="),
        ["lo"].into(),
        "only loopback: {log}"
    );
    assert_eq!(
        probed(&log, "LOOPBACK="),
        ["Connection refused"].into(),
        "loopback is up: {log}"
    );

    let online = env.spec(
        "online",
        &format!("%define network_required 1\nName: online\n{head}{NET_PROBE}"),
        &[],
    );
    let r = env.run(&env.job("online", &online, &[], "slot-0")).await;
    r.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    let log = env.log_of(&r);
    assert!(
        log.contains("network: the spec defines network_required"),
        "{log}"
    );
    let host_dev = std::fs::read_to_string("/proc/net/dev").unwrap();
    let host: std::collections::BTreeSet<&str> = host_dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(probed(&log, "IFACE="), host, "the host's interfaces: {log}");
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_mode_macro_files_and_source_directories() {
    let mut env = Env::new().await;
    let extra_sources = tempfile::tempdir().unwrap();
    std::fs::write(
        extra_sources.path().join("data.txt"),
        "from the sources directory\n",
    )
    .unwrap();
    env.cfg.sources = vec![extra_sources.path().to_path_buf()];
    std::fs::create_dir_all(env.share.path().join("MACROS")).unwrap();
    std::fs::write(
        env.share.path().join("MACROS/00-macros.test"),
        "%test_greeting %{expand:\\\nhello from\n  a macro file}\n",
    )
    .unwrap();
    let spec = env.spec(
        "checked",
        "Name: checked\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nSource0: data.txt\n%description\nd\n\
         %prep\ncp %{SOURCE0} .\n%build\necho 'greeting: %{test_greeting}'\n%check\necho check-section-ran\n%files\n",
        &[],
    );
    let mut job = env.job("checked", &spec, &[], "slot-0");
    job.check = false;
    job.macro_files = vec!["MACROS/00-macros.test".into()];
    let r = env.run(&job).await;
    r.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    let log = env.log_of(&r);
    assert!(
        log.contains("hello from\n  a macro file\n"),
        "rpmbuild loaded the macro file: {log}"
    );
    assert!(log.contains("rpmbuild -ba --nocheck"), "{log}");
    assert!(
        !log.contains("check-section-ran"),
        "%check is skipped by default: {log}"
    );

    job.check = true;
    job.attempt = 2;
    job.log_path = "stage/LOGS/checked/2.log".into();
    let r = env.run(&job).await;
    r.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    let log = env.log_of(&r);
    assert!(log.contains("check-section-ran"), "{log}");

    // Not in the spec directory nor in any source directory: named, with where it was looked for.
    env.cfg.sources.clear();
    job.attempt = 3;
    job.log_path = "stage/LOGS/checked/3.log".into();
    let r = env.run(&job).await;
    let err = r.result.expect_err("data.txt is nowhere").to_string();
    assert!(
        err.contains("source data.txt not found") && err.contains("SOURCES"),
        "{err}"
    );
    env.assert_clean();
}

/// `%build` reports whether fsync of a pipe succeeds (the kernel says EINVAL;
/// the no-sync filter answers success without running it) and the seccomp
/// mode of the build's processes.
const SYNC_PROBE: &str = "%build\n\
    perl -e 'use IO::Handle; pipe(R, W); print \"FSYNC=\", (W->sync ? \"skipped\" : \"ran: $!\"), \"\\n\"'\n\
    sed -n 's/^Seccomp:[[:space:]]*/SECCOMP=/p' /proc/self/status\n\
    %files\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_skip_fsync_unless_told_otherwise() {
    let mut env = Env::new().await;
    let head = "Version: 1\nRelease: 1\nSummary: s\nLicense: MIT\n%description\nd\n";
    let spec = env.spec("syncs", &format!("Name: syncs\n{head}{SYNC_PROBE}"), &[]);
    let r = env.run(&env.job("syncs", &spec, &[], "slot-0")).await;
    r.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    let log = env.log_of(&r);
    assert_eq!(probed(&log, "FSYNC="), ["skipped"].into(), "{log}");
    assert_eq!(
        probed(&log, "SECCOMP="),
        ["2"].into(),
        "a seccomp filter is on: {log}"
    );

    env.cfg.build_fsync = true;
    let job = BuildJob {
        log_path: "stage/LOGS/syncs/fsync.log".into(),
        ..env.job("syncs", &spec, &[], "slot-0")
    };
    let r = env.run(&job).await;
    r.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    let log = env.log_of(&r);
    assert_eq!(
        probed(&log, "FSYNC="),
        ["ran: Invalid argument"].into(),
        "{log}"
    );
    assert_eq!(probed(&log, "SECCOMP="), ["0"].into(), "{log}");
    env.assert_clean();
}
