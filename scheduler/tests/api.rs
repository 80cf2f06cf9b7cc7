//! Tokens, malformed input, the OpenAPI document, metrics, and a real spec tree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{publish, write_plan, Sched, TOKEN};
use serde_json::json;

#[tokio::test]
async fn worker_endpoints_need_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None)]);
    let s = Sched::start(tmp.path(), &[]);
    let body = json!({"name": "w1", "arch": "x86_64", "slots": 1}).to_string();
    let (st, v) = s.post_with("/v1/workers", body.clone(), None).await;
    assert_eq!(st, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("token"));
    let (st, _) = s
        .post_with("/v1/workers", body.clone(), Some("wrong"))
        .await;
    assert_eq!(st, 401);
    // Even a malformed body gets 401 first.
    let (st, _) = s.post_with("/v1/lease", "{not json".into(), None).await;
    assert_eq!(st, 401);
    for path in ["/v1/lease", "/v1/leases/x/heartbeat", "/v1/leases/x/report"] {
        let (st, _) = s.post_with(path, "{}".into(), None).await;
        assert_eq!(st, 401, "{path}");
    }
    let (st, _) = s.post_with("/v1/workers", body, Some(TOKEN)).await;
    assert_eq!(st, 200);
    assert_eq!(s.summary().await["workers_live"], 1);
}

