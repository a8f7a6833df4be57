//! The exception hierarchy and how engine errors map onto it. Messages are the command
//! line's: the error with its causes, joined by `: `.

use pyo3::exceptions::{PyException, PyOSError};
use pyo3::{create_exception, PyErr};

create_exception!(
    churn,
    ChurnError,
    PyException,
    "Every error the churn engine raises."
);
create_exception!(
    churn,
    DataError,
    ChurnError,
    "Input that is not what the data contract expects: the message names the table or file, the row or line, the column or JSON field, what was expected and what was found."
);
create_exception!(
    churn,
    ModelError,
    ChurnError,
    "A model that cannot be loaded, checked or saved."
);
create_exception!(
    churn,
    ConfigError,
    ChurnError,
    "A rules, goals or feature windows file that is not valid."
);
create_exception!(
    churn,
    TrainError,
    ChurnError,
    "Training cannot run on these examples (too few dates, one class, a setting out of range)."
);

/// The exception for an engine error: the first cause in the chain whose type is known
/// decides the class.
pub fn to_py(e: anyhow::Error) -> PyErr {
    let message = format!("{e:#}");
    for cause in e.chain() {
        if cause.is::<churn_features::DataError>()
            || cause.is::<churn_model::preprocess::PrepError>()
            || cause.is::<churn_scoring::ScoreError>()
            || cause.is::<churn_score::RejectedRow>()
        {
            return DataError::new_err(message);
        }
        if let Some(c) = cause.downcast_ref::<churn_kpis::clv::ClvError>() {
            return match c {
                churn_kpis::clv::ClvError::NoSurvivalModel(_) => ModelError::new_err(message),
                churn_kpis::clv::ClvError::Data(_) => DataError::new_err(message),
            };
        }
        if cause.is::<churn_model::artifact::ArtifactError>()
            || cause.is::<churn_model::publish::PublishError>()
        {
            return ModelError::new_err(message);
        }
        if cause.is::<churn_features::rules::RulesError>()
            || cause.is::<churn_kpis::goals::GoalsError>()
        {
            return ConfigError::new_err(message);
        }
        if let Some(t) = cause.downcast_ref::<churn_model::train::TrainError>() {
            use churn_model::train::TrainError as T;
            // A data problem met while training is a data error.
            if !matches!(t, T::Data(_) | T::Prep(_)) {
                return TrainError::new_err(message);
            }
        }
        if cause.is::<std::io::Error>() {
            return PyOSError::new_err(message);
        }
    }
    ChurnError::new_err(message)
}

/// A settings file that could not be read, as [`ConfigError`].
pub fn config_error(what: &str, e: impl std::fmt::Display) -> PyErr {
    ConfigError::new_err(format!("{what}: {e}"))
}
