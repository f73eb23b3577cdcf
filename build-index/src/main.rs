//! `build-index`: the maintainer's tool. Turns a shop's catalogue into vitrine's static search
//! index (`build`), and checks it (`search`, `verify`); `embed` prints raw CLIP features.

#![allow(clippy::print_stdout)]

mod built;
mod catalogue;
mod embed;
mod fetch;
mod hosting;
mod indexer;
mod local;
mod search;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// glibc hands the model's large activations back to the kernel after every layer and pays page
/// faults to get them again; mimalloc keeps them (text encode 25.8 → 21.8 ms, see README).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Builds and checks vitrine's static, server-free CLIP search index.
#[derive(Parser)]
#[command(name = "build-index", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Turn a catalogue into the site's static index (exit 0: all rows indexed; 3: some rows
    /// skipped; 1: nothing written; 2: usage error).
    Build(Box<indexer::Args>),
    /// Search a built index with the site's own files, as the page does.
    Search(search::Args),
    /// Check that every file of a built index matches its manifest.
    Verify(verify::Args),
    /// Print CLIP features (projected, not normalised) of texts and images as JSON.
    Embed(embed::Args),
}

/// A mistake in the command line: exit status 2, like clap's own usage errors.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) anyhow::Error);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Build(args) => indexer::run(args),
        Command::Search(args) => search::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Embed(args) => embed::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
