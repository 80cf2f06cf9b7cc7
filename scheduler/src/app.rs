//! The shared application state behind every request, and the lease reaper.

use crate::db::writer::{Pending, Writer};
use crate::metrics::Metrics;
use crate::promoter::Share;
use crate::state::Build;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

pub struct App {
    build: Mutex<Build>,
    pub writer: Writer,
    /// Bumped whenever a package may have become ready or the build ended.
    pub changed: watch::Sender<u64>,
    pub metrics: Metrics,
    pub token: String,
    /// Upper bound of a lease request's long poll.
    pub max_wait: Duration,
    pub lease_ttl_ms: u64,
    /// The build directory's stage/ and incoming/.
    pub share: Share,
}

impl App {
    pub fn new(
        build: Build,
        writer: Writer,
        metrics: Metrics,
        token: String,
        max_wait: Duration,
        share: Share,
    ) -> App {
        let lease_ttl_ms = build.cfg.lease_ttl_ms;
        let (changed, _) = watch::channel(0);
        App {
            build: Mutex::new(build),
            writer,
            changed,
            metrics,
            token,
            max_wait,
            lease_ttl_ms,
            share,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Build> {
        self.build
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the build under the lock and queues its state-file
    /// changes in order; await the returned [`Pending`] before answering.
    pub fn change<T>(&self, f: impl FnOnce(&mut Build) -> T) -> (T, Pending) {
        let mut b = self.lock();
        let out = f(&mut b);
        let ops = b.take_ops();
        let pending = self.writer.submit(ops);
        (out, pending)
    }

    /// Wakes long-polling lease requests.
    pub fn wake(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Expires leases whose deadline passed, and marks gone the workers that
/// have not called for a lease TTL plus the longest long poll, forever.
pub async fn reaper(app: actix_web::web::Data<App>) {
    let silence_ms = app
        .lease_ttl_ms
        .saturating_add(u64::try_from(app.max_wait.as_millis()).unwrap_or(u64::MAX));
    loop {
        // Wake at the next deadline, and at least every second (new leases).
        let next = app.lock().next_deadline();
        let wait = next
            .map_or(1000, |d| d.saturating_sub(now_ms()))
            .clamp(10, 1000);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let now = now_ms();
        let (gone, pending) = app.change(|b| b.mark_silent_gone(now, silence_ms));
        if pending.wait().await.is_err() {
            return;
        }
        if gone > 0 {
            app.wake();
        }
        let due = app.lock().next_deadline().is_some_and(|d| d <= now);
        if !due {
            continue;
        }
        let (n, pending) = app.change(|b| b.reap(now));
        if pending.wait().await.is_err() {
            return;
        }
        if n > 0 {
            app.wake();
        }
    }
}
