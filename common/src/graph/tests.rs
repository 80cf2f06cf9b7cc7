//! Graph tests on hand-built specs (independent of the spec parser).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::spec::{BinaryPackage, Constraint, Dependency, Op, Spec};
use std::path::PathBuf;

fn dep(text: &str) -> Dependency {
    let parts: Vec<&str> = text.split_whitespace().collect();
    if text.starts_with('(') || parts.len() != 3 {
        return Dependency::new(text);
    }
    Dependency {
        name: parts[0].into(),
        constraint: Some(Constraint {
            op: Op::parse(parts[1]).unwrap(),
            evr: parts[2].into(),
        }),
    }
}

/// A spec `name-version-1` whose main package has `%files`.
fn spec(name: &str, version: &str) -> Spec {
    let mut main = BinaryPackage::new(name);
    main.has_files = true;
    Spec {
        file: PathBuf::from(format!("SPECS/{name}/{name}.spec")),
        name: name.into(),
        epoch: None,
        version: version.into(),
        release: "1".into(),
        packages: vec![main],
        build_requires: Vec::new(),
        build_conflicts: Vec::new(),
        build_arch: None,
        exclusive_arch: Vec::new(),
        exclude_arch: Vec::new(),
        sources: Vec::new(),
        patches: Vec::new(),
        includes: Vec::new(),
        warnings: Vec::new(),
        network_required: false,
    }
}

fn br(mut s: Spec, deps: &[&str]) -> Spec {
    s.build_requires.extend(deps.iter().map(|d| dep(d)));
    s
}

fn req(mut s: Spec, package: usize, deps: &[&str]) -> Spec {
    s.packages[package]
        .requires
        .extend(deps.iter().map(|d| dep(d)));
    s
}

fn prov(mut s: Spec, package: usize, deps: &[&str]) -> Spec {
    s.packages[package]
        .provides
        .extend(deps.iter().map(|d| dep(d)));
    s
}

fn sub(mut s: Spec, name: &str, has_files: bool) -> Spec {
    let mut p = BinaryPackage::new(name);
    p.has_files = has_files;
    s.packages.push(p);
    s
}

fn build(specs: Vec<Spec>) -> BuildGraph {
    BuildGraph::build(specs, &GraphOptions::default())
}

fn needs_of(g: &BuildGraph, key: &str) -> Vec<String> {
    let n = g.node_by_key(key).unwrap();
    g.nodes[n]
        .needs
        .iter()
        .map(|&m| g.nodes[m].key.clone())
        .collect()
}

#[test]
fn chain_levels_and_critical_path() {
    let g = build(vec![
        spec("glibc", "2.36"),
        br(spec("gcc", "12.2"), &["glibc"]),
        br(spec("make", "4.3"), &["gcc"]),
        br(spec("zlib", "1.2"), &["gcc", "make"]),
    ]);
    assert_eq!(g.nodes.len(), 4);
    assert_eq!(needs_of(&g, "zlib"), vec!["gcc", "make"]);
    assert_eq!(g.level_count(), 4);
    let (path, weight) = g.critical_path(|_| 1.0).unwrap();
    let names: Vec<&str> = path.iter().map(|&n| g.nodes[n].key.as_str()).collect();
    assert_eq!(names, vec!["glibc", "gcc", "make", "zlib"]);
    assert_eq!(weight, 4.0);
    assert!(g.unresolved.is_empty() && g.cycles.is_empty());
}

