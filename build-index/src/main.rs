//! `build-index`: the maintainer's tool. Turns a shop's catalogue into vitrine's static search
//! index, and checks it (`search`, `verify`); `embed` prints raw CLIP features for debugging.

#![allow(clippy::print_stdout)]

mod embed;

use clap::{Parser, Subcommand};

/// Builds and checks vitrine's static, server-free CLIP search index.
#[derive(Parser)]
#[command(name = "build-index", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print CLIP features (projected, not normalised) of texts and images as JSON.
    Embed(embed::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Embed(args) => embed::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
