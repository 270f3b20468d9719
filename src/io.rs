//! Small I/O pieces shared across the crate: atomic file replacement, fsync, unique temporary
//! names, and the FNV-1a hash used for cache keys and per-tensor seeds.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{AeganError, Result};

/// Writes `bytes` to `path` and fsyncs it (for files inside a not-yet-published directory).
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| AeganError::io(path, e))?;
    f.write_all(bytes).map_err(|e| AeganError::io(path, e))?;
    f.sync_all().map_err(|e| AeganError::io(path, e))
}

/// Replaces `path` with `bytes` atomically: a kill leaves either the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", unique_suffix()));
    write_synced(&tmp, bytes)?;
    fs::rename(&tmp, path).map_err(|e| AeganError::io(path, e))?;
    if let Some(parent) = path.parent() {
        sync_dir(if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        })?;
    }
    Ok(())
}

/// `<process id>-<counter>`: temporary names that two processes (or two threads) writing the
/// same file never share.
pub(crate) fn unique_suffix() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    // Directories can be fsynced on Unix; elsewhere opening one fails and rename is the best we have.
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AeganError::io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// FNV-1a: a hash that is stable across Rust versions and platforms (unlike `DefaultHasher`).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
