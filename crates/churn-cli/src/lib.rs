//! What every churn binary does the same way at start and at exit: logs on standard
//! error as text (colour only on a terminal) or as JSON lines, the final error in the
//! same format, and a quiet exit when standard output is a closed pipe
//! (`churn-train summary --json | head`).

pub mod data;

use std::io::IsTerminal;

/// How log lines are written to standard error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Readable lines; ANSI colour only when standard error is a terminal.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields.message`, ...), for log
    /// collectors.
    Json,
}

/// The logging options every binary takes.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct LogArgs {
    /// Log lines on standard error as text or JSON.
    #[arg(long, value_enum, default_value_t, global = true)]
    pub log_format: LogFormat,
}

/// Makes a write to a closed standard output end the process quietly, as `cat` or
/// `grep` do, instead of a "failed printing to stdout" panic. For command-line tools
/// only: a server writing to sockets must keep ignoring SIGPIPE.
pub fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    sigpipe::reset();
}

/// Starts logging at `default_level` (`RUST_LOG` overrides it) in `format`. Text lines
/// of a long-running process (`timestamps`) start with the time; a command's do not.
pub fn init(format: LogFormat, default_level: &str, timestamps: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init`: a second call (tests running several commands in one process) keeps
    // the first subscriber.
    let _ = match format {
        LogFormat::Text if timestamps => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .without_time()
            .with_target(false)
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Reports a command's failure in `format` and exits with status 1: text as
/// `error: cause: cause`, JSON as one log line with the whole cause chain.
pub fn exit_with(format: LogFormat, error: &anyhow::Error) -> ! {
    match format {
        LogFormat::Text => eprintln!("error: {error:#}"),
        LogFormat::Json => {
            let causes: Vec<String> = error.chain().map(|c| c.to_string()).collect();
            let line = serde_json::json!({
                "level": "ERROR",
                "fields": { "message": format!("{error:#}"), "causes": causes },
            });
            eprintln!("{line}");
        }
    }
    std::process::exit(1)
}
