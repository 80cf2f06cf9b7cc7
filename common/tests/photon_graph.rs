//! The graph of the real Photon 5.0 tree (`DBUILD_CORPUS`, see
//! `dbuild_common::corpus`): structural invariants that must hold whatever
//! the parser's details.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dbuild_common::graph::{topo_order, BuildGraph, DepKind, GraphOptions, Reason};
use dbuild_common::spec::{parse_tree, ParseOptions};
use std::collections::HashSet;

#[test]
fn photon_graph_invariants() {
    let dir = dbuild_common::corpus::photon_specs();
    let opts = ParseOptions {
        defines: vec![("dist".into(), ".ph5".into())],
        ..ParseOptions::default()
    };
    let specs: Vec<_> = parse_tree(&dir, &opts)
        .unwrap()
        .into_iter()
        .filter_map(|(_, r)| r.ok())
        .collect();
    assert!(specs.len() > 1000);
    let count = specs.len();
    let g = BuildGraph::build(specs, &GraphOptions::default());
    assert_eq!(g.nodes.len() + g.excluded.len(), count);

    let keys: HashSet<&str> = g.nodes.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(keys.len(), g.nodes.len(), "node keys are unique");
    // The schedule is a DAG and levels agree with it.
    assert!(topo_order(&g.needs()).is_ok());
    for (i, n) in g.nodes.iter().enumerate() {
        assert!(
            !n.needs.contains(&i) && !n.deferred.contains(&i),
            "{} needs itself",
            n.key
        );
        for &m in &n.needs {
            assert!(
                g.nodes[m].level < n.level,
                "{} level {} <= {}",
                n.key,
                n.level,
                g.nodes[m].key
            );
        }
        for &b in &n.install {
            assert!(
                g.binary(b).unwrap().has_files,
                "{} installs a package that is not built",
                n.key
            );
            assert_ne!(b.node, i, "{} installs its own output", n.key);
        }
    }
    for (e, edge) in g.edges.iter().enumerate() {
        assert!(!edge.reasons.is_empty(), "edge {e} has no reason");
        assert_eq!(
            edge.kind == DepKind::Build,
            edge.reasons
                .iter()
                .any(|r| matches!(r, Reason::BuildRequires { .. }))
        );
    }
    // Well-known Photon facts.
    let curl = g.node_by_key("curl").unwrap();
    let openssl = g.node_by_key("openssl").unwrap();
    assert!(g.nodes[curl].needs.contains(&openssl));
    assert!(g.install_names(curl).contains(&"openssl-devel"));
    let (path, weight) = g.critical_path(|_| 1.0).unwrap();
    assert_eq!(path.len() as f64, weight);
    assert_eq!(path.len(), g.level_count());
}