#[test]
fn subpackages_provides_and_versions() {
    let openssl = prov(
        sub(spec("openssl", "3.0.8"), "openssl-devel", true),
        1,
        &["libssl-devel = 3.0.8"],
    );
    let old = prov(spec("openssl1", "1.1.1"), 0, &["libssl-devel = 1.1.1"]);
    let g = build(vec![
        openssl,
        old,
        br(spec("curl", "8.0"), &["openssl-devel >= 3.0"]),
        br(spec("a", "1"), &["libssl-devel"]),
        br(spec("b", "1"), &["libssl-devel < 2"]),
        br(spec("c", "1"), &["openssl-devel >= 4"]),
    ]);
    assert_eq!(needs_of(&g, "curl"), vec!["openssl"]);
    // Highest satisfying version wins ...
    assert_eq!(needs_of(&g, "a"), vec!["openssl"]);
    // ... honouring the constraint.
    assert_eq!(needs_of(&g, "b"), vec!["openssl1"]);
    assert_eq!(g.unresolved.len(), 1);
    assert_eq!(g.unresolved[0].dependency, "openssl-devel >= 4");
    assert_eq!(g.unresolved[0].wanted_by, vec!["c"]);
    assert_eq!(g.unresolved[0].kind, DepKind::Build);
    let curl = g.node_by_key("curl").unwrap();
    assert_eq!(g.install_names(curl), vec!["openssl-devel"]);
}

#[test]
fn a_real_package_beats_a_newer_virtual_provide() {
    let selinux = prov(spec("coreutils-selinux", "9.1"), 0, &["coreutils = 9.9"]);
    let g = build(vec![
        spec("coreutils", "9.1"),
        selinux,
        br(
            spec("x", "1"),
            &["coreutils", "(coreutils or coreutils-selinux)"],
        ),
    ]);
    assert_eq!(needs_of(&g, "x"), vec!["coreutils"]);
    // A version only the virtual provide meets still resolves to it.
    let selinux = prov(spec("coreutils-selinux", "9.1"), 0, &["coreutils = 9.9"]);
    let g = build(vec![
        spec("coreutils", "9.1"),
        selinux,
        br(spec("x", "1"), &["coreutils >= 9.5"]),
    ]);
    assert_eq!(needs_of(&g, "x"), vec!["coreutils-selinux"]);
}

#[test]
fn rpm_file_names() {
    let mut s = sub(spec("python3", "3.11.9"), "python3-doc", true);
    s.epoch = Some("1".into());
    s.release = "2.ph5".into();
    s.packages[1].build_arch = Some("noarch".into());
    let g = build(vec![s]);
    assert_eq!(
        g.rpm_file_name(
            BinRef {
                node: 0,
                package: 0
            },
            "x86_64"
        )
        .unwrap(),
        "python3-3.11.9-2.ph5.x86_64.rpm"
    );
    assert_eq!(
        g.rpm_file_name(
            BinRef {
                node: 0,
                package: 1
            },
            "x86_64"
        )
        .unwrap(),
        "python3-doc-3.11.9-2.ph5.noarch.rpm"
    );
    assert!(g
        .rpm_file_name(
            BinRef {
                node: 5,
                package: 0
            },
            "x86_64"
        )
        .is_none());
}

#[test]
fn packages_without_files_provide_nothing() {
    let g = build(vec![
        sub(spec("foo", "1"), "foo-ghost", false),
        br(spec("bar", "1"), &["foo-ghost"]),
    ]);
    assert_eq!(g.unresolved.len(), 1);
    assert!(needs_of(&g, "bar").is_empty());
}

#[test]
fn runtime_closure_adds_needs_and_install_set() {
    let g = build(vec![
        spec("glibc", "2.36"),
        req(spec("ncurses", "6"), 0, &["glibc"]),
        req(
            sub(spec("python3", "3.11"), "python3-libs", true),
            0,
            &["python3-libs", "ncurses"],
        ),
        br(spec("app", "1"), &["python3"]),
    ]);
    assert_eq!(needs_of(&g, "app"), vec!["glibc", "ncurses", "python3"]);
    let app = g.node_by_key("app").unwrap();
    assert_eq!(
        g.install_names(app),
        vec!["glibc", "ncurses", "python3", "python3-libs"]
    );
    let edge = g
        .edges
        .iter()
        .find(|e| e.from == app && g.nodes[e.to].key == "glibc")
        .unwrap();
    assert_eq!(edge.kind, DepKind::Runtime);
    assert_eq!(
        g.reason_text(edge, &edge.reasons[0]),
        "Requires: glibc (of ncurses)"
    );
    let edge = g
        .edges
        .iter()
        .find(|e| e.from == app && g.nodes[e.to].key == "python3")
        .unwrap();
    assert_eq!(edge.kind, DepKind::Build);
    assert_eq!(
        g.reason_text(edge, &edge.reasons[0]),
        "BuildRequires: python3"
    );
    // ncurses' own Requires do not order its build: it needs nothing.
    assert_eq!(g.nodes[app].level, 1);
}