#[tokio::test]
async fn token_from_a_file_or_generated() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None)]);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dbuild-scheduler"));
    cmd.arg("--build-dir")
        .arg(tmp.path())
        .args(["--listen", "127.0.0.1:0", "--plan"])
        .arg(tmp.path().join("plan.json"));
    // No token given: one is generated into state/token, readable only by its owner.
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line
        .trim()
        .strip_prefix("dbuild-scheduler listening on ")
        .unwrap()
        .to_string();
    let token = std::fs::read_to_string(tmp.path().join("state/token")).unwrap();
    assert!(token.len() >= 32);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(tmp.path().join("state/token"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let http = reqwest::Client::new();
    assert_eq!(register_status(&http, &url, token.trim()).await, 200);
    child.kill().unwrap();
    child.wait().unwrap();
    // --token-file is read.
    std::fs::write(tmp.path().join("tok"), "file-token\n").unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dbuild-scheduler"));
    cmd.arg("--build-dir")
        .arg(tmp.path())
        .args(["--listen", "127.0.0.1:0", "--token-file"])
        .arg(tmp.path().join("tok"));
    cmd.arg("--plan").arg(tmp.path().join("plan.json"));
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line
        .trim()
        .strip_prefix("dbuild-scheduler listening on ")
        .unwrap()
        .to_string();
    assert_eq!(register_status(&http, &url, "file-token").await, 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Registers a worker with `token`; the HTTP status.
async fn register_status(http: &reqwest::Client, url: &str, token: &str) -> u16 {
    let resp = http
        .post(format!("{url}/v1/workers"))
        .bearer_auth(token)
        .json(&json!({"name": "w", "arch": "x86_64", "slots": 1}))
        .send()
        .await
        .unwrap();
    resp.status().as_u16()
}

#[tokio::test]
async fn malformed_input_gets_400_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None), ("b", &[], None)]);
    let s = Sched::start(tmp.path(), &[]);
    let bad_bodies = [
        ("/v1/workers", "{not json".to_string(), "malformed JSON"),
        (
            "/v1/workers",
            json!({"name": "w"}).to_string(),
            "malformed JSON",
        ),
        (
            "/v1/workers",
            json!({"name": "w", "arch": "x86_64", "slots": -1}).to_string(),
            "malformed JSON",
        ),
        (
            "/v1/workers",
            json!({"name": "w x", "arch": "x86_64", "slots": 1}).to_string(),
            "worker name",
        ),
        (
            "/v1/workers",
            json!({"name": "w", "arch": "aarch64", "slots": 1}).to_string(),
            "builds for aarch64",
        ),
        (
            "/v1/workers",
            json!({"name": "w", "arch": "x86_64", "slots": 0}).to_string(),
            "slots",
        ),
        (
            "/v1/lease",
            json!({"worker_id": 7}).to_string(),
            "malformed JSON",
        ),
        ("/v1/lease", "[]".to_string(), "malformed JSON"),
    ];
    for (path, body, needle) in bad_bodies {
        let (st, v) = s.post_with(path, body.clone(), Some(TOKEN)).await;
        assert_eq!(st, 400, "{path} {body}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains(needle),
            "{path} {body}: {v}"
        );
    }
    let w = s.register("w1", 2).await;
    let la = s.lease_pkg(&w, "a").await;
    let id = la["lease_id"].as_str().unwrap();
    let report = |outcome: serde_json::Value, extra: serde_json::Value| {
        let mut r = json!({"worker_id": w, "duration_secs": 1.0, "outcome": outcome});
        if let (Some(o), Some(e)) = (r.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        r.to_string()
    };
    let sha = "a".repeat(64);
    let cases = [
        (
            report(json!({"status": "done"}), json!({})),
            "malformed JSON",
        ),
        (
            report(
                json!({"status": "success", "rpms": [{"path": "../../etc/passwd.rpm", "sha256": sha}]}),
                json!({}),
            ),
            "RPM path",
        ),
        (
            report(
                json!({"status": "success", "rpms": [{"path": "/etc/a-1-1.x86_64.rpm", "sha256": sha}]}),
                json!({}),
            ),
            "RPM path",
        ),
        (
            report(
                json!({"status": "success", "rpms": [{"path": "stage/RPMS/x86_64/a-1-1.x86_64.rpm", "sha256": "xyz"}]}),
                json!({}),
            ),
            "sha256",
        ),
        (
            report(
                json!({"status": "failure", "reason": "x"}),
                json!({"log_path": "../outside.log"}),
            ),
            "log_path",
        ),
        (
            report(
                json!({"status": "failure", "reason": "x"}),
                json!({"duration_secs": -3.0}),
            ),
            "duration_secs",
        ),
        (
            report(
                json!({"status": "failure", "reason": "x"}),
                json!({"phases_secs": {"rpmbuild": -1.0}}),
            ),
            "phase rpmbuild",
        ),
        (
            report(
                json!({"status": "failure", "reason": "x"}),
                json!({"phases_secs": {"Bad Name": 1.0}}),
            ),
            "phase name",
        ),
    ];
    for (body, needle) in cases {
        let (st, v) = s
            .post_with(
                &format!("/v1/leases/{id}/report"),
                body.clone(),
                Some(TOKEN),
            )
            .await;
        assert_eq!(st, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(needle), "{body}: {v}");
    }
    // None of that changed anything.
    assert_eq!(s.state_of("a").await, "building");
    // The phases of a success reach the metrics (known phases only) and the package's history.
    let rpm = "stage/RPMS/x86_64/a-1-1.ph5.x86_64.rpm";
    publish(tmp.path(), id, &[rpm.to_string()]);
    let body = report(
        json!({"status": "success", "rpms": [{"path": rpm, "sha256": sha}]}),
        json!({"phases_secs": {"rpmbuild": 0.7, "install": 0.2, "future_phase": 0.1}}),
    );
    let (st, v) = s
        .post_with(&format!("/v1/leases/{id}/report"), body, Some(TOKEN))
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, detail) = s.get("/v1/packages/a").await;
    assert!(
        detail["history"]
            .to_string()
            .contains("(future_phase 0.10s, install 0.20s, rpmbuild 0.70s)"),
        "{detail}"
    );
    let (_, m) = s.get("/metrics").await;
    let m = m.as_str().unwrap();
    assert!(
        m.contains("dbuild_build_phase_seconds_sum{phase=\"rpmbuild\"} 0.7"),
        "{m}"
    );
    assert!(!m.contains("future_phase"), "{m}");
    let (st, v) = s.get("/v1/packages?state=bogus").await;
    assert_eq!(st, 400);
    assert!(v["error"].as_str().unwrap().contains("unknown state"));
    let (st, _) = s.get("/v1/packages/nope").await;
    assert_eq!(st, 404);
    let (st, v) = s.get("/v2/whatever").await;
    assert_eq!(st, 404);
    assert!(v["error"].as_str().unwrap().contains("no route"));
    let (st, _) = s.get("/healthz").await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn openapi_document_matches_served_routes_and_metrics_are_exposed() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None)]);
    let s = Sched::start(tmp.path(), &[]);
    let (st, doc) = s.get("/openapi.json").await;
    assert_eq!(st, 200);
    let paths = doc["paths"].as_object().unwrap();
    let mut seen = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "x").replace("{name}", "a");
            let url = format!("{}{}", s.url, concrete);
            let req = match method.as_str() {
                "get" => s.http.get(&url),
                "post" => s
                    .http
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/json")
                    .body("{}"),
                m => panic!("unexpected method {m}"),
            };
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            assert!(
                !text.contains("no route"),
                "{method} {path} is documented but not served"
            );
            assert!(status < 500, "{method} {path}: {status}");
            seen.push(format!("{} {}", method.to_uppercase(), path));
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            "GET /",
            "GET /healthz",
            "GET /metrics",
            "GET /openapi.json",
            "GET /readyz",
            "GET /v1/graph",
            "GET /v1/packages",
            "GET /v1/packages/{name}",
            "GET /v1/packages/{name}/log",
            "GET /v1/rpms",
            "GET /v1/summary",
            "GET /v1/workers",
            "POST /v1/lease",
            "POST /v1/leases/{id}/heartbeat",
            "POST /v1/leases/{id}/report",
            "POST /v1/leases/{id}/reserve",
            "POST /v1/workers",
            "POST /v1/workers/{id}/leave",
        ]
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["Lease"].is_object());
    assert!(
        doc["components"]["schemas"]["RpmsPage"].is_object(),
        "{}",
        doc["components"]["schemas"]
    );
    let (_, m) = s.get("/metrics").await;
    let m = m.as_str().unwrap();
    for needle in [
        "dbuild_packages{state=\"ready\"} 1",
        "dbuild_leases_granted_total 0",
        "dbuild_leases_expired_total 0",
        "dbuild_reports_total{outcome=\"success\"} 0",
        "dbuild_build_duration_seconds_bucket",
        "dbuild_queue_depth 1",
        "dbuild_reservations_total{outcome=\"granted\"} 0",
    ] {
        assert!(m.contains(needle), "missing {needle} in\n{m}");
    }
    let (st, _) = s.get("/readyz").await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn builds_a_real_spec_tree_in_dependency_order() {
    let tmp = tempfile::tempdir().unwrap();
    let specs = tmp.path().join("SPECS");
    let spec = |name: &str, body: &str| {
        std::fs::create_dir_all(specs.join(name)).unwrap();
        std::fs::write(specs.join(name).join(format!("{name}.spec")), body).unwrap();
    };
    spec(
        "libfoo",
        "Name: libfoo\nVersion: 1.0\nRelease: 1%{?dist}\nSummary: s\nLicense: MIT\n\n%description\nd\n\n\
         %package devel\nSummary: dev\nRequires: %{name} = %{version}-%{release}\n%description devel\nd\n\n\
         %files\n/usr/lib/libfoo.so.1\n%files devel\n/usr/include/foo.h\n",
    );
    spec(
        "app",
        "Name: app\nVersion: 2.0\nRelease: 3%{?dist}\nSummary: s\nLicense: MIT\nBuildRequires: libfoo-devel >= 1.0\n\n\
         %description\nd\n%files\n/usr/bin/app\n",
    );
    spec("tool", "Name: tool\nVersion: 0.1\nRelease: 1\nSummary: s\nLicense: MIT\n%description\nd\n%files\n/usr/bin/tool\n");
    let s = Sched::start(tmp.path(), &["--define", "dist .ph5"]);
    assert_eq!(s.summary().await["packages"], 3);
    let (_, app) = s.get("/v1/packages/app").await;
    assert_eq!(app["info"]["evr"], "2.0-3.ph5");
    assert_eq!(app["info"]["waiting_on"], json!(["libfoo"]));
    assert_eq!(app["info"]["spec"], "SPECS/app/app.spec");
    let w = s.register("w1", 2).await;
    let l1 = s.lease(&w, 0).await["lease"].clone();
    let l2 = s.lease(&w, 0).await["lease"].clone();
    // libfoo (priority 2) first, then tool; app waits.
    assert_eq!(
        (l1["package"].as_str(), l2["package"].as_str()),
        (Some("libfoo"), Some("tool"))
    );
    assert_eq!(l1["macros"], json!([{"name": "dist", "value": ".ph5"}]));
    let id = l1["lease_id"].as_str().unwrap();
    let rpms = publish(
        tmp.path(),
        id,
        &[
            "stage/RPMS/x86_64/libfoo-1.0-1.ph5.x86_64.rpm".into(),
            "stage/RPMS/x86_64/libfoo-devel-1.0-1.ph5.x86_64.rpm".into(),
            "stage/SRPMS/libfoo-1.0-1.ph5.src.rpm".into(),
        ],
    );
    let (st, v) = s
        .post(&format!("/v1/leases/{id}/report"), json!({"worker_id": w, "duration_secs": 3.5, "outcome": {"status": "success", "rpms": rpms}}))
        .await;
    assert_eq!(st, 200, "{v}");
    let la = s.lease_pkg(&w, "app").await;
    // The BuildRequires closure: libfoo-devel and, by its Requires, libfoo.
    assert_eq!(
        la["install"],
        json!([
            "stage/RPMS/x86_64/libfoo-1.0-1.ph5.x86_64.rpm",
            "stage/RPMS/x86_64/libfoo-devel-1.0-1.ph5.x86_64.rpm"
        ])
    );
    assert_eq!(la["spec"], "SPECS/app/app.spec");
}

