//! Retry policy and response helpers: exponential backoff, `Retry-After` parsing, which
//! transport errors are worth retrying, and reading a body under a size limit.

use std::io::Read;
use std::time::{Duration, Instant, SystemTime};

use super::hosts::jitter;

/// Upper bound of one backoff wait (before jitter).
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The wait before retry number `retry + 1`: `base × 2^retry` jittered to 0.5–1.5× (so that
/// many clients don't retry in lockstep), capped at [`MAX_BACKOFF`].
pub(super) fn backoff(base: Duration, retry: u32) -> Duration {
    let factor = 1u32 << retry.min(20);
    jitter(base.saturating_mul(factor).min(MAX_BACKOFF)).min(MAX_BACKOFF)
}

/// A `Retry-After` value (delay in seconds, or an HTTP date) as a wait from `now`.
/// A date in the past means no wait; an unparsable value gives `None`.
pub(super) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long digit strings saturate rather than being ignored.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether a transport error may go away on its own (refused/reset connections, timeouts,
/// garbled responses), as opposed to a bad URL, an unknown host or a redirect loop.
pub(super) fn is_transient(kind: ureq::ErrorKind) -> bool {
    matches!(
        kind,
        ureq::ErrorKind::ConnectionFailed
            | ureq::ErrorKind::Io
            | ureq::ErrorKind::BadStatus
            | ureq::ErrorKind::ProxyConnect
    )
}

/// A transport error as a sentence fragment without the URL (the caller names it).
pub(super) fn describe_transport(transport: &ureq::Transport) -> String {
    let mut text = transport.kind().to_string();
    if let Some(message) = transport.message() {
        text.push_str(": ");
        text.push_str(message);
    }
    if let Some(source) = std::error::Error::source(transport) {
        text.push_str(": ");
        text.push_str(&source.to_string());
    }
    text
}

/// `HTTP 404 Not Found`; the reason phrase is the server's.
pub(super) fn status_line(code: u16, text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {code}")
    } else {
        format!("HTTP {code} {text}")
    }
}

/// Why a body could not be read.
#[derive(Debug)]
pub(super) enum BodyError {
    /// Over the limit: permanent.
    TooLarge(String),
    /// The connection broke: transient.
    Io(String),
    /// The body stopped arriving, or was still arriving at the deadline: transient, and a sign
    /// of a stalled host.
    Stalled(String),
}

/// Whether an I/O error is a timeout.
fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

/// Whether a transport error is a timeout (connecting or reading), a sign of a stalled host.
pub(super) fn is_timeout(transport: &ureq::Transport) -> bool {
    std::error::Error::source(transport)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(timed_out)
}

/// Reads `response`'s body, refusing (without reading it) one whose `Content-Length` is over
/// `max_bytes`, and stopping one that grows past it or is still arriving at `deadline`.
pub(super) fn read_body(
    response: ureq::Response,
    max_bytes: u64,
    deadline: Instant,
) -> Result<Vec<u8>, BodyError> {
    let declared = response
        .header("Content-Length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = declared
        && len > max_bytes
    {
        return Err(BodyError::TooLarge(format!(
            "the response is {len} bytes, more than the limit of {max_bytes} bytes"
        )));
    }
    let capacity = declared.unwrap_or(0).min(max_bytes).min(16 * 1024 * 1024);
    let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let mut reader = response.into_reader().take(max_bytes.saturating_add(1));
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut chunk).map_err(|e| {
            let reason = format!("reading the response body failed: {e}");
            if timed_out(&e) {
                BodyError::Stalled(reason)
            } else {
                BodyError::Io(reason)
            }
        })?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
        if Instant::now() > deadline {
            return Err(BodyError::Stalled(format!(
                "the response body was still arriving at the time limit ({} bytes so far)",
                bytes.len()
            )));
        }
    }
    if bytes.len() as u64 > max_bytes {
        return Err(BodyError::TooLarge(format!(
            "the response body is more than the limit of {max_bytes} bytes"
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_secs(1);
        for retry in 0..4 {
            let nominal = base * (1 << retry);
            let wait = backoff(base, retry);
            assert!(
                wait >= nominal / 2 && wait <= nominal * 3 / 2,
                "{retry}: {wait:?}"
            );
        }
        assert!(backoff(base, 10) >= MAX_BACKOFF / 2 && backoff(base, 10) <= MAX_BACKOFF);
        assert!(backoff(base, u32::MAX) <= MAX_BACKOFF);
    }

    #[test]
    fn status_line_uses_the_reason_phrase_when_there_is_one() {
        assert_eq!(status_line(404, "Not Found"), "HTTP 404 Not Found");
        assert_eq!(status_line(599, ""), "HTTP 599");
    }
}
