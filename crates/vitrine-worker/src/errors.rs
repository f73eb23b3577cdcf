//! The engine's errors as the protocol's kinds: the one place where they are converted, as they
//! leave Rust for the page.

use vitrine_protocol::{IndexProblem, LoadError, SearchError};

/// The kind of an index format error.
fn index_problem(e: &vitrine_index::Error) -> IndexProblem {
    match e {
        vitrine_index::Error::Format(_) => IndexProblem::Malformed,
        vitrine_index::Error::Version(_) => IndexProblem::Version,
        vitrine_index::Error::Integrity(_) => IndexProblem::Integrity,
    }
}

/// The kind of an engine error, with its sentence.
fn engine_problem(e: vitrine_search::Error) -> Result<(IndexProblem, String), String> {
    let problem = match &e {
        vitrine_search::Error::Clip(_) => IndexProblem::Encoder,
        vitrine_search::Error::Index(i) => index_problem(i),
        vitrine_search::Error::Mismatch(_) => IndexProblem::Mismatch,
        vitrine_search::Error::UnknownId(id) => return Err(id.clone()),
    };
    Ok((problem, e.to_string()))
}

/// An index file that cannot be used, while loading.
pub(crate) fn load_index_error(e: &vitrine_index::Error) -> LoadError {
    LoadError::Index {
        problem: index_problem(e),
        message: e.to_string(),
    }
}

/// An index file that cannot be used, while searching.
pub(crate) fn search_index_error(e: &vitrine_index::Error) -> SearchError {
    SearchError::Index {
        problem: index_problem(e),
        message: e.to_string(),
    }
}

/// An engine error while loading.
pub(crate) fn load_error(e: vitrine_search::Error) -> LoadError {
    match engine_problem(e) {
        Ok((problem, message)) => LoadError::Index { problem, message },
        Err(id) => LoadError::Index {
            problem: IndexProblem::Mismatch,
            message: format!("no item has the id {id:?}"),
        },
    }
}

/// An engine error while searching.
pub(crate) fn search_error(e: vitrine_search::Error) -> SearchError {
    match engine_problem(e) {
        Ok((problem, message)) => SearchError::Index { problem, message },
        Err(id) => SearchError::UnknownId(id),
    }
}
