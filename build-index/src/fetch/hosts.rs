//! Per-host politeness: at most `per_host` requests in flight to one `host:port`, and a
//! jittered pause between consecutive requests to it, enforced across threads.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::error::UrlProblem;

/// `d` scaled by a uniformly random factor in [0.5, 1.5] (saturating, never panicking).
pub(super) fn jitter(d: Duration) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * (0.5 + fastrand::f64())).unwrap_or(Duration::MAX)
}

/// The instant `wait` from now; absurd waits are clamped to a year instead of overflowing.
pub(super) fn after(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// The `host:port` an `http(s)` URL talks to (lower-cased, default port filled in): the unit
/// of politeness. Errors for other schemes or a missing host.
pub(super) fn host_key(url: &str) -> Result<String, UrlProblem> {
    let (scheme, rest) = url.split_once("://").ok_or(UrlProblem::NotAbsolute)?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        other => return Err(UrlProblem::Scheme(other.to_string())),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .to_ascii_lowercase();
    // An IPv6 literal is bracketed and contains colons itself.
    let port_sep = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..].find(':').map(|i| bracket + i),
        None => host_port.rfind(':'),
    };
    let (host, port) = match port_sep {
        Some(i) => (&host_port[..i], &host_port[i + 1..]),
        None => (host_port.as_str(), ""),
    };
    if host.is_empty() {
        return Err(UrlProblem::NoHost);
    }
    let port: u16 = if port.is_empty() {
        default_port
    } else {
        port.parse()
            .map_err(|_| UrlProblem::Port(port.to_string()))?
    };
    Ok(format!("{host}:{port}"))
}

/// Book-keeping for one host.
#[derive(Default)]
struct HostState {
    /// Requests currently holding a [`Permit`].
    in_flight: usize,
    /// No new request may start before this.
    next_start: Option<Instant>,
}

/// Hands out [`Permit`]s so that each host sees at most `per_host` concurrent requests, spaced
/// by the (jittered) delay.
pub(super) struct HostLimiter {
    per_host: usize,
    delay: Duration,
    hosts: Mutex<HashMap<String, HostState>>,
    /// Signalled whenever a permit is released.
    released: Condvar,
}

impl HostLimiter {
    /// A limiter allowing `per_host` (at least 1) requests per host, `delay` apart.
    pub(super) fn new(per_host: usize, delay: Duration) -> Self {
        Self {
            per_host: per_host.max(1),
            delay,
            hosts: Mutex::new(HashMap::new()),
            released: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, HostState>> {
        // The state stays consistent even if a holder panicked: every update is one assignment.
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks until a request to `host` may start (a slot is free, the host's delay or
    /// hold-off has passed, and so has `not_before`), then takes the slot.
    pub(super) fn acquire(&self, host: &str, not_before: Option<Instant>) -> Permit<'_> {
        let mut hosts = self.lock();
        loop {
            let now = Instant::now();
            let state = hosts.entry(host.to_owned()).or_default();
            if state.in_flight >= self.per_host {
                hosts = self
                    .released
                    .wait(hosts)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            match state.next_start.max(not_before) {
                Some(start) if start > now => {
                    hosts = self
                        .released
                        .wait_timeout(hosts, start - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                _ => {
                    state.in_flight += 1;
                    // With several slots per host, starts are spaced too.
                    state.next_start = Some(after(jitter(self.delay)));
                    return Permit {
                        limiter: self,
                        host: host.to_owned(),
                        hold_off: None,
                    };
                }
            }
        }
    }
}

/// A slot for one request to one host; releasing it (on drop) starts the host's delay.
pub(super) struct Permit<'a> {
    limiter: &'a HostLimiter,
    host: String,
    hold_off: Option<Duration>,
}

impl Permit<'_> {
    /// Keeps every request to this host waiting at least `wait` after this one ends (the
    /// server said it is overloaded).
    pub(super) fn hold_off(&mut self, wait: Duration) {
        self.hold_off = Some(self.hold_off.map_or(wait, |w| w.max(wait)));
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let limiter = self.limiter;
        let mut hosts = limiter.lock();
        if let Some(state) = hosts.get_mut(&self.host) {
            state.in_flight = state.in_flight.saturating_sub(1);
            let pause = jitter(limiter.delay).max(self.hold_off.unwrap_or_default());
            let next = after(pause);
            state.next_start = Some(state.next_start.map_or(next, |n| n.max(next)));
        }
        drop(hosts);
        limiter.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_key_is_host_and_port() {
        assert_eq!(
            host_key("http://Example.com/a.jpg").as_deref(),
            Ok("example.com:80")
        );
        assert_eq!(
            host_key("https://example.com?x=1").as_deref(),
            Ok("example.com:443")
        );
        assert_eq!(
            host_key("HTTPS://u:p@cdn.example:8443/x").as_deref(),
            Ok("cdn.example:8443")
        );
        assert_eq!(host_key("http://[::1]:8080/x").as_deref(), Ok("[::1]:8080"));
        assert_eq!(host_key("http://[::1]/x").as_deref(), Ok("[::1]:80"));
        assert_eq!(
            host_key("ftp://example.com/x"),
            Err(UrlProblem::Scheme("ftp".into()))
        );
        assert!(host_key("example.com/x").is_err());
        assert!(host_key("http:///x").is_err());
        assert!(host_key("http://example.com:99999/").is_err());
    }

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half() {
        let d = Duration::from_millis(1000);
        for _ in 0..100 {
            let j = jitter(d);
            assert!(j >= d / 2 && j <= d * 3 / 2, "{j:?}");
        }
        // Absurd options saturate instead of panicking.
        assert!(jitter(Duration::MAX) >= Duration::MAX / 2);
        assert!(after(Duration::MAX) > Instant::now());
    }

    #[test]
    fn a_released_permit_delays_the_next_one_but_not_other_hosts() {
        let limiter = HostLimiter::new(1, Duration::from_millis(100));
        let start = Instant::now();
        drop(limiter.acquire("a:80", None));
        drop(limiter.acquire("b:80", None));
        assert!(
            start.elapsed() < Duration::from_millis(50),
            "first requests must not wait"
        );
        drop(limiter.acquire("a:80", None));
        assert!(start.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn hold_off_delays_the_host() {
        let limiter = HostLimiter::new(1, Duration::ZERO);
        let start = Instant::now();
        limiter
            .acquire("a:80", None)
            .hold_off(Duration::from_millis(80));
        drop(limiter.acquire("a:80", None));
        assert!(start.elapsed() >= Duration::from_millis(80));
    }
}
