//! `dbuild graph`: parse a spec tree and show its build dependency graph.

use super::spec_args::SpecArgs;
use anyhow::Context;
use clap::Args;
use dbuild_common::graph::{BuildGraph, DepKind, Edge, GraphOptions};
use dbuild_common::spec::parse_tree;
use dbuild_common::weights::Weights;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

const EXIT_HELP: &str = "\
Exit status:
  0  the graph was built and printed (unresolved dependencies, cycles and
     unparsable specs are reported, not fatal), unless --strict
  1  the specs directory or the weights file cannot be read
  2  usage error
  3  with --strict: unparsable specs, unresolved BuildRequires, or cycles
     that BuildRequires alone form (needing a bootstrap)";

/// Show the build dependency graph of a spec tree.
///
/// Nodes are source packages; a package needs the packages providing its
/// BuildRequires and their runtime Requires closure built first. Cycles are
/// reported with their edges and cut (runtime-only edges first) so the rest
/// stays schedulable.
#[derive(Args, Debug)]
#[command(after_help = EXIT_HELP)]
pub struct GraphArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Package weights in Photon's packageWeights.json format (default: 1 each).
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Capabilities the build root provides; they add no edge (comma separated, repeatable).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub assume_provided: Vec<String>,
    /// Print one JSON object.
    #[arg(long, conflicts_with = "dot")]
    pub json: bool,
    /// Print a Graphviz digraph (runtime-only edges dashed, dropped edges red).
    #[arg(long)]
    pub dot: bool,
    /// Exit with status 3 when the graph has problems (see below).
    #[arg(long)]
    pub strict: bool,
    /// Also explain one source package: what it needs and why, what it installs.
    #[arg(long, value_name = "PACKAGE")]
    pub explain: Option<String>,
}

#[derive(Serialize)]
struct EdgeOut {
    from: String,
    to: String,
    kind: DepKind,
    /// The first dependency behind the edge.
    dependency: String,
    reasons: Vec<String>,
}

#[derive(Serialize)]
struct CycleOut {
    packages: Vec<String>,
    edges: Vec<EdgeOut>,
    /// Edges the scheduler ignores to break the cycle.
    dropped: Vec<EdgeOut>,
    /// BuildRequires alone loop here: one package builds against a bootstrap.
    bootstrap: bool,
}

#[derive(Serialize)]
struct CriticalOut {
    packages: Vec<String>,
    weight: f64,
}

#[derive(Serialize)]
struct ParseErrorOut {
    file: String,
    error: String,
}

#[derive(Serialize)]
struct ExcludedOut {
    package: String,
    file: String,
    reason: String,
}

#[derive(Serialize)]
struct SelfDepOut {
    package: String,
    dependencies: Vec<String>,
}

#[derive(Serialize)]
struct ExplainOut {
    package: String,
    level: usize,
    priority: f64,
    /// Packages built first, with the dependencies behind each.
    needs: Vec<EdgeOut>,
    /// Dependencies the cycle policy ignores for scheduling.
    deferred: Vec<EdgeOut>,
    install: Vec<String>,
    self_dependencies: Vec<String>,
    /// Packages that need this one.
    needed_by: Vec<String>,
}

#[derive(Serialize)]
struct Report {
    specs: usize,
    parse_errors: Vec<ParseErrorOut>,
    packages: usize,
    edges: usize,
    build_edges: usize,
    runtime_edges: usize,
    levels: usize,
    excluded: Vec<ExcludedOut>,
    unresolved: Vec<dbuild_common::graph::Unresolved>,
    cycles: Vec<CycleOut>,
    self_dependencies: Vec<SelfDepOut>,
    critical_path: CriticalOut,
    warnings: Vec<String>,
    graph_build_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    explain: Option<ExplainOut>,
}

