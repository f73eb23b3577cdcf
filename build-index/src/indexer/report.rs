//! `--report`: what became of every row (indexed, skipped and why, left out as unpublished,
//! shortened), which columns were not published, and cache repairs; the notes on stderr say the
//! same for a maintainer reading the log.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::catalogue::{Catalogue, Skipped};

/// `--report`'s JSON.
#[derive(Serialize)]
pub(crate) struct Report {
    /// Rows counted.
    pub(crate) rows: usize,
    /// Rows indexed.
    pub(crate) indexed: usize,
    /// Images embedded in this build.
    pub(crate) embedded: usize,
    /// Embeddings taken from the cache.
    pub(crate) reused: usize,
    /// Items the page shows from their image URL (`--thumbnails remote`): no thumbnail packed.
    pub(crate) remote_images: usize,
    /// Rows that cannot be used, with the reason.
    pub(crate) skipped: Vec<ReportRow>,
    /// Rows left out on purpose (unpublished products).
    pub(crate) excluded: Vec<ReportRow>,
    /// Rows indexed with a field shortened or dropped.
    pub(crate) shortened: Vec<ReportRow>,
    /// Catalogue columns that were not published (`--keep-column` publishes one).
    pub(crate) dropped_columns: Vec<String>,
    /// The filters the page offers (their keys).
    pub(crate) filters: Vec<String>,
    /// Columns whose words the keyword index searches (brand, product type, keywords).
    pub(crate) searchable_columns: Vec<String>,
    /// Damaged embedding-cache records dropped (their images were embedded again).
    pub(crate) damaged_cache_records: usize,
    /// The page's text encoder and its quality gate (absent when the build stopped before it).
    pub(crate) text_encoder: Option<TextEncoderReport>,
    /// The lists and the probes measured for them (absent when the build stopped before).
    pub(crate) partition: Option<vitrine_index::PartitionInfo>,
}

/// The exported text encoder, as the report describes it.
#[derive(Serialize)]
pub(crate) struct TextEncoderReport {
    /// `f16` or the quantized layout (`q8e4a7`).
    pub(crate) layout: String,
    /// Bytes of the file.
    pub(crate) bytes: u64,
    /// Measured against the f32 checkpoint.
    pub(crate) quality: vitrine_index::EncoderQuality,
    /// What was tried and why this one ships.
    pub(crate) note: String,
}

/// A row of the report.
#[derive(Serialize, Clone)]
pub(crate) struct ReportRow {
    row: usize,
    id: Option<String>,
    reason: String,
}

impl From<&Skipped> for ReportRow {
    fn from(s: &Skipped) -> Self {
        Self {
            row: s.row,
            id: s.id.clone(),
            reason: s.reason.clone(),
        }
    }
}

impl ReportRow {
    /// The row number.
    pub(crate) fn row(&self) -> usize {
        self.row
    }

    /// A row whose image could not be used.
    pub(crate) fn new(row: usize, id: &str, reason: String) -> Self {
        Self {
            row,
            id: Some(id.to_string()),
            reason,
        }
    }
}

/// The columns of the catalogue's rows that the site will not publish: every extra column not
/// in `published` (named with `--keep-column`, or made a filter or searchable), and the
/// description unless kept.
pub(crate) fn dropped_columns(cat: &Catalogue, published: &[String]) -> Vec<String> {
    let keep = published;
    let kept = |name: &str| keep.iter().any(|k| k.trim().eq_ignore_ascii_case(name));
    let mut dropped = BTreeSet::new();
    for row in &cat.rows {
        if row.description.is_some() && !kept("description") {
            dropped.insert("description".to_string());
        }
        dropped.extend(row.extra.keys().filter(|k| !kept(k)).cloned());
    }
    dropped.into_iter().collect()
}

impl Report {
    /// The report's notes, for stderr.
    pub(crate) fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self
            .skipped
            .iter()
            .map(|s| {
                format!(
                    "skipped row {} ({}): {}",
                    s.row,
                    s.id.as_deref().unwrap_or("no id"),
                    s.reason
                )
            })
            .collect();
        if !self.excluded.is_empty() {
            notes.push(format!(
                "left out {} unpublished product(s) (drafts, archived or not published), e.g. \
                 row {}: {}",
                self.excluded.len(),
                self.excluded[0].row,
                self.excluded[0].reason
            ));
        }
        for s in &self.shortened {
            notes.push(format!(
                "row {} ({}): {}",
                s.row,
                s.id.as_deref().unwrap_or("no id"),
                s.reason
            ));
        }
        if !self.dropped_columns.is_empty() {
            notes.push(format!(
                "not published (only what the page shows is): {}; publish a column with \
                 --keep-column NAME",
                self.dropped_columns.join(", ")
            ));
        }
        if !self.filters.is_empty() || !self.searchable_columns.is_empty() {
            notes.push(format!(
                "filters: {}; keyword search also reads: {}",
                if self.filters.is_empty() {
                    "none".into()
                } else {
                    self.filters.join(", ")
                },
                if self.searchable_columns.is_empty() {
                    "ids and titles only".into()
                } else {
                    self.searchable_columns.join(", ")
                }
            ));
        }
        if self.remote_images > 0 {
            notes.push(format!(
                "{} item(s) show their picture from its image URL (--thumbnails remote): nothing \
                 packed for them, and they show none while the image host is unreachable \
                 (offline too)",
                self.remote_images
            ));
        }
        if self.damaged_cache_records > 0 {
            notes.push(format!(
                "{} damaged embedding-cache record(s) were dropped; those images were embedded \
                 again",
                self.damaged_cache_records
            ));
        }
        notes
    }

    /// Writes the report as pretty JSON.
    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
    }
}
