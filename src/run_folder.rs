//! What an output folder already holds: the guard that keeps a new run from overwriting an
//! older one, and the explicit deletion that `--overwrite` asks for.

use std::path::{Path, PathBuf};

use crate::checkpoint;
use crate::error::{AeganError, Result};

/// The files of a training run inside its output folder, besides pictures.
const RUN_FILES: [&str; 2] = ["losses.jsonl", "metrics.jsonl"];
/// The folders of a training run inside its output folder.
const RUN_DIRS: [&str; 2] = ["checkpoint", "history"];

/// A training run found in an output folder: checkpoint snapshots, a loss log, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingRun {
    /// The output folder.
    pub out_dir: PathBuf,
    /// The newest snapshot's step, when there is a readable one.
    pub checkpoint_step: Option<u64>,
    /// Lines in `losses.jsonl`.
    pub logged_steps: usize,
    /// The run ids of the snapshots under `checkpoint/`.
    pub run_ids: Vec<String>,
}

impl ExistingRun {
    /// The run in `out_dir`, or `None` when it holds neither a snapshot nor a non-empty loss
    /// log (pictures alone are not a run).
    pub fn find(out_dir: &Path) -> Option<Self> {
        let snapshots = checkpoint::snapshots_newest_first(&out_dir.join("checkpoint"));
        let logged_steps = std::fs::read_to_string(out_dir.join("losses.jsonl"))
            .map(|text| text.lines().filter(|l| !l.trim().is_empty()).count())
            .unwrap_or(0);
        if snapshots.is_empty() && logged_steps == 0 {
            return None;
        }
        let checkpoint_step = snapshots
            .iter()
            .find_map(|s| checkpoint::read_state(s).ok().map(|state| state.step));
        let mut run_ids: Vec<String> = snapshots
            .iter()
            .filter_map(|s| checkpoint::snapshot_run_id(s))
            .collect();
        run_ids.sort();
        run_ids.dedup();
        Some(ExistingRun {
            out_dir: out_dir.to_path_buf(),
            checkpoint_step,
            logged_steps,
            run_ids,
        })
    }

    /// Whether the run `run_id` wrote a snapshot here (a resumed run continuing in its folder).
    pub fn is_run(&self, run_id: &str) -> bool {
        self.run_ids.iter().any(|id| id == run_id)
    }

    /// "checkpoint at step 1200, 1200 logged steps", for messages.
    pub fn describe(&self) -> String {
        let checkpoint = match self.checkpoint_step {
            Some(step) => format!("checkpoint at step {step}"),
            None => "no loadable checkpoint".to_string(),
        };
        format!("{checkpoint}, {} logged steps", self.logged_steps)
    }

    /// The error that refuses to start another run here.
    pub fn refusal(&self) -> AeganError {
        AeganError::RunExists {
            path: self.out_dir.clone(),
            what: self.describe(),
        }
    }

    /// The paths [`ExistingRun::delete`] removes (those that exist).
    pub fn deleted_paths(&self) -> Vec<PathBuf> {
        RUN_DIRS
            .iter()
            .chain(RUN_FILES.iter())
            .map(|name| self.out_dir.join(name))
            .filter(|p| p.exists())
            .collect()
    }

    /// Deletes the run: `checkpoint/`, `history/`, `losses.jsonl` and `metrics.jsonl`.
    /// Other files in the folder are left alone.
    pub fn delete(&self) -> Result<()> {
        for path in self.deleted_paths() {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| AeganError::io(&path, e))?;
        }
        Ok(())
    }
}
