//! `--shard I/N|auto`: which share of the catalogue's rows this process embeds when a build is
//! spread over machines (a Kubernetes Indexed Job, a Slurm array, or by hand). Parsing takes an
//! environment lookup, so tests never touch the process's environment.

use std::process::ExitCode;

use anyhow::{Result, bail};

use super::Args;
use super::inputs::Inputs;
use super::pipeline::ImageOutcome;
use super::report::{Report, ReportRow};

/// The largest share count: more machines than this gain nothing over a few big ones.
pub(crate) const MAX_SHARDS: usize = 10_000;

/// This process's share: the rows whose position modulo `count` is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    /// Which share, `0..count`.
    pub(crate) index: usize,
    /// How many shares the catalogue is cut into.
    pub(crate) count: usize,
}

/// Why `--shard` cannot be used (a usage error: exit 2).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShardError {
    /// `--shard` is neither `I/N` nor `auto`.
    #[error("--shard {0:?}: expected I/N (e.g. --shard 0/4 … --shard 3/4) or auto")]
    Malformed(String),
    /// A number (from the flag or an environment variable) is not a whole number.
    #[error("{name}={value:?} is not a whole number; {fix}")]
    NotANumber {
        /// The flag or variable.
        name: String,
        /// Its value.
        value: String,
        /// What to do.
        fix: &'static str,
    },
    /// The index is not below the count, or the count is out of range.
    #[error(
        "{source_name}: share {index} of {count} does not exist; the count must be 1 to \
         {MAX_SHARDS} and the index 0 to count - 1 ({fix})"
    )]
    OutOfRange {
        /// Where the numbers came from.
        source_name: String,
        /// The index given.
        index: usize,
        /// The count given.
        count: usize,
        /// What to do.
        fix: &'static str,
    },
    /// `auto` found no scheduler's variables.
    #[error(
        "--shard auto: neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor \
         SLURM_ARRAY_TASK_ID (Slurm array) is set; run it as such a job or give --shard I/N"
    )]
    NoScheduler,
    /// One variable of a pair is set, the other not.
    #[error("--shard auto: {set} is set but {missing} is not; {fix}")]
    Missing {
        /// The variable found.
        set: &'static str,
        /// The variable missing.
        missing: &'static str,
        /// What to do.
        fix: &'static str,
    },
}

const K8S_FIX: &str = "Kubernetes does not set JOB_COMPLETIONS: add it to the pod template's env \
                       with the Job's completions";
const SLURM_FIX: &str = "use a plain range such as #SBATCH --array=0-15";

