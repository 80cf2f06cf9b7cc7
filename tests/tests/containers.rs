//! The real images in real containers: `docker/build-images` builds both
//! images FROM a debootstrap base (made with `docker import`, cached by a key
//! of its inputs), then one scheduler and two workers, sharing one network
//! namespace with only loopback (held by a pause container) and a volume as
//! the NFS share, build `examples/SPECS` plus two test-only specs
//! (`tests/specs/`). While e2e-slow builds, the worker building it is killed
//! (`docker kill`): the other one builds it after its lease expires; then the
//! scheduler is killed mid-build and a new one started on the same volume:
//! the build resumes from the SQLite state and nothing built is rebuilt.
//! Every package is built exactly once successfully, and every RPM on the
//! share is readable by `rpm -qp` and has the sha256 the scheduler recorded.
//!
//! Needs root, a Docker engine, debootstrap and rpm. Without an engine the
//! test says SKIPPED loudly and passes, unless DBUILD_E2E_DOCKER=require
//! (what `.ci/run` sets where an engine answers). DBUILD_E2E_PROFILE chooses
//! the cargo profile of the binaries in the images (default `dev`: the
//! ones `cargo test --workspace` has just built).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dbuild_common::wire::{PackageDetail, PackageInfo, Summary};
use dbuild_e2e::cmd::{bash, check, run, wait_for};
use dbuild_e2e::docker::{self, docker, Made};
use dbuild_e2e::netns::Netns;
use dbuild_e2e::{base, repo};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SCHEDULER_PORT: u16 = 8080;
const WORKER_PORTS: [u16; 2] = [8081, 8082];
const SLOW: &str = "e2e-slow";
const AFTER: &str = "e2e-after";
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(200);

/// The security flags docker/README.md gives for the worker: the first line
/// there that starts with `--cap-drop ALL` (so the test runs what the docs say).
fn worker_security_flags() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("docker/README.md")).unwrap();
    let line = readme
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("--cap-drop ALL"))
        .expect("docker/README.md lists the worker's flags on a line starting with --cap-drop ALL");
    line.split_whitespace()
        .filter(|w| *w != "\\")
        .map(String::from)
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The containers' shared network namespace, and calls into it.
struct Pod {
    ns: Netns,
}

impl Pod {
    fn package(&self, name: &str) -> Option<PackageDetail> {
        self.ns
            .get_json(
                SCHEDULER_PORT,
                &format!("/v1/packages/{name}"),
                HTTP_TIMEOUT,
            )
            .ok()
    }

    fn packages(&self) -> Vec<PackageInfo> {
        self.ns
            .get_json(SCHEDULER_PORT, "/v1/packages", HTTP_TIMEOUT)
            .unwrap()
    }

    fn summary(&self) -> Option<Summary> {
        self.ns
            .get_json(SCHEDULER_PORT, "/v1/summary", HTTP_TIMEOUT)
            .ok()
    }

    fn status(&self, port: u16, path: &str) -> Option<u16> {
        self.ns.get(port, path, HTTP_TIMEOUT).ok().map(|(s, _)| s)
    }

    /// Waits until `GET path` on `port` answers 200, failing early if `container` stopped.
    fn wait_ready(&self, container: &str, port: u16, path: &str) {
        wait_for(
            &format!("{container} to answer 200 on {path}"),
            Duration::from_secs(120),
            POLL,
            || {
                let (running, code) = docker::state(container).unwrap();
                assert!(
                    running,
                    "{container} exited ({code}):\n{}",
                    docker::logs(container, 40)
                );
                (self.status(port, path) == Some(200)).then_some(())
            },
        )
        .unwrap();
    }
}

