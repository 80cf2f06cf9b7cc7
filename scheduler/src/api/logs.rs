//! `GET /v1/packages/{name}/log[?attempt=N][&follow=false]`: one attempt's
//! build log from `stage/LOGS/<name>/<attempt>.log`. While that attempt
//! runs, the answer is chunked and follows the file until the lease ends
//! (as `tail -f` would); otherwise it is the file as it is. Only files of
//! that directory are served: the name must be a package of the plan and
//! the attempt a number.

use crate::app::App;
use crate::error::SchedError;
use crate::state::LogTarget;
use actix_web::web::Bytes;
use actix_web::{get, web, HttpResponse};
use dbuild_common::wire::ErrorBody;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LogQuery {
    /// Which attempt (1 for the first); default the latest.
    attempt: Option<u32>,
    /// Follow a running attempt's log until it ends (default true).
    follow: Option<bool>,
}

/// How often a followed log is read again once at its end.
const POLL: Duration = Duration::from_millis(250);

/// One attempt's build log, followed live while the attempt runs.
#[utoipa::path(get, path = "/v1/packages/{name}/log",
    params(("name" = String, Path, description = "source package name"), LogQuery),
    responses((status = 200, description = "the log (chunked and followed while the attempt runs)", content_type = "text/plain"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[get("/v1/packages/{name}/log")]
pub async fn log(
    app: web::Data<App>,
    name: web::Path<String>,
    q: web::Query<LogQuery>,
) -> Result<HttpResponse, SchedError> {
    let target = app.lock().log_target(&name, q.attempt)?;
    let follow = q.follow.unwrap_or(true);
    serve(
        app.share.build_dir.join(&target.rel_path),
        target,
        follow,
        move |id| app.lock().lease_is_live(id),
    )
    .await
}

/// Serves the log of `target` at `path`; while `live(lease)` holds and
/// `follow`, keeps reading what the worker appends.
pub async fn serve(
    path: PathBuf,
    target: LogTarget,
    follow: bool,
    live: impl Fn(&str) -> bool + 'static,
) -> Result<HttpResponse, SchedError> {
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => Some(f),
        // A build that just started may not have created it yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && target.live_lease.is_some() => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SchedError::NotFound(format!(
                "no log of attempt {} ({})",
                target.attempt, target.rel_path
            )))
        }
        Err(e) => return Err(SchedError::Internal(format!("{}: {e}", target.rel_path))),
    };
    let lease = target.live_lease.filter(|_| follow);
    let state = Follow {
        path,
        file,
        lease,
        last_round: false,
    };
    let body = futures_util::stream::unfold((state, live), |(mut st, live)| async move {
        let chunk = st.next_chunk(&live).await?;
        Some((Ok::<_, std::io::Error>(chunk), (st, live)))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .streaming(body))
}

struct Follow {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    /// Followed while this lease is live.
    lease: Option<String>,
    /// The lease ended: read what is left once more, then stop.
    last_round: bool,
}

impl Follow {
    /// The next piece of the log; None at its end. `live(lease)`: the
    /// followed lease is still live.
    async fn next_chunk(&mut self, live: &impl Fn(&str) -> bool) -> Option<Bytes> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if self.file.is_none() {
                self.file = tokio::fs::File::open(&self.path).await.ok();
            }
            if let Some(f) = self.file.as_mut() {
                // At the end a read returns 0; what the worker appends comes next.
                match f.read(&mut buf).await {
                    Ok(0) => {}
                    Ok(n) => {
                        buf.truncate(n);
                        return Some(Bytes::from(buf));
                    }
                    Err(_) => return None,
                }
            }
            let lease = self.lease.as_deref()?;
            if self.last_round {
                return None;
            }
            if !live(lease) {
                self.last_round = true;
                continue;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