impl Shard {
    /// Parses `--shard`: `I/N`, or `auto` read through `env` (Kubernetes first, then Slurm).
    pub(crate) fn parse(
        spec: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ShardError> {
        let spec = spec.trim();
        if spec.eq_ignore_ascii_case("auto") {
            return from_env(&env);
        }
        let (i, n) = spec
            .split_once('/')
            .ok_or_else(|| ShardError::Malformed(spec.to_string()))?;
        let fix = "write --shard I/N, e.g. --shard 0/4";
        let shard = Self {
            index: number("--shard's index", i, fix)?,
            count: number("--shard's count", n, fix)?,
        };
        shard.check(
            format!("--shard {spec}"),
            "give --shard 0/N … --shard N-1/N",
        )
    }

    /// Whether the row at `position` (in catalogue order) is in this share.
    pub(crate) fn contains(&self, position: usize) -> bool {
        position % self.count == self.index
    }

    fn check(self, source_name: String, fix: &'static str) -> Result<Self, ShardError> {
        if (1..=MAX_SHARDS).contains(&self.count) && self.index < self.count {
            Ok(self)
        } else {
            Err(ShardError::OutOfRange {
                source_name,
                index: self.index,
                count: self.count,
                fix,
            })
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

fn number(name: &str, value: &str, fix: &'static str) -> Result<usize, ShardError> {
    value.trim().parse().map_err(|_| ShardError::NotANumber {
        name: name.to_string(),
        value: value.to_string(),
        fix,
    })
}

/// `--shard auto`: a Kubernetes Indexed Job's or a Slurm array's variables.
fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Shard, ShardError> {
    let var = |name: &'static str, fix| -> Result<Option<usize>, ShardError> {
        env(name).map(|v| number(name, &v, fix)).transpose()
    };
    if env("JOB_COMPLETION_INDEX").is_some() {
        let index = var(
            "JOB_COMPLETION_INDEX",
            "run as a Job with completionMode: Indexed",
        )?;
        let count = var("JOB_COMPLETIONS", K8S_FIX)?.ok_or(ShardError::Missing {
            set: "JOB_COMPLETION_INDEX",
            missing: "JOB_COMPLETIONS",
            fix: K8S_FIX,
        })?;
        let shard = Shard {
            index: index.unwrap_or_default(),
            count,
        };
        return shard.check(
            "JOB_COMPLETION_INDEX / JOB_COMPLETIONS".into(),
            "set JOB_COMPLETIONS to the Job's completions",
        );
    }
    if env("SLURM_ARRAY_TASK_ID").is_some() {
        let id = var("SLURM_ARRAY_TASK_ID", SLURM_FIX)?.unwrap_or_default();
        let count = var("SLURM_ARRAY_TASK_COUNT", SLURM_FIX)?.ok_or(ShardError::Missing {
            set: "SLURM_ARRAY_TASK_ID",
            missing: "SLURM_ARRAY_TASK_COUNT",
            fix: "submit with sbatch --array=0-N",
        })?;
        // `--array=1-16` numbers tasks from 1, `--array=0-30:2` in steps of 2.
        let min = var("SLURM_ARRAY_TASK_MIN", SLURM_FIX)?.unwrap_or(0);
        let step = var("SLURM_ARRAY_TASK_STEP", SLURM_FIX)?.unwrap_or(1).max(1);
        let offset = id.checked_sub(min).filter(|o| o % step == 0);
        let shard = Shard {
            index: offset.map_or(usize::MAX, |o| o / step),
            count,
        };
        return shard.check(
            format!(
                "SLURM_ARRAY_TASK_ID={id} (SLURM_ARRAY_TASK_MIN={min}, SLURM_ARRAY_TASK_COUNT={count})"
            ),
            SLURM_FIX,
        );
    }
    Err(ShardError::NoScheduler)
}

/// `build-index build --shard`: embeds this share's rows into the cache (and their thumbnails)
/// and writes no site; exit 3 if some rows of the share were skipped.
pub(crate) fn run(args: &Args, shard: Shard, note: &dyn Fn(&str)) -> Result<ExitCode> {
    let inputs = Inputs::open(args, args.out.as_deref(), note)?;
    let share: Vec<_> = (inputs.cat.rows.iter().enumerate())
        .filter(|(i, _)| shard.contains(*i))
        .map(|(_, r)| r.clone())
        .collect();
    let outcomes = inputs.embed(args, &share, note)?;
    let (mut embedded, mut reused, mut remote, mut skipped) = (0, 0, 0, Vec::new());
    for (row, outcome) in share.iter().zip(outcomes) {
        match outcome {
            ImageOutcome::Done {
                reused: r, thumb, ..
            } => {
                remote += usize::from(thumb.is_none());
                if r { reused += 1 } else { embedded += 1 }
            }
            ImageOutcome::Failed(e) => {
                skipped.push(ReportRow::new(row.row, &row.id, e.to_string()))
            }
        }
    }
    // Only the share's rows: what is published (and the catalogue's own bad rows) is the final
    // build's to report.
    let report = Report {
        rows: share.len(),
        indexed: embedded + reused,
        embedded,
        reused,
        remote_images: remote,
        skipped,
        excluded: Vec::new(),
        shortened: Vec::new(),
        dropped_columns: Vec::new(),
        filters: Vec::new(),
        searchable_columns: Vec::new(),
        damaged_cache_records: inputs.damaged_cache_records(),
        text_encoder: None,
        partition: None,
    };
    report.notes().iter().for_each(|n| note(n));
    if let Some(path) = &args.report {
        report.write(path)?;
    }
    note(&format!(
        "shard {shard}: {} of {} rows in its share: {embedded} embedded, {reused} from the cache, \
         {} skipped; run a final build without --shard to write the site",
        share.len(),
        inputs.cat.rows.len(),
        report.skipped.len()
    ));
    if args.strict && !report.skipped.is_empty() {
        bail!(
            "--strict: {} rows of shard {shard} cannot be used (listed above)",
            report.skipped.len()
        );
    }
    Ok(if report.skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str, vars: &[(&str, &str)]) -> Result<Shard, String> {
        let env = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        Shard::parse(spec, env).map_err(|e| e.to_string())
    }

    fn ok(index: usize, count: usize) -> Result<Shard, String> {
        Ok(Shard { index, count })
    }

    #[test]
    fn explicit_shares_and_their_rows() {
        assert_eq!(parse("0/4", &[]), ok(0, 4));
        assert_eq!(parse(" 3/4 ", &[]), ok(3, 4));
        assert_eq!(parse("9999/10000", &[]), ok(9999, 10_000));
        let s = Shard { index: 1, count: 3 };
        let rows: Vec<usize> = (0..8).filter(|&p| s.contains(p)).collect();
        assert_eq!(rows, [1, 4, 7]);
        assert_eq!(s.to_string(), "1/3");
    }

    #[test]
    fn malformed_and_out_of_range_shares_name_the_flag_and_the_fix() {
        for (spec, needle) in [
            ("4", "expected I/N"),
            ("a/4", "--shard's index=\"a\""),
            ("1/-4", "--shard's count=\"-4\""),
            ("4/4", "share 4 of 4 does not exist"),
            ("0/0", "share 0 of 0 does not exist"),
            ("0/10001", "the count must be 1 to 10000"),
        ] {
            let e = parse(spec, &[]).unwrap_err();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn auto_reads_kubernetes_first_then_slurm() {
        let k8s = [("JOB_COMPLETION_INDEX", "2"), ("JOB_COMPLETIONS", "5")];
        assert_eq!(parse("auto", &k8s), ok(2, 5));
        let both = [k8s[0], k8s[1], ("SLURM_ARRAY_TASK_ID", "0")];
        assert_eq!(parse("AUTO", &both), ok(2, 5));
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_COUNT", "16"),
        ];
        assert_eq!(parse("auto", &slurm), ok(7, 16));
        // `--array=1-16`: numbered from 1.
        let from_one = [slurm[0], slurm[1], ("SLURM_ARRAY_TASK_MIN", "1")];
        assert_eq!(parse("auto", &from_one), ok(6, 16));
        // `--array=10-40:10`: tasks 10, 20, 30, 40.
        let stepped = [
            ("SLURM_ARRAY_TASK_ID", "30"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_STEP", "10"),
        ];
        assert_eq!(parse("auto", &stepped), ok(2, 4));
    }

    #[test]
    fn auto_without_or_with_bad_variables_says_which_and_how_to_fix_it() {
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[], "neither JOB_COMPLETION_INDEX"),
            (
                &[("JOB_COMPLETION_INDEX", "1")],
                "JOB_COMPLETIONS is not; Kubernetes does not set",
            ),
            (
                &[("JOB_COMPLETION_INDEX", "x"), ("JOB_COMPLETIONS", "4")],
                "JOB_COMPLETION_INDEX=\"x\" is not a whole number",
            ),
            (
                &[("JOB_COMPLETION_INDEX", "4"), ("JOB_COMPLETIONS", "4")],
                "share 4 of 4 does not exist",
            ),
            (
                &[("SLURM_ARRAY_TASK_ID", "3")],
                "SLURM_ARRAY_TASK_COUNT is not",
            ),
            (
                // `--array=1,3,8`: task 8 of 3 has no share.
                &[
                    ("SLURM_ARRAY_TASK_ID", "8"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                ],
                "--array=0-15",
            ),
        ];
        for (vars, needle) in cases {
            let e = parse("auto", vars).unwrap_err();
            assert!(e.contains(needle), "{vars:?}: {e}");
        }
    }
}
