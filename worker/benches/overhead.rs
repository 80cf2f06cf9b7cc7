//! The worker's overhead per package outside rpmbuild, for a package with ten
//! BuildRequires: lease → chroot ready, install the 10 RPMs, stage sources,
//! publish, clean up. Compared with doing what Photon does for every package:
//! installing a ~100-package toolchain into a fresh chroot.
//!
//! Run: `cargo bench -p dbuild-worker --bench overhead` (or, without a release
//! build, `cargo test -p dbuild-worker --bench overhead`). Needs root,
//! debootstrap and the network to a Debian mirror the first time (the builder
//! root is cached in /var/tmp). `DBUILD_BENCH_ROUNDS` (default 15) sets the rounds,
//! `DBUILD_BENCH_TOOLCHAIN` (default 104) the size of the Photon-style toolchain (0: skip it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use dbuild_worker::chroot::Chroot;
use dbuild_worker::job::Phases;
use std::time::{Duration, Instant};
use support::Env;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// One spec making ten noarch RPMs `bench-dep-0..9`, each shipping a few files.
fn deps_spec() -> String {
    let mut s = String::from("Name: benchdeps\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nd\n%install\n");
    for i in 0..10 {
        s.push_str(&format!("mkdir -p %{{buildroot}}/usr/share/bench-dep-{i}\nfor f in a b c d e; do head -c 20000 /dev/urandom > %{{buildroot}}/usr/share/bench-dep-{i}/$f; done\n"));
    }
    for i in 0..10 {
        s.push_str(&format!("%package -n bench-dep-{i}\nSummary: dep {i}\n%description -n bench-dep-{i}\nd\n%files -n bench-dep-{i}\n/usr/share/bench-dep-{i}\n"));
    }
    s
}

const PKG_SPEC: &str = "Name: bench-pkg\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n\
BuildRequires: bench-dep-0 bench-dep-1 bench-dep-2 bench-dep-3 bench-dep-4 bench-dep-5 bench-dep-6 bench-dep-7 bench-dep-8 bench-dep-9\n\
Source0: bench-pkg-1.tar\n%description\nd\n%install\nmkdir -p %{buildroot}/usr/share/bench-pkg\ncp %{SOURCE0} %{buildroot}/usr/share/bench-pkg/\n\
%files\n/usr/share/bench-pkg\n";

/// A spec (run inside a chroot of the base root) that repackages the files of
/// the `n` largest Debian packages of the root as `n` RPMs: a toolchain of the
/// size Photon installs into every chroot.
fn toolchain_spec(packages: &[String]) -> String {
    let mut s = String::from(
        "Name: tc\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nAutoReqProv: no\n\
         %define _binary_payload w0.ufdio\n%define __os_install_post %{nil}\n%define _build_id_links none\n%define debug_package %{nil}\n\
         %description\nd\n%install\nrm -f /tmp/claimed; touch /tmp/claimed\n",
    );
    for p in packages {
        s.push_str(&format!(
            "dpkg -L {p} | while IFS= read -r f; do if [ -f \"$f\" ] || [ -L \"$f\" ]; then if [ ! -d \"$f\" ]; then printf '%s\\n' \"$f\"; fi; fi; done \
             | grep -v '[][ *?%{{}}\"\\\\]' | grep -vxFf /tmp/claimed > {p}.list || true\n\
             cat {p}.list >> /tmp/claimed\n\
             if [ -s {p}.list ]; then tar -cf - -T {p}.list 2>/dev/null | tar -xf - -C %{{buildroot}}; else echo /.tc-{p} > {p}.list; touch %{{buildroot}}/.tc-{p}; fi\n"
        ));
    }
    for p in packages {
        s.push_str(&format!("%package -n tc-{p}\nSummary: {p}\n%description -n tc-{p}\nd\n%files -n tc-{p} -f {p}.list\n"));
    }
    s
}

