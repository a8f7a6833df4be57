//! `churn-score`: batch scoring of a whole customer base (see the library for the work).

use clap::Parser;

fn main() {
    if let Err(e) = churn_score::run(churn_score::Args::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
