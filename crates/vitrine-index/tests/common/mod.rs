//! The golden-file check shared by the index's format tests: bytes a test encodes must equal the
//! committed file in `tests/golden/` (so a format change is a visible diff). Set `UPDATE_GOLDEN=1`
//! to rewrite the golden files after an intended change.

use std::path::PathBuf;

/// Checks `bytes` against `tests/golden/<name>` (or writes it under `UPDATE_GOLDEN`).
pub(crate) fn golden(name: &str, bytes: &[u8]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, bytes).unwrap();
    }
    let want = std::fs::read(&path).unwrap_or_default();
    assert!(
        want == bytes,
        "{name} differs from its golden file; UPDATE_GOLDEN=1 if intended"
    );
}
