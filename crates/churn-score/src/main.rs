//! `churn-score`: batch scoring of a whole customer base (see the library for the work).

use clap::Parser;

fn main() {
    let args = churn_score::Args::parse();
    let format = args.log.log_format;
    churn_cli::quiet_on_closed_pipe();
    churn_cli::init(format, if args.quiet { "warn" } else { "info" }, false);
    if let Err(e) = churn_score::run(args) {
        churn_cli::exit_with(format, &e);
    }
}
