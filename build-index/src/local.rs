//! Reading local files the catalogue names, safely: only regular files (a FIFO or `/dev/zero`
//! would hang or never end), never more than a size cap (enforced while reading, not trusted from
//! the file's metadata), and only inside the catalogue's folder unless the maintainer allows
//! outside paths (a catalogue from elsewhere must not publish `/etc/hostname` as a thumbnail).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a local file cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LocalError {
    /// The path does not exist.
    #[error("file not found: {0}")]
    NotFound(PathBuf),
    /// A folder, device, FIFO or socket.
    #[error("{0} is {1}, not an image file")]
    NotAFile(PathBuf, &'static str),
    /// Outside the folder local paths must stay in.
    #[error(
        "{0} is outside the catalogue's folder {1}; keep images inside it, or pass \
         --allow-outside-paths if this catalogue is trusted"
    )]
    Outside(PathBuf, PathBuf),
    /// Larger than the cap.
    #[error("{0} is larger than the limit of {1} MB")]
    TooLarge(PathBuf, u64),
    /// Any other I/O failure.
    #[error("cannot read {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Where local files may be read from.
#[derive(Debug, Clone)]
pub(crate) struct Confinement {
    /// The catalogue's folder, canonical; `None` allows any path.
    root: Option<PathBuf>,
}

impl Confinement {
    /// Files must be inside `root` (the catalogue's folder) unless `allow_outside`.
    pub(crate) fn new(root: &Path, allow_outside: bool) -> std::io::Result<Self> {
        Ok(Self {
            root: if allow_outside {
                None
            } else {
                Some(root.canonicalize()?)
            },
        })
    }

    /// Checks `path` (following links) against the confinement.
    fn check(&self, path: &Path) -> Result<(), LocalError> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let real = path.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => LocalError::NotFound(path.to_path_buf()),
            _ => LocalError::Io(path.to_path_buf(), e),
        })?;
        if real.starts_with(root) {
            Ok(())
        } else {
            Err(LocalError::Outside(path.to_path_buf(), root.clone()))
        }
    }
}

/// What kind of non-regular file the metadata describes.
fn kind(meta: &std::fs::Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_dir() {
        return Some("a folder");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("a named pipe (FIFO)");
        }
        if t.is_char_device() || t.is_block_device() {
            return Some("a device");
        }
        if t.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// Opens `path` for reading without blocking on a FIFO, and checks that what was opened is a
/// regular file.
fn open_regular(path: &Path) -> Result<File, LocalError> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LocalError::NotFound(path.to_path_buf()),
        _ => LocalError::Io(path.to_path_buf(), e),
    })?;
    let meta = file
        .metadata()
        .map_err(|e| LocalError::Io(path.to_path_buf(), e))?;
    match kind(&meta) {
        None => Ok(file),
        Some(what) => Err(LocalError::NotAFile(path.to_path_buf(), what)),
    }
}

/// Reads a regular file inside the confinement, refusing it once it passes `max_bytes`.
pub(crate) fn read(
    path: &Path,
    within: &Confinement,
    max_bytes: u64,
) -> Result<Vec<u8>, LocalError> {
    within.check(path)?;
    read_regular(path, max_bytes)
}

/// Reads a regular file, refusing it once it passes `max_bytes` (wherever it is).
pub(crate) fn read_regular(path: &Path, max_bytes: u64) -> Result<Vec<u8>, LocalError> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| LocalError::Io(path.to_path_buf(), e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(LocalError::TooLarge(path.to_path_buf(), max_bytes >> 20));
    }
    Ok(bytes)
}

/// A failed write of `path` as a sentence naming the file and, for a full disk, the fix.
pub(crate) fn write_error(path: &Path, e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::StorageFull {
        anyhow::anyhow!(
            "cannot write {}: the disk is full; free some space on it, or give --cache (or --out) \
             a folder on a disk with room",
            path.display()
        )
    } else {
        anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_inside_the_folder_are_read_and_never_past_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("a.png");
        std::fs::write(&inside, b"12345").unwrap();
        let within = Confinement::new(dir.path(), false).unwrap();
        assert_eq!(read(&inside, &within, 5).unwrap(), b"12345");
        assert!(matches!(
            read(&inside, &within, 4),
            Err(LocalError::TooLarge(..))
        ));
        assert!(matches!(
            read(
                Path::new("/dev/zero"),
                &Confinement::new(dir.path(), true).unwrap(),
                1 << 20
            ),
            Err(LocalError::NotAFile(_, "a device"))
        ));
        assert!(matches!(
            read(Path::new("/etc/hostname"), &within, 1 << 20),
            Err(LocalError::Outside(..)) | Err(LocalError::NotFound(_))
        ));
        let sneaky = dir.path().join("sneaky.png");
        std::os::unix::fs::symlink("/etc/passwd", &sneaky).unwrap();
        assert!(matches!(
            read(&sneaky, &within, 1 << 20),
            Err(LocalError::Outside(..))
        ));
        let fifo = dir.path().join("pipe.png");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .unwrap();
        assert!(matches!(
            read(&fifo, &within, 1 << 20),
            Err(LocalError::NotAFile(_, "a named pipe (FIFO)"))
        ));
        assert!(matches!(
            read(&dir.path().join("gone.png"), &within, 9),
            Err(LocalError::NotFound(_))
        ));
    }

    #[test]
    fn a_full_disk_is_named_with_the_file_and_the_fix() {
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        let message = format!(
            "{:#}",
            write_error(Path::new("/cache/embeddings/m.bin"), full)
        );
        assert!(
            message.contains("/cache/embeddings/m.bin")
                && message.contains("disk is full")
                && message.contains("--cache"),
            "{message}"
        );
    }
}
