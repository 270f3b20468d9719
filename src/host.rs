//! Reading values back from the compute device. On a GPU every read waits for the queued
//! work to finish, so the training step reads once: all its loss values in one copy. Every
//! read of the step's path goes through [`read_f32`] (or [`read_f32_in_layer`] inside a
//! network layer), which counts them, so a test can hold the step to its budget
//! ([`host_reads`]).

use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{DType, Tensor};

use crate::error::Result;

static READS: AtomicU64 = AtomicU64::new(0);

/// Device→host reads made through aegan's training path since the process started (all
/// threads). A diagnostic: the difference across a training step is that step's count.
pub fn host_reads() -> u64 {
    READS.load(Ordering::Relaxed)
}

/// The values of `t` (any shape) as f32 on the host, counted as one read.
pub(crate) fn read_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(read_f32_in_layer(t)?)
}

/// [`read_f32`] for code inside a network layer, which works in candle's `Result`: the same
/// counted read, with candle's error kept as it is rather than turned into a message.
pub(crate) fn read_f32_in_layer(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    READS.fetch_add(1, Ordering::Relaxed);
    t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()
}
