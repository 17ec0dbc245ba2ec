//! `leakwatch`: the command-line surface. Parses arguments, runs one command,
//! and maps its outcome to grep-like exit codes in one place:
//! 0 found or done, 1 searched and found nothing, 2 error.

mod cli;
mod cmd;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

/// What a command concluded, for the exit status.
pub enum Outcome {
    /// Done, or a search found something.
    Found,
    /// A search completed and found nothing.
    NotFound,
    /// Some inputs were in error; messages were printed as they came.
    Failed,
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cmd::run(args) {
        Ok(Outcome::Found) => ExitCode::from(0),
        Ok(Outcome::NotFound) => ExitCode::from(1),
        Ok(Outcome::Failed) => ExitCode::from(2),
        Err(err) => {
            if is_broken_pipe(&err) {
                // The reader went away (`| head`): not an error worth a message.
                return ExitCode::from(0);
            }
            let message = format!("{err:#}").replace('\n', " ");
            eprintln!("leakwatch: error: {message}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