#[test]
fn self_dependency_is_bootstrap_not_edge() {
    let g = build(vec![br(
        sub(spec("rust", "1.70"), "rust-std", true),
        &["rust", "rust-std >= 1.60"],
    )]);
    assert!(g.edges.is_empty());
    assert_eq!(g.nodes[0].self_deps, vec!["rust", "rust-std >= 1.60"]);
    assert!(g.cycles.is_empty());
    // Another provider is preferred over the package itself.
    let g = build(vec![
        br(spec("rust", "1.70"), &["cargo-bin"]),
        prov(spec("rust", "1.60"), 0, &["cargo-bin"]),
    ]);
    let newer = g.node_by_key("rust-1.70-1").unwrap();
    assert_eq!(needs_of(&g, "rust-1.70-1"), vec!["rust-1.60-1"]);
    assert!(g.nodes[newer].self_deps.is_empty());
}

#[test]
fn isa_provides_for_arch_packages_only() {
    let mut noarch = spec("py-lib", "1");
    noarch.build_arch = Some("noarch".into());
    let g = build(vec![
        sub(spec("libldb", "2.7"), "libldb-devel", true),
        noarch,
        br(
            spec("x", "1"),
            &["libldb(x86-64) = 2.7-1", "py-lib(x86-64)"],
        ),
    ]);
    assert_eq!(needs_of(&g, "x"), vec!["libldb"]);
    assert_eq!(g.unresolved.len(), 1);
    assert_eq!(g.unresolved[0].dependency, "py-lib(x86-64)");
}

#[test]
fn file_dependencies() {
    let g = build(vec![
        prov(spec("bash", "5"), 0, &["/bin/sh"]),
        spec("python3", "3.11"),
        br(
            spec("x", "1"),
            &["/bin/sh", "/usr/bin/python3", "/usr/sbin/useradd"],
        ),
    ]);
    assert_eq!(needs_of(&g, "x"), vec!["bash", "python3"]);
    assert_eq!(g.unresolved.len(), 1);
    assert_eq!(g.unresolved[0].dependency, "/usr/sbin/useradd");
}

#[test]
fn rich_dependencies() {
    let g = build(vec![
        spec("coreutils-selinux", "9"),
        spec("toybox", "1"),
        spec("b", "1"),
        br(spec("x", "1"), &["(coreutils or coreutils-selinux)"]),
        br(spec("y", "1"), &["(b and (nope or toybox))"]),
        br(
            spec("z", "1"),
            &[
                "(missing if b else toybox)",
                "(nope1 or nope2)",
                "(b >= 2 or toybox)",
            ],
        ),
        br(spec("w", "1"), &["(broken or"]),
    ]);
    assert_eq!(needs_of(&g, "x"), vec!["coreutils-selinux"]);
    assert_eq!(needs_of(&g, "y"), vec!["b", "toybox"]);
    assert_eq!(needs_of(&g, "z"), vec!["toybox"]);
    let deps: Vec<&str> = g.unresolved.iter().map(|u| u.dependency.as_str()).collect();
    assert_eq!(deps, vec!["(broken or", "(nope1 or nope2)"]);
    assert_eq!(g.warnings.len(), 1);
    assert!(
        g.warnings[0].contains("SPECS/w/w.spec"),
        "{}",
        g.warnings[0]
    );
}