/// `docker run -d` in the pod's network namespace with the share mounted.
fn start(
    name: &str,
    pod: &str,
    share: &str,
    extra: &[String],
    image: &str,
    args: &[String],
) -> String {
    let mut a: Vec<String> = [
        "run",
        "-d",
        "--name",
        name,
        "--network",
        &format!("container:{pod}"),
        "--read-only",
        "-v",
        &format!("{share}:/share"),
    ]
    .map(String::from)
    .to_vec();
    a.extend_from_slice(extra);
    a.push(image.into());
    a.extend_from_slice(args);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    docker(&a, Duration::from_secs(120)).unwrap();
    name.to_string()
}

fn scheduler_args() -> Vec<String> {
    [
        "--build-dir",
        "/share/b1",
        "--listen",
        &format!("127.0.0.1:{SCHEDULER_PORT}"),
        "--lease-ttl",
        "10s",
        "--define",
        "dist .e2e",
    ]
    .map(String::from)
    .to_vec()
}

fn worker_args(name: &str, port: u16) -> Vec<String> {
    [
        "--scheduler",
        &format!("http://127.0.0.1:{SCHEDULER_PORT}"),
        "--token-file",
        "/share/b1/state/token",
        "--share",
        "/share/b1",
        "--name",
        name,
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--chroot-mode",
        "overlay",
    ]
    .map(String::from)
    .to_vec()
}