async fn run() {
    let rounds: usize = std::env::var("DBUILD_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let mut env = Env::new().await;
    // DBUILD_BUILD_FSYNC=1: let the builds' syncs reach the disk, as `dbuild-worker --build-fsync` does
    // (and, like its flag, not for a false value).
    env.cfg.build_fsync = std::env::var("DBUILD_BUILD_FSYNC")
        .is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "no" | "off"));

    // Ten BuildRequires.
    let deps = env.spec("benchdeps", &deps_spec(), &[]);
    let r = env.run(&env.job("benchdeps", &deps, &[], "slot-0")).await;
    // Accepted (as the scheduler would): in stage/, where the lease's install list points.
    let dep_rpms: Vec<String> = env
        .accept(&r.result.unwrap())
        .into_iter()
        .filter(|p| p.contains("/bench-dep-"))
        .collect();
    assert_eq!(dep_rpms.len(), 10);

    let pkg = env.spec(
        "bench-pkg",
        PKG_SPEC,
        &[("bench-pkg-1.tar", &[7u8; 100_000])],
    );
    let mut all: Vec<Phases> = Vec::new();
    for i in 0..rounds {
        let mut job = env.job("bench-pkg", &pkg, &dep_rpms, "slot-0");
        job.attempt = i as u32 + 1;
        job.log_path = format!("stage/LOGS/bench-pkg/{}.log", i + 1);
        let r = env.run(&job).await;
        r.result.unwrap_or_else(|e| panic!("{e}"));
        all.push(r.phases);
    }
    env.assert_clean();
    let col = |f: fn(&Phases) -> Duration| median(all.iter().map(f).collect());
    let overheads: Vec<Duration> = all.iter().map(Phases::overhead).collect();
    let ours = median(overheads.clone());
    println!("per-package overhead outside rpmbuild, package with 10 BuildRequires, {rounds} rounds (medians):");
    println!(
        "  chroot {}  install(10 RPMs) {}  sources {}  publish {}  cleanup {}  | rpmbuild itself {}",
        secs(col(|p| p.chroot)),
        secs(col(|p| p.install)),
        secs(col(|p| p.sources)),
        secs(col(|p| p.publish)),
        secs(col(|p| p.cleanup)),
        secs(col(|p| p.rpmbuild))
    );
    println!(
        "  overhead: median {}  min {}  max {}  (target < 1 s)",
        secs(ours),
        secs(*overheads.iter().min().unwrap()),
        secs(*overheads.iter().max().unwrap())
    );

    // What one private namespace with the overlay, proc, /dev, /tmp mounts costs
    // (paid once by the install step and once by rpmbuild; counted in those phases).
    let chroot = Chroot::create(&env.cfg.slots_dir(), "ns-probe", &env.cfg.base_root, true)
        .await
        .unwrap();
    let mut ns = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let st = chroot
            .chrooted(&[], &["true".into()])
            .unwrap()
            .output()
            .await
            .unwrap()
            .status;
        assert!(st.success());
        ns.push(t.elapsed());
    }
    chroot.remove().await.unwrap();
    println!(
        "  namespace + mounts + chroot + exec `true`: median {}",
        secs(median(ns))
    );

    // Photon's way: install a toolchain of ~100 RPMs into a fresh chroot for every package.
    let n: usize = std::env::var("DBUILD_BENCH_TOOLCHAIN")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(104);
    if n == 0 {
        return; // DBUILD_BENCH_TOOLCHAIN=0: no comparison
    }
    let out = std::process::Command::new("chroot")
        .arg(&env.cfg.base_root)
        .args(["dpkg-query", "-W", "-f", "${Installed-Size} ${Package}\\n"])
        .output()
        .unwrap();
    let mut sized: Vec<(u64, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(s, p)| (s.parse().unwrap_or(0), p.to_string()))
        })
        .collect();
    sized.sort_by(|a, b| b.cmp(a));
    let packages: Vec<String> = sized.into_iter().take(n).map(|(_, p)| p).collect();
    let t = Instant::now();
    let tc = env.spec("tc", &toolchain_spec(&packages), &[]);
    let mut job = env.job("tc", &tc, &[], "slot-0");
    job.macros.clear();
    let r = env.run(&job).await;
    let tc_rpms: Vec<String> = env
        .accept(&r.result.unwrap_or_else(|e| panic!("{e}")))
        .into_iter()
        .filter(|p| p.contains("/RPMS/"))
        .collect();
    let bytes: u64 = tc_rpms
        .iter()
        .map(|p| std::fs::metadata(env.share.path().join(p)).unwrap().len())
        .sum();
    println!(
        "toolchain stand-in: {} RPMs, {:.0} MiB uncompressed payloads (repackaged from the builder root in {})",
        tc_rpms.len(),
        bytes as f64 / 1048576.0,
        secs(t.elapsed())
    );
    let tc_dir = env
        .share
        .path()
        .join(&tc_rpms[0])
        .parent()
        .unwrap()
        .to_path_buf();
    let mut photon = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        let chroot = Chroot::create(
            &env.cfg.slots_dir(),
            &format!("photon-{i}"),
            &env.cfg.base_root,
            true,
        )
        .await
        .unwrap();
        let binds = [dbuild_worker::mounts::Bind {
            host: tc_dir.clone(),
            target: "/.tc".into(),
            read_only: true,
        }];
        let script = "set -e; mkdir -p /var/tmp/tcroot; rpm --root /var/tmp/tcroot --initdb; \
                      rpm --root /var/tmp/tcroot -i --nodeps --noscripts --nosignature /.tc/tc-*.rpm";
        let mut cmd = chroot
            .chrooted(&binds, &["/bin/sh".into(), "-c".into(), script.into()])
            .unwrap();
        let out = cmd.output().await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        chroot.remove().await.unwrap();
        photon.push(t.elapsed());
    }
    env.assert_clean();
    let theirs = median(photon.clone());
    println!("Photon-style fresh toolchain install per package ({} RPMs, no scriptlets): median {} (runs {:?})", tc_rpms.len(), secs(theirs), photon.iter().map(|d| secs(*d)).collect::<Vec<_>>());
    println!(
        "ratio: Photon-style / dbuild overhead = {:.1}x",
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a listing
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}
