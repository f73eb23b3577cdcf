//! Why a download failed, by kind: the pipeline turns a failure into one skipped row (its
//! sentence goes into the report), and a truncated download is tried once more.

use std::time::Duration;

use super::guard::AddressKind;

/// What is wrong with a URL before any request is made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UrlProblem {
    /// No `scheme://`.
    #[error("not an absolute URL")]
    NotAbsolute,
    /// A scheme other than http and https.
    #[error("unsupported URL scheme {0:?} (only http and https)")]
    Scheme(String),
    /// `http:///path`.
    #[error("the URL has no host")]
    NoHost,
    /// A port that is not a number up to 65535.
    #[error("invalid port {0:?} in the URL")]
    Port(String),
}

/// A failure worth retrying: the last one is named when retries run out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Transient {
    /// 408, 429 or 5xx.
    #[error("{0}")]
    Status(String),
    /// A refused, reset or timed-out connection, or a body that stopped arriving.
    #[error("{0}")]
    Connection(String),
}

/// Why a URL could not be downloaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FetchError {
    /// The URL cannot be requested.
    #[error("GET {url} failed: {problem}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        problem: UrlProblem,
    },
    /// The host (or a redirect's host) is not a public address.
    #[error(
        "GET {url} refused: {host} is {ip}, a {kind} address; only public addresses are \
         downloaded from (pass --allow-private-network for images on this machine or network)"
    )]
    NotPublic {
        /// The URL asked for.
        url: String,
        /// The host that resolved to it.
        host: String,
        /// The address.
        ip: std::net::IpAddr,
        /// What kind of address.
        kind: AddressKind,
    },
    /// A redirect to somewhere that cannot be followed.
    #[error("GET {url} failed: redirected to {target:?}, {why}")]
    Redirect {
        /// The URL asked for.
        url: String,
        /// Where it was sent.
        target: String,
        /// Why that is not followed.
        why: &'static str,
    },
    /// An error status that retrying cannot fix (404, 403, …), or a permanent transport error.
    #[error("GET {url} failed: {reason}")]
    Failed {
        /// The URL.
        url: String,
        /// The status line or transport error.
        reason: String,
    },
    /// The server asked to wait longer than allowed.
    #[error(
        "GET {url} failed: {status}; the server asked to retry after {} s, longer than the \
         limit of {} s",
        wait.as_secs(),
        limit.as_secs()
    )]
    WaitTooLong {
        /// The URL.
        url: String,
        /// The status line.
        status: String,
        /// The wait asked for.
        wait: Duration,
        /// The longest wait allowed.
        limit: Duration,
    },
    /// The body is over the size limit.
    #[error("GET {url} failed: {reason}")]
    TooLarge {
        /// The URL.
        url: String,
        /// How large, against which limit.
        reason: String,
    },
    /// Every attempt failed.
    #[error("GET {url} gave up after {attempts} attempt{}: {last}", if *attempts == 1 { "" } else { "s" })]
    GaveUp {
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: Transient,
    },
    /// The URL's downloads together took longer than one image may.
    #[error(
        "GET {url} took more than {} s over all attempts (--download-timeout); skipped",
        limit.as_secs()
    )]
    Deadline {
        /// The URL.
        url: String,
        /// The time allowed.
        limit: Duration,
    },
    /// Its host stopped answering earlier in this build, so it is not tried.
    #[error(
        "GET {url} skipped: {host} stopped answering earlier in this build ({stalls} downloads \
         ran out of time); try again later"
    )]
    HostStalled {
        /// The URL.
        url: String,
        /// The host.
        host: String,
        /// How many downloads from it ran out of time.
        stalls: u32,
    },
    /// A 304 to a request that offered no cached copy.
    #[error("GET {url} failed: HTTP 304 Not Modified, but no cached copy was offered")]
    NotModifiedWithoutCopy {
        /// The URL.
        url: String,
    },
}
