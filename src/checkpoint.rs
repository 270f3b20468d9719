//! Checkpoints: atomic save, validated load.
//!
//! A checkpoint root directory holds snapshots `step-00000100/` and a file `latest` naming the
//! newest complete one. A snapshot holds `config.json`, `state.json` (step, random stream,
//! optimiser step counts), one safetensors file per network (`generator.safetensors`, ...,
//! batch-norm statistics included) and `optimizer.safetensors` (Adam moments).
//!
//! Crash safety: a snapshot is written under a temporary name, every file and the directory are
//! fsynced, the directory is renamed into place, and only then is `latest` replaced (by a
//! fsynced temporary file and a rename). A kill at any moment leaves `latest` naming a complete
//! snapshot. The two newest snapshots of the run being saved are kept; snapshots of other runs
//! (another `run_id` in `state.json`) are never touched.
//!
//! Resuming falls back: when `latest` is missing, dangling or names a damaged snapshot, the
//! newest `step-*` snapshot that loads is used ([`snapshots_newest_first`]).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::config::AeganConfig;
use crate::error::{AeganError, Result};
pub use crate::io::write_atomic;
use crate::io::{sync_dir, unique_suffix, write_synced};
use crate::nets::{NetworkKind, Networks};
use crate::params::ParamStore;
use crate::rng::RngState;

/// The file in a checkpoint root that names the newest snapshot.
pub const LATEST_FILE: &str = "latest";
/// The config file inside a snapshot.
pub const CONFIG_FILE: &str = "config.json";
/// The training-state file inside a snapshot.
pub const STATE_FILE: &str = "state.json";
/// The optimiser-moments file inside a snapshot.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The format version written in `state.json`.
pub const FORMAT_VERSION: u32 = 1;
/// Snapshots kept in a root directory.
const KEEP_SNAPSHOTS: usize = 2;

/// Everything in `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    /// Checkpoint format version.
    pub format: u32,
    /// Version of aegan that wrote it.
    pub crate_version: String,
    /// Training steps completed.
    pub step: u64,
    /// Position of the trainer's random stream.
    pub rng: RngState,
    /// Adam step count per network (by [`NetworkKind::name`]).
    pub optimizer_steps: BTreeMap<String, u64>,
    /// Adam step count per parameter, per network (see [`crate::optim`]); absent in older
    /// checkpoints, whose parameters then all take their network's count.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub optimizer_param_steps: BTreeMap<String, BTreeMap<String, u64>>,
    /// The trainer's adaptive state (augmentation probability, LeCam anchors); absent when
    /// the config uses neither, and in older checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<crate::controllers::AdaptiveState>,
    /// Where progressive growing stood after `step` (resolution and fade-in α); absent
    /// without a progressive config. Informative: resuming recomputes it from the step and the
    /// config's schedule and refuses a checkpoint where the two disagree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth: Option<crate::progressive::Growth>,
    /// Identifies the training run that wrote the snapshot (kept across resumes), so that
    /// pruning removes only that run's older snapshots. Absent in checkpoints written before
    /// it existed, which count as one run, [`LEGACY_RUN_ID`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// The safetensors file of one network inside a snapshot.
pub fn network_file(kind: NetworkKind) -> String {
    format!("{}.safetensors", kind.name())
}

/// What [`save`] writes.
pub(crate) struct Snapshot<'a> {
    pub config: &'a AeganConfig,
    pub state: TrainingState,
    pub networks: &'a Networks,
    pub optimizer_tensors: Vec<(String, Tensor)>,
}

/// Writes a snapshot under `root` and points `latest` at it; returns the snapshot directory.
pub(crate) fn save(root: &Path, snapshot: Snapshot) -> Result<PathBuf> {
    fs::create_dir_all(root).map_err(|e| AeganError::io(root, e))?;
    let name = unused_snapshot_name(root, snapshot.state.step);
    let tmp = root.join(format!(".tmp-{name}-{}", unique_suffix()));
    fs::create_dir(&tmp).map_err(|e| AeganError::io(&tmp, e))?;
    // A snapshot that cannot be written whole (weights that are not finite, a full disk)
    // leaves nothing behind, and `latest` keeps naming the last good one.
    let dest = root.join(&name);
    if let Err(e) = write_snapshot_files(&tmp, &dest, &snapshot) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    sync_dir(&tmp)?;

    fs::rename(&tmp, &dest).map_err(|e| AeganError::io(&dest, e))?;
    sync_dir(root)?;
    write_atomic(&root.join(LATEST_FILE), name.as_bytes())?;
    prune(root, &name, snapshot.state.run_id.as_deref());
    Ok(dest)
}

