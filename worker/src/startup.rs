//! Before the first lease: the scheduler's URL is checked (a malformed one is
//! a usage error naming it), and the scheduler is waited for, since in a
//! cluster workers may start before it answers.

use dbuild_common::settings::{SettingsError, Span};
use reqwest::Url;
use std::time::{Duration, Instant};

/// How often the wait says what it waits for.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// The longest pause between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// `--scheduler` as a URL: `http://HOST[:PORT][/PATH]`.
pub fn scheduler_url(text: &str) -> Result<Url, SettingsError> {
    let bad = |why: String| {
        SettingsError::invalid(
            "scheduler",
            text,
            format!("{why}; expected an http:// URL such as http://scheduler:8080"),
        )
    };
    let url = Url::parse(text).map_err(|e| bad(format!("not a URL ({e})")))?;
    if url.scheme() != "http" {
        return Err(bad(format!("unsupported scheme {:?}", url.scheme())));
    }
    if !url.has_host() {
        return Err(bad("no host".into()));
    }
    Ok(url)
}

/// The scheduler did not answer in time.
#[derive(Debug, thiserror::Error)]
#[error("the scheduler at {url} did not answer within {waited} (--connect-timeout): {last}")]
pub struct Unreachable {
    pub url: String,
    pub waited: Span,
    /// The last try's error.
    pub last: String,
}

/// Asks the scheduler's `/healthz` until it answers (any answer but a server
/// error: the token is checked when the worker registers), trying again with
/// a growing pause for up to `timeout`, and saying about every 10 s what it
/// waits for.
pub async fn wait_for_scheduler(url: &Url, timeout: Duration) -> Result<(), Unreachable> {
    let health = format!("{}/healthz", url.as_str().trim_end_matches('/'));
    let started = Instant::now();
    let unreachable = |last: String| Unreachable {
        url: url.to_string(),
        waited: Span(timeout),
        last,
    };
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| unreachable(causes(&e)))?;
    let mut backoff = Duration::from_millis(200);
    let mut next_log = started;
    loop {
        let last = match http.get(&health).send().await {
            Ok(resp) if !resp.status().is_server_error() => {
                if started.elapsed() >= LOG_EVERY {
                    tracing::info!(url = %url, waited_secs = started.elapsed().as_secs(), "the scheduler answers");
                }
                return Ok(());
            }
            Ok(resp) => format!("GET {health} answered {}", resp.status()),
            Err(e) => causes(&e),
        };
        let waited = started.elapsed();
        tracing::debug!(url = %url, error = %last, "the scheduler does not answer yet");
        if waited >= timeout {
            return Err(unreachable(last));
        }
        if Instant::now() >= next_log {
            tracing::warn!(url = %url, waited_secs = waited.as_secs(), timeout = %Span(timeout), error = %last, "waiting for the scheduler to answer");
            next_log += LOG_EVERY;
        }
        tokio::time::sleep(backoff.min(timeout - waited)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// An error and its sources, joined by `: ` (reqwest's own message only
/// names the URL; the cause, e.g. "Connection refused", is below it).
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_are_taken() {
        assert_eq!(
            scheduler_url("http://10.0.0.5:8080").unwrap().as_str(),
            "http://10.0.0.5:8080/"
        );
        for bad in ["notaurl", "ftp://host", "http://", "127.0.0.1:8080"] {
            let e = scheduler_url(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--scheduler {bad:?}: ")), "{e}");
        }
    }
}
