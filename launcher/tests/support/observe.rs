//! Real Prometheus and headless Chromium for the observability tests
//! (Debian's `prometheus` and `chromium` packages).

use super::deadline::output_within;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A Prometheus server on loopback scraping, every second, the targets of
/// the file-discovery file `targets`; killed when dropped.
pub struct Prometheus {
    child: Child,
    pub url: String,
}

impl Prometheus {
    pub async fn start(dir: &Path, targets: &Path) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: dbuild\n    scrape_timeout: 900ms\n    file_sd_configs:\n      - files: ['{}']\n        refresh_interval: 1s\n",
                targets.display()
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("prometheus not found ({e}): install Debian's prometheus package (apt-get install prometheus)")
            });
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = reqwest::get(format!("{}/-/ready", p.url)).await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready in 60 s: {}",
                std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// An instant query at `time` (Unix seconds): `data.result`, or the error.
    pub async fn query(&self, expr: &str, time: f64) -> Result<Vec<serde_json::Value>, String> {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", expr), ("time", &format!("{time:.3}"))])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// The values of the one series `expr` gives from `start` to `end`, a second apart.
    pub async fn range(&self, expr: &str, start: f64, end: f64) -> Vec<f64> {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/v1/query_range", self.url))
            .query(&[
                ("query", expr),
                ("start", &format!("{start:.3}")),
                ("end", &format!("{end:.3}")),
                ("step", "1"),
            ])
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["status"], "success", "{expr}: {v}");
        v["data"]["result"][0]["values"]
            .as_array()
            .map(|vals| {
                vals.iter()
                    .filter_map(|p| p[1].as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Headless Chromium with a profile of its own.
pub struct Browser {
    profile: PathBuf,
}

impl Browser {
    pub fn new(dir: &Path) -> Browser {
        let profile = dir.join("chromium-profile");
        std::fs::create_dir_all(&profile).unwrap();
        Browser { profile }
    }

    fn command(&self, window: &str) -> Command {
        let mut cmd = Command::new("chromium");
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", self.profile.display()))
        .arg(format!("--window-size={window}"))
        // The page's scripts run (and fetch) for this much virtual time first.
        .arg("--virtual-time-budget=4000");
        cmd
    }

    /// The DOM of `url` once its scripts ran.
    pub fn dom(&self, url: &str) -> String {
        let out = output_within(
            self.command("1400,1000").arg("--dump-dom").arg(url),
            Duration::from_secs(90),
        );
        assert!(
            out.status.success(),
            "chromium --dump-dom {url}: {}\n(install Debian's chromium package)",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A PNG of `url` at `path`.
    pub fn screenshot(&self, url: &str, path: &Path, window: &str) {
        let out = output_within(
            self.command(window)
                .arg(format!("--screenshot={}", path.display()))
                .arg(url),
            Duration::from_secs(90),
        );
        assert!(
            out.status.success() && path.is_file(),
            "chromium --screenshot {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The number the page shows in the element with id `id`.
pub fn shown(dom: &str, id: &str) -> Option<u64> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let rest = &dom[at..];
    let text = &rest[rest.find('>')? + 1..];
    text[..text.find('<')?].trim().parse().ok()
}