fn count(history: &PackageDetail, kind: &str) -> usize {
    history.history.iter().filter(|e| e.kind == kind).count()
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn containers_build_through_a_killed_worker_and_a_restarted_scheduler() {
    let engine = match docker::engine() {
        Ok(v) => v,
        Err(why) => {
            let required = std::env::var("DBUILD_E2E_DOCKER").is_ok_and(|v| v == "require");
            assert!(
                !required,
                "DBUILD_E2E_DOCKER=require but no Docker engine answers: {why}"
            );
            eprintln!("\n{0}\nSKIPPED: the container end-to-end test: no Docker engine answers ({why})\n{0}\n", "!".repeat(78));
            return;
        }
    };
    eprintln!("e2e: Docker engine {engine}");
    let started = Instant::now();

    // The base image (cached) and both images.
    let mirror = std::env::var("DBUILD_TEST_MIRROR")
        .unwrap_or_else(|_| dbuild_worker::rootfs::DEFAULT_MIRROR.into());
    let base = base::ensure(dbuild_worker::rootfs::DEFAULT_SUITE, &mirror).unwrap();
    eprintln!(
        "e2e: base image {} {} in {:.1}s",
        base.image,
        if base.reused { "reused" } else { "made" },
        base.secs
    );
    let mut made = Made::new();
    let tag = made.suffix.clone();
    let (sched_image, worker_image) = (
        format!("dbuild-scheduler:{tag}"),
        format!("dbuild-worker:{tag}"),
    );
    made.image(&sched_image);
    made.image(&worker_image);
    let profile = std::env::var("DBUILD_E2E_PROFILE").unwrap_or_else(|_| "dev".into());
    let t = Instant::now();
    let out = run(
        Command::new(repo().join("docker/build-images")).args([
            "--base",
            &base.image,
            "--tag",
            &tag,
            "--profile",
            &profile,
            "--network",
            "none",
        ]),
        Duration::from_secs(2400),
    )
    .unwrap();
    let tail: Vec<&str> = out.stderr.lines().rev().take(40).collect();
    assert!(
        out.ok(),
        "docker/build-images failed ({}):\n{}",
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [sched_image.as_str(), worker_image.as_str()],
        "build-images prints the two image references"
    );
    let images_secs = t.elapsed().as_secs_f64();
    eprintln!("e2e: images built in {images_secs:.1}s (profile {profile})");

    // The share: examples/SPECS and the test-only specs.
    let share = made.volume("share").unwrap();
    let works = [
        made.volume("work-a").unwrap(),
        made.volume("work-b").unwrap(),
    ];
    let (examples, test_specs) = (repo().join("examples/SPECS"), repo().join("tests/specs"));
    check(
        &mut bash(
            r#"tar -c -C "$1" . -C "$2" . | docker run --rm -i --network none -v "$3:/share" "$4" sh -c 'mkdir -p /share/b1/SPECS && tar -x -C /share/b1/SPECS'"#,
            &[examples.as_os_str(), test_specs.as_os_str(), share.as_ref(), base.image.as_ref()],
        ),
        Duration::from_secs(300),
    )
    .unwrap();

    // The pod: a pause container holds a network namespace with only loopback.
    let pod = made.container("pod");
    docker(
        &[
            "run",
            "-d",
            "--name",
            &pod,
            "--network",
            "none",
            "--init",
            &base.image,
            "sleep",
            "infinity",
        ],
        Duration::from_secs(120),
    )
    .unwrap();
    let pod_ns = Pod {
        ns: Netns::of_pid(docker::pid(&pod).unwrap()),
    };

    let t_build = Instant::now();
    let sched1 = made.container("scheduler-1");
    start(&sched1, &pod, &share, &[], &sched_image, &scheduler_args());
    pod_ns.wait_ready(&sched1, SCHEDULER_PORT, "/readyz");

    let security = worker_security_flags();
    eprintln!("e2e: worker flags {}", security.join(" "));
    let workers: Vec<String> = ["worker-a", "worker-b"]
        .iter()
        .map(|r| made.container(r))
        .collect();
    for (i, w) in workers.iter().enumerate() {
        let mut extra = security.clone();
        extra.extend(["-v".into(), format!("{}:/var/tmp/dbuild-worker", works[i])]);
        start(
            w,
            &pod,
            &share,
            &extra,
            &worker_image,
            &worker_args(w, WORKER_PORTS[i]),
        );
    }
    for (w, port) in workers.iter().zip(WORKER_PORTS) {
        pod_ns.wait_ready(w, port, "/readyz");
        assert_eq!(pod_ns.status(port, "/healthz"), Some(200));
    }

    // Kill the worker that builds e2e-slow, while it builds.
    let first = wait_for(
        "e2e-slow to be building",
        Duration::from_secs(300),
        POLL,
        || {
            pod_ns
                .package(SLOW)
                .filter(|d| d.info.state.as_str() == "building")
        },
    )
    .unwrap();
    let killed = first
        .info
        .worker
        .clone()
        .expect("a building package has a worker");
    assert!(
        workers.contains(&killed),
        "{killed} is not one of {workers:?}"
    );
    docker(&["kill", &killed], Duration::from_secs(60)).unwrap();
    let survivor = workers.iter().find(|w| **w != killed).unwrap().clone();
    eprintln!(
        "e2e: killed {killed} while it built {SLOW} (attempt {})",
        first.info.attempts
    );

    // The survivor takes it over once the lease expired; kill the scheduler while it builds.
    wait_for(
        "e2e-slow to be building on the other worker",
        Duration::from_secs(300),
        POLL,
        || {
            pod_ns.package(SLOW).filter(|d| {
                d.info.state.as_str() == "building" && d.info.worker.as_deref() == Some(&survivor)
            })
        },
    )
    .unwrap();
    // What was built before the kill must not be built (or leased) again after it.
    let built_before: BTreeSet<String> = pod_ns
        .packages()
        .into_iter()
        .filter(|p| p.state.as_str() == "succeeded")
        .map(|p| p.name)
        .collect();
    let restarted_ms = now_ms();
    docker(&["kill", &sched1], Duration::from_secs(60)).unwrap();
    eprintln!(
        "e2e: killed {sched1} while {survivor} built {SLOW}, {} packages built",
        built_before.len()
    );
    assert!(!built_before.is_empty() && !built_before.contains(SLOW));
    let sched2 = made.container("scheduler-2");
    start(&sched2, &pod, &share, &[], &sched_image, &scheduler_args());
    pod_ns.wait_ready(&sched2, SCHEDULER_PORT, "/readyz");
    let resumed = pod_ns.package(SLOW).unwrap();
    assert_eq!(
        resumed.info.state.as_str(),
        "building",
        "the new scheduler resumes the build in progress: {resumed:?}"
    );

    let summary = wait_for(
        "the build to finish",
        Duration::from_secs(600),
        POLL,
        || pod_ns.summary().filter(|s| s.finished),
    )
    .unwrap();
    let build_secs = t_build.elapsed().as_secs_f64();
    assert_eq!(summary.outcome, "succeeded", "{summary:?}");
    let (_, code) = wait_for(
        "the surviving worker to exit",
        Duration::from_secs(120),
        POLL,
        || {
            docker::state(&survivor)
                .ok()
                .filter(|(running, _)| !running)
        },
    )
    .unwrap();
    assert_eq!(code, 0, "{}", docker::logs(&survivor, 40));

    // Every package built exactly once successfully; nothing built before the
    // scheduler's restart was built (or even leased) again after it.
    let packages = pod_ns.packages();
    assert_eq!(packages.len(), 21, "19 examples and 2 test specs");
    let mountpoint = docker(
        &["volume", "inspect", "-f", "{{.Mountpoint}}", &share],
        Duration::from_secs(30),
    )
    .unwrap();
    let build_dir = Path::new(mountpoint.trim()).join("b1");
    let mut rpms = BTreeMap::new();
    for p in &packages {
        let d = pod_ns.package(&p.name).unwrap();
        assert_eq!(d.info.state.as_str(), "succeeded", "{d:?}");
        assert_eq!(
            count(&d, "succeeded"),
            1,
            "{} built once: {:?}",
            p.name,
            d.history
        );
        let leases = if p.name == SLOW { 2 } else { 1 };
        assert_eq!(
            count(&d, "leased"),
            leases,
            "{} leased {leases}x: {:?}",
            p.name,
            d.history
        );
        let leased_after_restart = d
            .history
            .iter()
            .any(|e| e.kind == "leased" && e.at_unix_ms > restarted_ms);
        if built_before.contains(&p.name) {
            assert!(
                !leased_after_restart,
                "{} was built before the restart and leased again after it: {:?}",
                p.name, d.history
            );
        }
        if p.name == AFTER {
            assert!(
                leased_after_restart,
                "e2e-after waits for e2e-slow: {:?}",
                d.history
            );
        }
        assert!(!d.rpms.is_empty(), "{} has RPMs", p.name);
        for r in &d.rpms {
            rpms.insert(r.path.clone(), r.sha256.clone());
        }
    }

    // The RPMs on the share: what the scheduler recorded, readable by rpm.
    let mut on_share = Vec::new();
    for sub in ["stage/RPMS/x86_64", "stage/RPMS/noarch", "stage/SRPMS"] {
        if let Ok(dir) = std::fs::read_dir(build_dir.join(sub)) {
            on_share
                .extend(dir.map(|e| format!("{sub}/{}", e.unwrap().file_name().to_string_lossy())));
        }
    }
    on_share.sort();
    assert_eq!(
        on_share,
        rpms.keys().cloned().collect::<Vec<_>>(),
        "the share holds exactly the recorded files"
    );
    for (rel, sha) in &rpms {
        let file = build_dir.join(rel);
        assert_eq!(&sha256_hex(&file), sha, "{rel}");
        let name = check(
            Command::new("rpm")
                .args(["-qp", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}"])
                .arg(&file),
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(
            Path::new(rel)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&name),
            "{rel} is {name}"
        );
    }
    let binary = rpms.keys().filter(|r| r.starts_with("stage/RPMS/")).count();
    assert_eq!(
        binary,
        27,
        "25 example RPMs and 2 test ones: {:?}",
        rpms.keys()
    );

    eprintln!(
        "e2e: figures: base image {} {:.1}s, images {images_secs:.1}s, build with the kills {build_secs:.1}s, whole test {:.1}s",
        if base.reused { "reused" } else { "made" },
        base.secs,
        started.elapsed().as_secs_f64()
    );
}
