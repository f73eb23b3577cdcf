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

/// An engine error as a fault of its kind, or the id "More like this" did not find.
fn engine_fault(e: vitrine_search::Error) -> Result<IndexFault, String> {
    let problem = match &e {
        vitrine_search::Error::Clip(_) | vitrine_search::Error::NotFinite(_) => {
            IndexProblem::Encoder
        }
        vitrine_search::Error::Index(i) => return Ok(index_fault(i)),
        vitrine_search::Error::Mismatch(_) => IndexProblem::Mismatch,
        vitrine_search::Error::UnknownId(id) => return Err(id.clone()),
    };
    Ok(IndexFault {
        problem,
        message: e.to_string(),
    })
}

/// An engine error while loading.
pub(crate) fn load_error(e: vitrine_search::Error) -> LoadError {
    LoadError::Index(engine_fault(e).unwrap_or_else(|id| IndexFault {
        problem: IndexProblem::Mismatch,
        message: format!("no item has the id {id:?}"),
    }))
}

/// An engine error while searching.
pub(crate) fn search_error(e: vitrine_search::Error) -> SearchError {
    match engine_fault(e) {
        Ok(fault) => SearchError::Index(fault),
        Err(id) => SearchError::UnknownId(id),
    }
}
