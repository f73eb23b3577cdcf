//! vitrine's page: a Leptos client-side app. It holds only UI and browser-boundary code; search
//! itself (encoding, ranking, index checks) runs in the worker through `vitrine-search`.

pub mod app;
pub mod bridge;
pub mod components;
pub mod offline;
pub mod thumbnails;
pub mod url_state;

pub use app::App;
