//! HTTP to servers listening on loopback inside a container's network
//! namespace. The test's containers share one namespace with only loopback
//! (held by a pause container), so the test reaches them the same way: a
//! thread of its own joins that namespace (`setns`), connects to
//! 127.0.0.1:PORT and sends an HTTP/1.0 GET. No traffic leaves loopback.

use anyhow::{anyhow, bail, Context};
use nix::sched::CloneFlags;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

/// The network namespace of a running process (e.g. a container's PID 1).
#[derive(Debug, Clone)]
pub struct Netns {
    path: PathBuf,
}

impl Netns {
    pub fn of_pid(pid: u32) -> Netns {
        Netns {
            path: PathBuf::from(format!("/proc/{pid}/ns/net")),
        }
    }

    /// `GET path` on 127.0.0.1:`port` in the namespace: the status code and body.
    pub fn get(&self, port: u16, path: &str, timeout: Duration) -> anyhow::Result<(u16, String)> {
        let ns = std::fs::File::open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        // setns changes only the calling thread, which ends with the request.
        let thread = std::thread::spawn(move || -> anyhow::Result<Vec<u8>> {
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).context("setns")?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut conn = TcpStream::connect_timeout(&addr, timeout)
                .with_context(|| format!("connecting to {addr}"))?;
            conn.set_read_timeout(Some(timeout))?;
            conn.set_write_timeout(Some(timeout))?;
            conn.write_all(request.as_bytes())?;
            let mut response = Vec::new();
            conn.read_to_end(&mut response)?;
            Ok(response)
        });
        let response = thread
            .join()
            .map_err(|_| anyhow!("the request thread panicked"))??;
        let text = String::from_utf8_lossy(&response);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            bail!("GET {path}: no complete HTTP response: {text:?}");
        };
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("GET {path}: bad status line in {head:?}"))?;
        Ok((status, body.to_string()))
    }

    /// `GET path` answered 200 with a JSON body, parsed.
    pub fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        port: u16,
        path: &str,
        timeout: Duration,
    ) -> anyhow::Result<T> {
        let (status, body) = self.get(port, path, timeout)?;
        if status != 200 {
            bail!("GET {path}: {status}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("GET {path}: {body}"))
    }
}
