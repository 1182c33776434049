//! `iceview` binary: parse the command line, run, turn errors into one line and an exit code.
mod cli;
mod metrics_server;
mod run;
mod run_live;
mod run_probe;

use clap::{CommandFactory, Parser};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match &cli.command {
        cli::Command::Read(args) => run::read(args),
        cli::Command::Live(args) => run_live::live(args),
        cli::Command::Nat(args) => run_probe::nat(args),
        cli::Command::Check(args) => run_probe::check(args),
        cli::Command::Completions { shell } => {
            // Generated into memory: clap_complete panics on a write error (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cli::Cli::command(), "iceview", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script).map_err(Into::into)
        }
        cli::Command::Man => clap_mangen::Man::new(cli::Cli::command())
            .render(&mut std::io::stdout())
            .map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("iceview: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `iceview read x --packets | head` closes the pipe early; that is not an error worth a message.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
