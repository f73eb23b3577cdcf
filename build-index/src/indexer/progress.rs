//! Progress of a build on stderr: a bar with count, rate and ETA on a terminal, a plain line every
//! few seconds otherwise (cron logs), nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How progress is shown.
pub(crate) enum Progress {
    /// An interactive bar.
    Bar(ProgressBar),
    /// Plain lines at most every `every`.
    Lines {
        total: u64,
        state: Mutex<(u64, Instant)>,
        start: Instant,
        every: Duration,
    },
    /// Nothing (`--quiet`).
    Quiet,
}

impl Progress {
    /// Chooses the style for `total` items.
    pub(crate) fn new(total: u64, quiet: bool) -> Self {
        if quiet {
            return Self::Quiet;
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{spinner} images {bar:40} {pos}/{len} · {per_sec} · ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            return Self::Bar(bar);
        }
        let now = Instant::now();
        Self::Lines {
            total,
            state: Mutex::new((0, now)),
            start: now,
            every: Duration::from_secs(5),
        }
    }

    /// One more item done.
    pub(crate) fn inc(&self) {
        match self {
            Self::Bar(bar) => bar.inc(1),
            Self::Lines {
                total,
                state,
                start,
                every,
            } => {
                let Ok(mut s) = state.lock() else { return };
                s.0 += 1;
                let (done, last) = *s;
                if done == *total || last.elapsed() >= *every {
                    s.1 = Instant::now();
                    let secs = start.elapsed().as_secs_f64().max(1e-3);
                    let rate = done as f64 / secs;
                    let eta = if rate > 0.0 {
                        (*total - done) as f64 / rate
                    } else {
                        0.0
                    };
                    eprintln!("images {done}/{total} · {rate:.1}/s · ETA {eta:.0}s");
                }
            }
            Self::Quiet => {}
        }
    }

    /// Clears the bar.
    pub(crate) fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }

    /// A message line, unless quiet.
    pub(crate) fn note(&self, msg: &str) {
        match self {
            Self::Bar(bar) => bar.println(msg),
            Self::Lines { .. } => eprintln!("{msg}"),
            Self::Quiet => {}
        }
    }
}
