//! One training run per output folder at a time: [`RunLock`], a lock file holding the
//! process id of the run that writes there.
//!
//! Two runs started at the same moment into one folder both find it empty, so the guard
//! against overwriting another run ([`crate::run_folder::ExistingRun`]) cannot tell them
//! apart; the lock can, because creating its file is atomic. The file is removed when the run
//! ends. A run killed without the chance to remove it (`kill -9`, a crash) leaves a file
//! naming a process that is gone, which the next run takes over.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{AeganError, Result};

/// The lock file's name inside an output folder.
pub const LOCK_FILE: &str = "run.lock";

/// The lock on an output folder, held until dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    /// Locks `out_dir` (created if missing) for this process. Fails with
    /// [`AeganError::RunInProgress`] when another live process holds it; a lock left by a
    /// process that has ended is taken over.
    pub fn acquire(out_dir: &Path) -> Result<RunLock> {
        fs::create_dir_all(out_dir).map_err(|e| AeganError::io(out_dir, e))?;
        let path = out_dir.join(LOCK_FILE);
        // Two tries: the second after removing a lock whose process is gone.
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let written = writeln!(file, "{}", std::process::id()).and_then(|_| file.sync_all());
                    if let Err(e) = written {
                        let _ = fs::remove_file(&path);
                        return Err(AeganError::io(&path, e));
                    }
                    return Ok(RunLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_to_string(&path)
                        .ok()
                        .and_then(|text| text.trim().parse::<u32>().ok());
                    match holder {
                        Some(pid) if process_is_alive(pid) => {
                            return Err(AeganError::RunInProgress {
                                path: out_dir.to_path_buf(),
                                pid,
                            })
                        }
                        // Gone, or a file cut short by a crash mid-write: stale.
                        _ => {
                            fs::remove_file(&path)
                                .or_else(|e| match e.kind() {
                                    std::io::ErrorKind::NotFound => Ok(()),
                                    _ => Err(e),
                                })
                                .map_err(|e| AeganError::io(&path, e))?;
                        }
                    }
                }
                Err(e) => return Err(AeganError::io(&path, e)),
            }
        }
        Err(AeganError::io(
            &path,
            std::io::Error::other("another run took the lock at the same moment"),
        ))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether process `pid` exists (this process counts). On Unix, signal 0 asks without
/// sending anything; a process of another user answers "not permitted", which still means it
/// exists.
#[cfg(unix)]
fn process_is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 performs only the existence and permission checks.
    let answer = unsafe { libc::kill(pid, 0) };
    answer == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Elsewhere there is no cheap portable check: a lock file is taken to be live, and the
/// error says to delete it when no run is going on.
#[cfg(not(unix))]
fn process_is_alive(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_dropping_frees_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(
            fs::read_to_string(lock.path()).unwrap().trim(),
            std::process::id().to_string()
        );
        match RunLock::acquire(dir.path()) {
            Err(AeganError::RunInProgress { path, pid }) => {
                assert_eq!((path.as_path(), pid), (dir.path(), std::process::id()))
            }
            other => panic!("expected RunInProgress, got {other:?}"),
        }
        drop(lock);
        assert!(!dir.path().join(LOCK_FILE).exists());
        RunLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn a_lock_left_by_a_process_that_ended_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        fs::write(dir.path().join(LOCK_FILE), format!("{gone}\n")).unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(
            fs::read_to_string(lock.path()).unwrap().trim(),
            std::process::id().to_string()
        );
        // A file cut short (no process id) is stale too.
        drop(lock);
        fs::write(dir.path().join(LOCK_FILE), "").unwrap();
        RunLock::acquire(dir.path()).unwrap();
    }
}
