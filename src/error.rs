//! The crate's error type: every failure on user input is a value naming what was wrong.

use std::path::PathBuf;

/// Errors returned by aegan. Each variant names the file, field, tensor or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum AeganError {
    /// A configuration field holds a value the networks cannot be built with.
    #[error("invalid config: `{field}` = {value}: {reason}")]
    InvalidConfig {
        /// The field's name as it appears in the JSON config.
        field: &'static str,
        /// The offending value, formatted.
        value: String,
        /// What a valid value looks like.
        reason: String,
    },

    /// A tensor passed to the library has the wrong shape.
    #[error("bad input `{what}`: expected shape {expected}, got {found:?}")]
    BadInput {
        /// Which argument was wrong.
        what: &'static str,
        /// The shape that was expected, in words.
        expected: String,
        /// The shape that was given.
        found: Vec<usize>,
    },

    /// Class labels do not fit the model: labels for an unconditional model, none for a
    /// conditional one, or a label or class name it does not have.
    #[error("class labels: {reason}")]
    ClassLabels {
        /// What is wrong, with the model's classes.
        reason: String,
    },

    /// Two things that must agree on class conditioning do not (a checkpoint and a config, or
    /// a model and its training data): conditional against unconditional, or other classes.
    #[error("{first} is {first_classes}, but {second} is {second_classes}")]
    ConditioningMismatch {
        /// The first side, e.g. "the checkpoint runs/x/checkpoints/step-100".
        first: String,
        /// Its conditioning in words ("unconditional", or its class names).
        first_classes: String,
        /// The other side, e.g. "the config" or "the training data".
        second: String,
        /// Its conditioning in words.
        second_classes: String,
    },

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// A JSON file (config or training state) could not be parsed or written.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The JSON file concerned.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },

    /// A checkpoint file is damaged or not a checkpoint (truncated safetensors, wrong dtype, ...).
    #[error("{path}: corrupt checkpoint: {reason}")]
    CorruptCheckpoint {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A checkpoint tensor's shape differs from the network it is loaded into, usually because
    /// the checkpoint was written with another config.
    #[error(
        "{path}: tensor `{tensor}` has shape {found:?} in the checkpoint but the network expects {expected:?} (was the checkpoint made with another config?)"
    )]
    ShapeMismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The shape the network needs.
        expected: Vec<usize>,
        /// The shape stored in the checkpoint.
        found: Vec<usize>,
    },

    /// A tensor the network needs is absent from a checkpoint file, or the file holds one the
    /// network does not have.
    #[error("{path}: tensor `{tensor}` {problem} (was the checkpoint made with another config?)")]
    TensorSetMismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// "is missing" or "is not part of this network".
        problem: &'static str,
    },

    /// A tensor holds NaN or an infinite value: read from a file (a checkpoint saved from a
    /// diverged run, or damaged) or about to be written to one.
    #[error(
        "{path}: tensor `{tensor}` holds {value} (element {index} of {len}): the weights are damaged or come from a diverged run"
    )]
    NonFiniteTensor {
        /// The file read or written.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The first non-finite value.
        value: f32,
        /// Its position in the flattened tensor.
        index: usize,
        /// The tensor's number of elements.
        len: usize,
    },

    /// No checkpoint was found where one was expected.
    #[error("{path}: no checkpoint found ({reason})")]
    NoCheckpoint {
        /// The directory searched.
        path: PathBuf,
        /// Why nothing usable was found.
        reason: String,
    },

    /// A loss became NaN or infinite; the update that would have used it was not applied.
    #[error(
        "loss `{name}` is {value} at step {step}: training diverged (try lower learning rates); the weights were not updated with it"
    )]
    NonFiniteLoss {
        /// The loss term's name.
        name: &'static str,
        /// Its value.
        value: f32,
        /// The trainer step at which it happened.
        step: u64,
    },

    /// The requested compute device is not compiled in or not present.
    #[error("device `{device}` unavailable: {reason}")]
    DeviceUnavailable {
        /// The device asked for.
        device: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// An image could not be encoded or written.
    #[error("{path}: image error: {source}")]
    Image {
        /// The image file concerned.
        path: PathBuf,
        /// The codec's error.
        source: image::ImageError,
    },

    /// A folder yielded no usable image.
    #[error("{path}: no usable image found ({skipped} file(s) skipped as unreadable){hint}")]
    NoImages {
        /// The folder searched.
        path: PathBuf,
        /// How many files were skipped because they could not be decoded.
        skipped: usize,
        /// Extra advice, starting with "; " when present.
        hint: String,
    },

    /// A metadata CSV file is missing a column or holds a malformed row.
    #[error("{path}{}: {reason}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// The 1-based line, when the problem is in one row.
        line: Option<u64>,
        /// What is wrong.
        reason: String,
    },

    /// A metadata row names an image that is not under the data folder.
    #[error("{csv}, line {line}: no image file for image_id `{image_id}` under {folder} (looked for {image_id}.jpg / .jpeg / .png)")]
    MissingImage {
        /// The metadata CSV.
        csv: PathBuf,
        /// The row's 1-based line.
        line: u64,
        /// The image id without extension.
        image_id: String,
        /// The data folder searched.
        folder: PathBuf,
    },

    /// The output folder already holds another training run (a checkpoint or a loss log that
    /// the trainer did not write); starting over would overwrite it.
    #[error(
        "{path} already holds another training run ({what}); continue it with --resume, choose another --out, or pass --overwrite to delete it"
    )]
    RunExists {
        /// The output folder.
        path: PathBuf,
        /// What is there, e.g. "checkpoint at step 1200, 1200 logged steps".
        what: String,
    },

    /// Another live process is training into the same output folder (it holds the folder's
    /// [`crate::run_lock::RunLock`]).
    #[error(
        "{path} is in use by another training run (process {pid}); wait for it to end or choose another --out (if no such run is going on, delete {path}/run.lock)"
    )]
    RunInProgress {
        /// The output folder.
        path: PathBuf,
        /// The process id written in its lock file.
        pid: u32,
    },

    /// A program option (command-line flag or the equivalent setting) is outside its range.
    #[error("invalid {option} {value}: {reason}")]
    InvalidOption {
        /// The option as the user spells it, e.g. `--steps`.
        option: String,
        /// The value given.
        value: String,
        /// What is wrong, or the allowed range, e.g. "must be at least 1".
        reason: String,
    },

    /// An error about one of several inputs, said with which one (e.g. `--real <folder>`).
    #[error("{context}: {source}")]
    Context {
        /// Which input the error concerns.
        context: String,
        /// The error itself.
        source: Box<AeganError>,
    },

    /// A chart could not be drawn.
    #[error("{path}: drawing the chart failed: {reason}")]
    Plot {
        /// The picture being written.
        path: PathBuf,
        /// The plotting library's complaint.
        reason: String,
    },

    /// An error inside candle (tensor arithmetic, device memory, ...).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Shorthand for `std::result::Result<T, AeganError>`.
pub type Result<T> = std::result::Result<T, AeganError>;

impl AeganError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AeganError::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`AeganError::InvalidOption`]: `option` has `value`, which is wrong because
    /// of `reason` (e.g. "must be at least 1").
    pub fn option(
        option: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        AeganError::InvalidOption {
            option: option.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// This error, said to concern `context` (e.g. which folder of several).
    pub fn context(self, context: impl Into<String>) -> Self {
        AeganError::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// Builds an [`AeganError::InvalidConfig`].
    /// A conditioning, described in words: "unconditional" or "conditional on a, b, c".
    pub(crate) fn describe_classes(classes: &[String]) -> String {
        if classes.is_empty() {
            "unconditional".into()
        } else {
            format!(
                "conditional on {} classes ({})",
                classes.len(),
                classes.join(", ")
            )
        }
    }

    pub(crate) fn config(
        field: &'static str,
        value: impl std::fmt::Debug,
        reason: impl Into<String>,
    ) -> Self {
        AeganError::InvalidConfig {
            field,
            value: format!("{value:?}"),
            reason: reason.into(),
        }
    }
}