#[test]
fn assume_provided_and_arch_exclusion() {
    let mut only_arm = spec("grub-arm", "1");
    only_arm.exclusive_arch = vec!["aarch64".into()];
    let specs = vec![
        spec("gcc", "12"),
        br(spec("x", "1"), &["gcc", "kernel-headers", "grub-arm"]),
        only_arm,
    ];
    let opts = GraphOptions {
        arch: "x86_64".into(),
        assume_provided: ["gcc".to_string(), "kernel-headers".to_string()].into(),
        ..GraphOptions::default()
    };
    let g = BuildGraph::build(specs, &opts);
    assert_eq!(g.nodes.len(), 2);
    assert_eq!(g.excluded.len(), 1);
    assert_eq!(g.excluded[0].spec.name, "grub-arm");
    assert!(needs_of(&g, "x").is_empty());
    assert_eq!(g.unresolved.len(), 1);
    assert_eq!(g.unresolved[0].dependency, "grub-arm");
}

#[test]
fn base_provides_satisfy_only_what_no_spec_provides() {
    // The base root has gcc and make; the tree builds its own make.
    let specs = vec![
        spec("make", "4"),
        br(spec("x", "1"), &["gcc", "make", "python3-foo"]),
    ];
    let opts = GraphOptions {
        base_provides: ["gcc".to_string(), "make".to_string()].into(),
        ..GraphOptions::default()
    };
    let g = BuildGraph::build(specs, &opts);
    assert_eq!(needs_of(&g, "x"), vec!["make"]);
    let deps: Vec<(&str, DepKind)> = g
        .unresolved
        .iter()
        .map(|u| (u.dependency.as_str(), u.kind))
        .collect();
    assert_eq!(deps, vec![("python3-foo", DepKind::Build)]);
}

#[test]
fn runtime_only_cycle_is_cut_build_cycle_is_bootstrapped() {
    // a BR b, b BR c, c Requires a: b needs c's closure, which holds a,
    // so b needs a at runtime only.
    let g = build(vec![
        br(spec("a", "1"), &["b"]),
        br(spec("b", "1"), &["c"]),
        req(spec("c", "1"), 0, &["a"]),
        // d <-> e through BuildRequires only.
        br(spec("d", "1"), &["e"]),
        br(spec("e", "1"), &["d"]),
    ]);
    assert_eq!(g.cycles.len(), 2, "{:?}", g.cycles);
    let keys = |c: &Cycle| {
        c.nodes
            .iter()
            .map(|&n| g.nodes[n].key.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&g.cycles[0]), vec!["a", "b"]);
    assert_eq!(keys(&g.cycles[1]), vec!["d", "e"]);
    // The runtime edge inside the a/b loop is dropped, BR edges stay.
    assert!(!g.cycles[0].needs_bootstrap(&g.edges));
    assert_eq!(g.cycles[0].dropped.len(), 1);
    for &e in &g.cycles[0].dropped {
        assert_eq!(g.edges[e].kind, DepKind::Runtime);
    }
    assert_eq!(needs_of(&g, "a"), vec!["b"]);
    assert_eq!(needs_of(&g, "b"), vec!["c"]);
    // d/e: one BuildRequires edge is dropped, deterministically (e -> d).
    assert!(g.cycles[1].needs_bootstrap(&g.edges));
    assert_eq!(g.cycles[1].dropped.len(), 1);
    let dropped = &g.edges[g.cycles[1].dropped[0]];
    assert_eq!(
        (
            g.nodes[dropped.from].key.as_str(),
            g.nodes[dropped.to].key.as_str()
        ),
        ("e", "d")
    );
    let e = g.node_by_key("e").unwrap();
    assert_eq!(g.nodes[e].deferred, vec![g.node_by_key("d").unwrap()]);
    // Whatever the cycles, the schedule is a DAG.
    assert!(topo_order(&g.needs()).is_ok());
    assert!(g.priorities(|_| 1.0).is_ok());
}

