//! The page's components, one per file; `crate::app` puts them together.

pub mod facets;
pub mod filters;
pub mod results;
pub mod search_box;
pub mod status;
