//! `leakwatch`: the command-line surface. Parses arguments, runs one command,
//! and maps its outcome to grep-like exit codes in one place:
//! 0 found or done, 1 searched and found nothing, 2 error.

mod cli;
mod cmd;
mod output;
mod progress;

use std::process::ExitCode;

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
    let matches = <cli::Cli as clap::CommandFactory>::command().get_matches();
    let mut args = match <cli::Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    args.data_on_command_line = matches.value_source("data") == Some(clap::parser::ValueSource::CommandLine);
    match cmd::run(args) {
        Ok(Outcome::Found) => ExitCode::from(0),
        Ok(Outcome::NotFound) => ExitCode::from(1),
        Ok(Outcome::Failed) => ExitCode::from(2),
        Err(err) => {
            if is_broken_pipe(&err) {
                // The reader went away (`| head`): not an error worth a message.
                return ExitCode::from(0);
            }
            eprintln!("leakwatch: error: {}", one_line(&err));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, each cause once. The library errors
/// already end their message with their source's (`PATH: No such file or
/// directory`), so a cause is added only when the message before does not end
/// with it; anyhow's `{:#}` would print it twice.
fn one_line(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.ends_with(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message.replace('\n', " ")
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct WithPath {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_the_message_already_ends_with_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = anyhow::Error::new(WithPath { path: "/nonexistent".into(), source: io });
        assert_eq!(one_line(&err), "/nonexistent: entity not found");
        let err = err.context("ingest into breach \"X\"");
        assert_eq!(one_line(&err), "ingest into breach \"X\": /nonexistent: entity not found");
        let plain = anyhow::anyhow!("line one\nline two").context("outer");
        assert_eq!(one_line(&plain), "outer: line one line two");
    }
}