#[test]
fn big_cycle_never_hangs() {
    // A ring of 500 packages each build-requiring the next, plus chords.
    let n = 500;
    let specs: Vec<Spec> = (0..n)
        .map(|i| {
            br(
                spec(&format!("p{i:03}"), "1"),
                &[
                    &format!("p{:03}", (i + 1) % n),
                    &format!("p{:03}", (i * 7) % n),
                ],
            )
        })
        .collect();
    let g = build(specs);
    assert_eq!(g.cycles.len(), 1);
    assert_eq!(g.cycles[0].nodes.len(), n);
    assert!(topo_order(&g.needs()).is_ok());
}

#[test]
fn duplicate_names_get_unique_keys() {
    let g = build(vec![
        spec("rubygem-http", "4.4"),
        spec("rubygem-http", "5.1"),
        br(spec("x", "1"), &["rubygem-http"]),
    ]);
    let keys: Vec<&str> = g.nodes.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(keys, vec!["rubygem-http-4.4-1", "rubygem-http-5.1-1", "x"]);
    assert_eq!(needs_of(&g, "x"), vec!["rubygem-http-5.1-1"]);
}

#[test]
fn weights_drive_priorities() {
    let g = build(vec![
        spec("small", "1"),
        spec("big", "1"),
        br(spec("top", "1"), &["small", "big"]),
    ]);
    let w = crate::weights::Weights::from_map([("big".to_string(), 10.0)].into(), 1.0);
    let p = g.priorities_from(&w).unwrap();
    let big = g.node_by_key("big").unwrap();
    let small = g.node_by_key("small").unwrap();
    assert_eq!(p[big], 11.0);
    assert_eq!(p[small], 2.0);
    let (path, total) = g.critical_path(|n| w.get(&g.nodes[n].spec.name)).unwrap();
    assert_eq!(path, vec![big, g.node_by_key("top").unwrap()]);
    assert_eq!(total, 11.0);
}

#[test]
fn deterministic_output() {
    let make = || {
        vec![
            br(spec("a", "1"), &["b", "c"]),
            req(br(spec("b", "1"), &["c"]), 0, &["a"]),
            br(spec("c", "1"), &["a", "missing"]),
            br(spec("d", "1"), &["missing"]),
        ]
    };
    let g1 = build(make());
    let mut reversed = make();
    reversed.reverse();
    let g2 = build(reversed);
    assert_eq!(g1.edges, g2.edges);
    assert_eq!(g1.cycles, g2.cycles);
    assert_eq!(g1.unresolved, g2.unresolved);
    assert_eq!(g1.unresolved[0].wanted_by, vec!["c", "d"]);
}

#[test]
fn own_output_in_runtime_closure_is_a_self_dependency() {
    let g = build(vec![
        sub(spec("app", "1"), "app-libs", true),
        req(spec("plugin", "1"), 0, &["app-libs", "zlib"]),
        spec("zlib", "1"),
    ]);
    let g2 = build(vec![
        br(sub(spec("app", "1"), "app-libs", true), &["plugin"]),
        req(spec("plugin", "1"), 0, &["app-libs", "zlib"]),
        spec("zlib", "1"),
    ]);
    assert!(g.edges.is_empty());
    let app = g2.node_by_key("app").unwrap();
    assert_eq!(
        g2.nodes[app].self_deps,
        vec!["app-libs (required by plugin)"]
    );
    assert_eq!(g2.install_names(app), vec!["plugin", "zlib"]);
    assert_eq!(needs_of(&g2, "app"), vec!["plugin", "zlib"]);
}

#[test]
fn long_runtime_chains_are_followed() {
    let mut specs = vec![br(spec("top", "1"), &["l0"])];
    for i in 0..100 {
        specs.push(req(
            spec(&format!("l{i}"), "1"),
            0,
            &[&format!("l{}", i + 1)],
        ));
    }
    specs.push(req(spec("l100", "1"), 0, &["l0"]));
    let g = build(specs);
    let top = g.node_by_key("top").unwrap();
    assert_eq!(g.nodes[top].install.len(), 101);
    assert_eq!(g.nodes[top].needs.len(), 101);
    assert!(
        g.cycles.is_empty(),
        "runtime Requires of non-building packages form no build cycle"
    );
}