/// Writes the files of `snapshot` into `tmp`, each synced; errors name the file under `dest`.
fn write_snapshot_files(tmp: &Path, dest: &Path, snapshot: &Snapshot) -> Result<()> {
    write_synced(&tmp.join(CONFIG_FILE), snapshot.config.to_json().as_bytes())?;
    let state_json = serde_json::to_vec_pretty(&snapshot.state).map_err(|source| AeganError::Json {
        path: dest.join(STATE_FILE),
        source,
    })?;
    write_synced(&tmp.join(STATE_FILE), &state_json)?;
    for (stem, store) in snapshot.networks.saved_stores() {
        let tensors: Vec<(String, Tensor)> = store
            .all()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect();
        let file = format!("{stem}.safetensors");
        write_synced(&tmp.join(&file), &serialize(&dest.join(&file), &tensors)?)?;
    }
    write_synced(
        &tmp.join(OPTIMIZER_FILE),
        &serialize(&dest.join(OPTIMIZER_FILE), &snapshot.optimizer_tensors)?,
    )
}

/// The snapshot directory that `dir` designates: `dir` itself if it holds `state.json`,
/// otherwise the snapshot named by `dir/latest`.
pub fn resolve(dir: &Path) -> Result<PathBuf> {
    if dir.join(STATE_FILE).is_file() {
        return Ok(dir.to_path_buf());
    }
    let latest = dir.join(LATEST_FILE);
    let name = fs::read_to_string(&latest).map_err(|_| AeganError::NoCheckpoint {
        path: dir.to_path_buf(),
        reason: format!("neither {STATE_FILE} nor {LATEST_FILE} is there"),
    })?;
    let snapshot = dir.join(name.trim());
    if !snapshot.join(STATE_FILE).is_file() {
        return Err(AeganError::NoCheckpoint {
            path: snapshot,
            reason: format!("{LATEST_FILE} names it but it holds no {STATE_FILE}"),
        });
    }
    Ok(snapshot)
}

/// The snapshots `dir` may be resumed from, best first: `dir` itself if it is a snapshot;
/// otherwise the one `latest` names (when it exists), then every `step-*` snapshot by
/// descending step. Nothing is read beyond directory names, so a damaged snapshot is listed
/// too: the caller tries each in turn.
pub fn snapshots_newest_first(dir: &Path) -> Vec<PathBuf> {
    if dir.join(STATE_FILE).is_file() {
        return vec![dir.to_path_buf()];
    }
    let mut found: Vec<((u64, u64), PathBuf)> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    snapshot_order(&name).map(|order| (order, e.path()))
                })
                .filter(|(_, path)| path.is_dir())
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut ordered: Vec<PathBuf> = Vec::with_capacity(found.len() + 1);
    if let Ok(name) = fs::read_to_string(dir.join(LATEST_FILE)) {
        let named = dir.join(name.trim());
        if !name.trim().is_empty() && named.is_dir() {
            ordered.push(named);
        }
    }
    for (_, path) in found {
        if !ordered.contains(&path) {
            ordered.push(path);
        }
    }
    ordered
}

/// `(step, suffix)` of a snapshot name `step-00000100` or `step-00000100.2`.
fn snapshot_order(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("step-")?;
    let (step, suffix) = match rest.split_once('.') {
        Some((step, suffix)) => (step, suffix.parse().ok()?),
        None => (rest, 0),
    };
    Some((step.parse().ok()?, suffix))
}

/// Tries `load` on each snapshot of [`snapshots_newest_first`] in turn and returns the first
/// success, with the snapshot it came from and the failures before it (each snapshot with its
/// error). When none loads, the error is the one of the first candidate (or
/// [`AeganError::NoCheckpoint`] when there is none).
pub fn load_with_fallback<T>(dir: &Path, mut load: impl FnMut(&Path) -> Result<T>) -> Result<Fallback<T>> {
    let candidates = snapshots_newest_first(dir);
    let mut skipped: Vec<(PathBuf, AeganError)> = Vec::new();
    for snapshot in candidates {
        match load(&snapshot) {
            Ok(value) => {
                return Ok(Fallback {
                    value,
                    snapshot,
                    skipped,
                })
            }
            Err(e) => skipped.push((snapshot, e)),
        }
    }
    match skipped.into_iter().next() {
        Some((_, first)) => Err(first),
        None => Err(resolve(dir).err().unwrap_or_else(|| AeganError::NoCheckpoint {
            path: dir.to_path_buf(),
            reason: "it holds no step-* snapshot".into(),
        })),
    }
}