#[tokio::test]
async fn hostile_input_never_breaks_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    write_plan(tmp.path(), &[("a", &[], None)]);
    let s = Sched::start(tmp.path(), &[]);
    let w = s.register("w1", 1).await;
    let la = s.lease_pkg(&w, "a").await;
    let id = la["lease_id"].as_str().unwrap();
    let long = "x".repeat(100_000);
    let bodies = [
        String::new(),
        "null".into(),
        "0".into(),
        "\"\"".into(),
        "{\"worker_id\": null}".into(),
        json!({"worker_id": w, "wait_secs": u64::MAX}).to_string(),
        json!({"worker_id": w, "duration_secs": 1e308, "outcome": {"status": "failure", "reason": "r"}}).to_string(),
        json!({"worker_id": w, "duration_secs": 1, "outcome": {"status": "failure", "reason": long}}).to_string(),
        json!({"worker_id": long, "wait_secs": 0}).to_string(),
        json!({"name": long, "arch": "x86_64", "slots": 1}).to_string(),
        json!({"name": "ü\u{0}", "arch": "x86_64", "slots": 4294967295u64}).to_string(),
        "{\"a\":".repeat(10_000),
        "[".repeat(100_000),
    ];
    let paths = [
        "/v1/workers".to_string(),
        "/v1/lease".to_string(),
        format!("/v1/leases/{id}/heartbeat"),
        format!("/v1/leases/{id}/report"),
        "/v1/leases/%00%ff/report".to_string(),
        "/v1/leases/..%2F..%2Fetc/report".to_string(),
    ];
    for path in &paths {
        for body in &bodies {
            let (st, v) = s.post_with(path, body.clone(), Some(TOKEN)).await;
            assert!(
                (200..500).contains(&st),
                "{path} {}: {st} {v}",
                &body[..body.len().min(80)]
            );
        }
    }
    for path in [
        "/v1/packages/%00",
        "/v1/packages?state=%ff",
        "/v1/packages/..%2F..",
        "/v1/summary?x=1",
    ] {
        let (st, _) = s.get(path).await;
        assert!((200..500).contains(&st), "{path}: {st}");
    }
    // Still serving, and the lease is still live and honoured.
    assert_eq!(s.state_of("a").await, "building");
    assert_eq!(s.succeed(&w, &la).await.0, 200);
}
