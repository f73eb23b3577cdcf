//! The engine's errors as the protocol's kinds: the one place where they are converted, as they
//! leave Rust for the page.

use vitrine_protocol::{IndexFault, IndexProblem, LoadError, SearchError};

/// An index format error as a fault of its kind.
pub(crate) fn index_fault(e: &vitrine_index::Error) -> IndexFault {
    let problem = match e {
        vitrine_index::Error::Format(_) => IndexProblem::Malformed,
        vitrine_index::Error::Version(_) => IndexProblem::Version,
        vitrine_index::Error::Integrity(_) => IndexProblem::Integrity,
    };
    IndexFault {
        problem,
        message: e.to_string(),
    }
}

/// An engine error as a fault of its kind.
fn engine_fault(e: vitrine_search::Error) -> IndexFault {
    let problem = match &e {
        vitrine_search::Error::Clip(_) | vitrine_search::Error::NotFinite(_) => {
            IndexProblem::Encoder
        }
        vitrine_search::Error::Index(i) => return index_fault(i),
        vitrine_search::Error::Mismatch(_)
        | vitrine_search::Error::UnknownId(_)
        | vitrine_search::Error::Selection(_)
        | vitrine_search::Error::NotLoaded(_)
        | vitrine_search::Error::NeedFiles(_) => IndexProblem::Mismatch,
    };
    IndexFault {
        problem,
        message: e.to_string(),
    }
}

/// An engine error while loading.
pub(crate) fn load_error(e: vitrine_search::Error) -> LoadError {
    LoadError::Index(engine_fault(e))
}

/// An engine error while searching.
pub(crate) fn search_error(e: vitrine_search::Error) -> SearchError {
    match e {
        vitrine_search::Error::UnknownId(id) => SearchError::UnknownId(id),
        vitrine_search::Error::Selection(why) => SearchError::Selection(why),
        vitrine_search::Error::NotLoaded(_) => SearchError::StillLoading,
        e => SearchError::Index(engine_fault(e)),
    }
}