/// What [`load_with_fallback`] found.
#[derive(Debug)]
pub struct Fallback<T> {
    /// The loaded value.
    pub value: T,
    /// The snapshot it was loaded from.
    pub snapshot: PathBuf,
    /// Newer snapshots that failed to load, each with its error (empty when the best
    /// candidate loaded).
    pub skipped: Vec<(PathBuf, AeganError)>,
}

/// Reads `config.json` of the snapshot `dir` designates.
pub fn read_config(dir: &Path) -> Result<AeganConfig> {
    AeganConfig::from_json_file(resolve(dir)?.join(CONFIG_FILE))
}

/// Reads `state.json` of a snapshot directory.
pub(crate) fn read_state(snapshot: &Path) -> Result<TrainingState> {
    let path = snapshot.join(STATE_FILE);
    let text = fs::read_to_string(&path).map_err(|e| AeganError::io(&path, e))?;
    let state: TrainingState = serde_json::from_str(&text).map_err(|source| AeganError::Json {
        path: path.clone(),
        source,
    })?;
    if state.format != FORMAT_VERSION {
        return Err(AeganError::CorruptCheckpoint {
            path,
            reason: format!(
                "format {} is not {FORMAT_VERSION}, the one this version reads",
                state.format
            ),
        });
    }
    Ok(state)
}

/// Builds the four networks from the snapshot `dir` designates, with its config: the way to
/// load a trained model for inference. A progressive run's networks are put at the resolution
/// and fade-in stage the snapshot was taken at ([`Networks::resolution`]). Like resuming, a
/// checkpoint root whose `latest` is unusable falls back to the newest snapshot that loads;
/// [`load_networks_reporting`] says which.
pub fn load_networks(dir: &Path, device: &Device) -> Result<(AeganConfig, Networks)> {
    Ok(load_networks_reporting(dir, device)?.value)
}

/// [`load_networks`], also returning the snapshot used and the newer ones that failed to load.
pub fn load_networks_reporting(dir: &Path, device: &Device) -> Result<Fallback<(AeganConfig, Networks)>> {
    load_with_fallback(dir, |snapshot| load_snapshot_networks(snapshot, device))
}

/// The networks of one snapshot directory.
fn load_snapshot_networks(snapshot: &Path, device: &Device) -> Result<(AeganConfig, Networks)> {
    let snapshot = resolve(snapshot)?;
    let config = AeganConfig::from_json_file(snapshot.join(CONFIG_FILE))?;
    let mut networks = Networks::new(&config, device)?;
    read_network_weights(&snapshot, &networks)?.apply(&networks)?;
    // A progressive run saved before reaching full size works at its saved resolution, and
    // a conditional one in its transition at its saved condition strength.
    let state = read_state(&snapshot)?;
    if let Some(c) = &config.conditioning {
        let images_shown = state.step.saturating_mul(config.batch_size as u64);
        networks.set_condition_strength(crate::controllers::condition_strength(c, images_shown));
    }
    let growth = state.growth;
    networks
        .set_growth(growth)
        .map_err(|e| AeganError::CorruptCheckpoint {
            path: snapshot.join(STATE_FILE),
            reason: format!("its growth {growth:?} does not fit the config: {e}"),
        })?;
    Ok((config, networks))
}

/// Network weights read from a snapshot and checked against a set of networks.
pub(crate) struct CheckedWeights(Vec<HashMap<String, Tensor>>);

impl CheckedWeights {
    /// Copies the values into `networks` (the ones they were checked against).
    pub fn apply(self, networks: &Networks) -> Result<()> {
        for ((_, store), tensors) in networks.saved_stores().into_iter().zip(self.0) {
            for (name, var) in store.all() {
                var.set(&tensors[&name])?;
            }
        }
        Ok(())
    }
}

/// Reads every network file of `snapshot` and checks it against `networks` (same tensor
/// names, same shapes), changing nothing.
pub(crate) fn read_network_weights(snapshot: &Path, networks: &Networks) -> Result<CheckedWeights> {
    let mut loaded = Vec::new();
    for (stem, store) in networks.saved_stores() {
        let path = snapshot.join(format!("{stem}.safetensors"));
        let tensors = read_tensors(&path, networks.device())?;
        check_matches(&path, store, &tensors)?;
        loaded.push(tensors);
    }
    Ok(CheckedWeights(loaded))
}