pub fn run(args: GraphArgs) -> anyhow::Result<ExitCode> {
    let weights = match &args.weights {
        Some(path) => Weights::load(path)?,
        None => Weights::default(),
    };
    let opts = args.spec.parse_options();
    let specs_dir = &args.spec.specs;
    if !specs_dir.is_dir() {
        anyhow::bail!(
            "specs directory {} does not exist or is not a directory",
            specs_dir.display()
        );
    }
    let started = Instant::now();
    let parsed = parse_tree(specs_dir, &opts)
        .with_context(|| format!("cannot read specs directory {}", specs_dir.display()))?;
    tracing::info!(
        specs = parsed.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "spec tree parsed"
    );
    let spec_count = parsed.len();
    let mut specs = Vec::with_capacity(parsed.len());
    let mut parse_errors = Vec::new();
    for (file, result) in parsed {
        match result {
            Ok(spec) => specs.push(spec),
            Err(e) => parse_errors.push(ParseErrorOut {
                file: file.display().to_string(),
                error: e.to_string(),
            }),
        }
    }

    let graph_opts = GraphOptions {
        arch: opts.arch.clone(),
        assume_provided: args.assume_provided.iter().cloned().collect(),
        ..GraphOptions::default()
    };
    let started = Instant::now();
    let graph = BuildGraph::build(specs, &graph_opts);
    let (path, weight) = graph.critical_path(|n| weights.get(&graph.nodes[n].spec.name))?;
    let graph_build_ms = started.elapsed().as_secs_f64() * 1000.0;

    let mut report = report(
        &graph,
        spec_count,
        parse_errors,
        path,
        weight,
        graph_build_ms,
    );
    if let Some(name) = &args.explain {
        let node = graph
            .node_by_key(name)
            .with_context(|| format!("--explain {name}: no such source package in the graph"))?;
        let priorities = graph.priorities(|n| weights.get(&graph.nodes[n].spec.name))?;
        report.explain = Some(explain(&graph, node, priorities[node]));
    }
    let out = if args.dot {
        dot(&graph)
    } else if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        text(&report)
    };
    print!("{out}");

    let problems = !report.parse_errors.is_empty()
        || report.unresolved.iter().any(|u| u.kind == DepKind::Build)
        || report.cycles.iter().any(|c| c.bootstrap);
    Ok(if args.strict && problems {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn edge_out(graph: &BuildGraph, edge: &Edge) -> EdgeOut {
    let reasons: Vec<String> = edge
        .reasons
        .iter()
        .map(|r| graph.reason_text(edge, r))
        .collect();
    EdgeOut {
        from: graph.nodes[edge.from].key.clone(),
        to: graph.nodes[edge.to].key.clone(),
        kind: edge.kind,
        dependency: reasons.first().cloned().unwrap_or_default(),
        reasons,
    }
}

fn explain(graph: &BuildGraph, node: usize, priority: f64) -> ExplainOut {
    let n = &graph.nodes[node];
    let (mut needs, mut deferred) = (Vec::new(), Vec::new());
    for (e, edge) in graph
        .edges
        .iter()
        .enumerate()
        .filter(|(_, e)| e.from == node)
    {
        if graph.kept[e] {
            needs.push(edge_out(graph, edge));
        } else {
            deferred.push(edge_out(graph, edge));
        }
    }
    ExplainOut {
        package: n.key.clone(),
        level: n.level,
        priority,
        needs,
        deferred,
        install: graph
            .install_names(node)
            .into_iter()
            .map(String::from)
            .collect(),
        self_dependencies: n.self_deps.clone(),
        needed_by: graph
            .nodes
            .iter()
            .filter(|m| m.needs.contains(&node))
            .map(|m| m.key.clone())
            .collect(),
    }
}

fn report(
    graph: &BuildGraph,
    specs: usize,
    parse_errors: Vec<ParseErrorOut>,
    path: Vec<usize>,
    weight: f64,
    graph_build_ms: f64,
) -> Report {
    let build_edges = graph
        .edges
        .iter()
        .filter(|e| e.kind == DepKind::Build)
        .count();
    Report {
        specs,
        parse_errors,
        packages: graph.nodes.len(),
        edges: graph.edges.len(),
        build_edges,
        runtime_edges: graph.edges.len() - build_edges,
        levels: graph.level_count(),
        excluded: graph
            .excluded
            .iter()
            .map(|x| ExcludedOut {
                package: x.spec.name.clone(),
                file: x.spec.file.display().to_string(),
                reason: x.reason.clone(),
            })
            .collect(),
        unresolved: graph.unresolved.clone(),
        cycles: graph
            .cycles
            .iter()
            .map(|c| CycleOut {
                packages: c
                    .nodes
                    .iter()
                    .map(|&n| graph.nodes[n].key.clone())
                    .collect(),
                edges: c
                    .edges
                    .iter()
                    .map(|&e| edge_out(graph, &graph.edges[e]))
                    .collect(),
                dropped: c
                    .dropped
                    .iter()
                    .map(|&e| edge_out(graph, &graph.edges[e]))
                    .collect(),
                bootstrap: c.needs_bootstrap(&graph.edges),
            })
            .collect(),
        self_dependencies: graph
            .nodes
            .iter()
            .filter(|n| !n.self_deps.is_empty())
            .map(|n| SelfDepOut {
                package: n.key.clone(),
                dependencies: n.self_deps.clone(),
            })
            .collect(),
        critical_path: CriticalOut {
            packages: path.iter().map(|&n| graph.nodes[n].key.clone()).collect(),
            weight,
        },
        warnings: graph.warnings.clone(),
        graph_build_ms,
        explain: None,
    }
}

fn text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} spec files, {} could not be parsed",
        r.specs,
        r.parse_errors.len()
    );
    for e in &r.parse_errors {
        let _ = writeln!(s, "  {}: {}", e.file, e.error);
    }
    let _ = writeln!(
        s,
        "{} packages, {} edges ({} BuildRequires, {} runtime Requires only), {} build levels",
        r.packages, r.edges, r.build_edges, r.runtime_edges, r.levels
    );
    if !r.excluded.is_empty() {
        let _ = writeln!(
            s,
            "{} excluded: {}",
            r.excluded.len(),
            r.excluded
                .iter()
                .map(|x| x.package.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(s, "\nUnresolved dependencies: {}", r.unresolved.len());
    for u in &r.unresolved {
        let kind = match u.kind {
            DepKind::Build => "BuildRequires",
            DepKind::Runtime => "Requires",
        };
        let _ = writeln!(
            s,
            "  {kind}: {}  wanted by {}",
            u.dependency,
            u.wanted_by.join(", ")
        );
    }
    let _ = writeln!(s, "\nCycles: {}", r.cycles.len());
    for (i, c) in r.cycles.iter().enumerate() {
        let _ = writeln!(
            s,
            "  #{} ({} packages{}): {}",
            i + 1,
            c.packages.len(),
            if c.bootstrap {
                ", needs a bootstrap"
            } else {
                ""
            },
            c.packages.join(", ")
        );
        for e in &c.edges {
            let dropped = c.dropped.iter().any(|d| d.from == e.from && d.to == e.to);
            let _ = writeln!(
                s,
                "      {} -> {}  [{}]{}",
                e.from,
                e.to,
                e.dependency,
                if dropped { "  (dropped)" } else { "" }
            );
        }
    }
    if !r.self_dependencies.is_empty() {
        let _ = writeln!(
            s,
            "\nSelf dependencies (bootstrap): {}",
            r.self_dependencies.len()
        );
        for d in &r.self_dependencies {
            let _ = writeln!(s, "  {}: {}", d.package, d.dependencies.join(", "));
        }
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let _ = writeln!(
        s,
        "\nCritical path ({} packages, weight {}): {}",
        r.critical_path.packages.len(),
        r.critical_path.weight,
        r.critical_path.packages.join(" -> ")
    );
    let _ = writeln!(s, "Graph built in {:.1} ms", r.graph_build_ms);
    if let Some(x) = &r.explain {
        let _ = writeln!(
            s,
            "\n{}: level {}, priority {}",
            x.package, x.level, x.priority
        );
        for (title, edges) in [
            ("needs", &x.needs),
            ("deferred (cycle policy)", &x.deferred),
        ] {
            let _ = writeln!(s, "  {title}: {}", edges.len());
            for e in edges {
                let _ = writeln!(s, "    {}  [{}]", e.to, e.reasons.join("; "));
            }
        }
        let _ = writeln!(
            s,
            "  installs {} packages: {}",
            x.install.len(),
            x.install.join(" ")
        );
        if !x.self_dependencies.is_empty() {
            let _ = writeln!(s, "  self dependencies: {}", x.self_dependencies.join(", "));
        }
        let _ = writeln!(
            s,
            "  needed by {}: {}",
            x.needed_by.len(),
            x.needed_by.join(" ")
        );
    }
    s
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn dot_id(s: &str) -> String {
    format!("\"{}\"", dot_escape(s))
}

fn dot(graph: &BuildGraph) -> String {
    let mut s = String::from("digraph dbuild {\n  rankdir=LR;\n  node [shape=box];\n");
    for n in &graph.nodes {
        // `\n` is a line break inside a Graphviz label.
        let _ = writeln!(
            s,
            "  {} [label=\"{}\\nlevel {}\"];",
            dot_id(&n.key),
            dot_escape(&n.key),
            n.level
        );
    }
    for (e, edge) in graph.edges.iter().enumerate() {
        let mut attrs = Vec::new();
        if edge.kind == DepKind::Runtime {
            attrs.push("style=dashed");
        }
        if !graph.kept[e] {
            attrs.push("color=red");
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(","))
        };
        let _ = writeln!(
            s,
            "  {} -> {}{};",
            dot_id(&graph.nodes[edge.from].key),
            dot_id(&graph.nodes[edge.to].key),
            attrs
        );
    }
    s.push_str("}\n");
    s
}