/// Fails unless `tensors` holds exactly the tensors of `store`, with the same shapes.
fn check_matches(path: &Path, store: &ParamStore, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let expected = store.all();
    for (name, var) in &expected {
        let t = tensors.get(name).ok_or_else(|| AeganError::TensorSetMismatch {
            path: path.to_path_buf(),
            tensor: name.clone(),
            problem: "is missing",
        })?;
        if t.dims() != var.dims() {
            return Err(AeganError::ShapeMismatch {
                path: path.to_path_buf(),
                tensor: name.clone(),
                expected: var.dims().to_vec(),
                found: t.dims().to_vec(),
            });
        }
    }
    let mut extra: Vec<&String> = tensors
        .keys()
        .filter(|k| !expected.iter().any(|(n, _)| n == *k))
        .collect();
    extra.sort();
    if let Some(name) = extra.first() {
        return Err(AeganError::TensorSetMismatch {
            path: path.to_path_buf(),
            tensor: (*name).clone(),
            problem: "is not part of this network",
        });
    }
    Ok(())
}

/// Reads every tensor of a safetensors file (f32 only) onto `device`.
pub fn read_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let bytes = fs::read(path).map_err(|e| AeganError::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| AeganError::CorruptCheckpoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != StDtype::F32 {
            return Err(AeganError::CorruptCheckpoint {
                path: path.to_path_buf(),
                reason: format!("tensor `{name}` is {:?}, expected F32", view.dtype()),
            });
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        check_finite(path, &name, &values)?;
        let t = Tensor::from_vec(values, view.shape(), device)?;
        out.insert(name, t);
    }
    Ok(out)
}

/// Fails with [`AeganError::NonFiniteTensor`] when `values` (tensor `name` of the file `path`)
/// hold NaN or an infinity: such weights load without complaint and then make NaN images or a
/// run that stops for a reason it cannot name.
fn check_finite(path: &Path, name: &str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(AeganError::NonFiniteTensor {
            path: path.to_path_buf(),
            tensor: name.to_string(),
            value: values[index],
            index,
            len: values.len(),
        }),
        None => Ok(()),
    }
}

/// Writes named tensors (as f32) to a safetensors file, atomically. A tensor holding NaN or an
/// infinity is refused ([`AeganError::NonFiniteTensor`]) and nothing is written.
pub fn save_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    write_atomic(path, &serialize(path, tensors)?)
}

/// Encodes named f32 tensors as the safetensors file `path`.
fn serialize(path: &Path, tensors: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let mut buffers = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        check_finite(path, name, &values)?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        buffers.push((name.clone(), t.dims().to_vec(), bytes));
    }
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(StDtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| AeganError::CorruptCheckpoint {
                    path: PathBuf::from(name),
                    reason: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, None).map_err(|e| AeganError::CorruptCheckpoint {
        path: PathBuf::from("<memory>"),
        reason: e.to_string(),
    })
}

/// The run id of snapshots written before run ids existed: all such snapshots count as one run.
pub const LEGACY_RUN_ID: &str = "legacy";

/// The run id recorded in a snapshot's `state.json` ([`LEGACY_RUN_ID`] when it has none);
/// `None` when `state.json` cannot be read.
pub fn snapshot_run_id(snapshot: &Path) -> Option<String> {
    let text = fs::read_to_string(snapshot.join(STATE_FILE)).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(
        value
            .get("run_id")
            .and_then(|id| id.as_str())
            .unwrap_or(LEGACY_RUN_ID)
            .to_string(),
    )
}

fn unused_snapshot_name(root: &Path, step: u64) -> String {
    let base = format!("step-{step:08}");
    if !root.join(&base).exists() {
        return base;
    }
    (1..)
        .map(|i| format!("{base}.{i}"))
        .find(|n| !root.join(n).exists())
        .unwrap_or(base)
}

/// Removes all but the newest snapshots of the run `run_id`, and any leftover temporary
/// directories. Snapshots of other runs are left alone: a new run started in the same folder
/// must never delete an older run's work. Failures are ignored: an old snapshot left behind is
/// harmless.
fn prune(root: &Path, newest: &str, run_id: Option<&str>) {
    let run_id = run_id.unwrap_or(LEGACY_RUN_ID);
    let Ok(entries) = fs::read_dir(root) else { return };
    let mut snapshots = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-step-") {
            let _ = fs::remove_dir_all(entry.path());
        } else if name.starts_with(".latest.") && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        } else if name.starts_with("step-")
            && name != newest
            && snapshot_run_id(&entry.path()).as_deref() == Some(run_id)
        {
            if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                snapshots.push((modified, name));
            }
        }
    }
    snapshots.sort();
    let excess = snapshots.len().saturating_sub(KEEP_SNAPSHOTS - 1);
    for (_, name) in snapshots.into_iter().take(excess) {
        let _ = fs::remove_dir_all(root.join(name));
    }
}
