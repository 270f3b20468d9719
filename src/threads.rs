//! Thread tuning for training loops on the CPU.
//!
//! Two thread pools share the cores during a training step. aegan's convolution kernels and
//! gemm's matrix products run on rayon's pool; candle 0.11 runs its large elementwise
//! operations (among them the sums of gradients in every backward pass) on a second pool of
//! its own, whose workers spin for a while after each operation, waiting for the next. They
//! spin on the cores that rayon's workers need for the next convolution, so the larger
//! share of the step waits for them. [`serial_candle_elementwise`] gives candle's pool no
//! workers of its own: its elementwise operations run on the calling thread, and rayon's
//! workers keep the cores.

use std::ffi::OsString;

/// The environment variable candle 0.11 reads, once, to size its elementwise pool.
pub const CANDLE_POOL_VARIABLE: &str = "CANDLE_NUM_THREADS";

/// Runs candle's elementwise operations on the calling thread instead of on a pool of
/// candle's own, so that they no longer compete with aegan's kernels for the cores: the lean
/// training step at batch 64 on a 2-core CPU with two threads took 0.76 to 0.82 s instead of
/// 0.94 to 1.17 s at 64×64, and 0.44 to 0.48 s instead of 0.47 to 0.61 s at 32×32 (three
/// alternating rounds of `cargo bench --bench train_step`; see `bench/README.md`). Results
/// are unchanged to the last bit: an elementwise operation computes each value the same way
/// on any thread.
///
/// It sets `CANDLE_NUM_THREADS=1`, which candle reads when it first needs the pool, so call it
/// at the start of a program, before any candle operation and before starting threads (the
/// training, evaluation and generation examples and the `train_step` and `forward` benchmarks
/// do). A value the user has set is kept. Returns whether the variable
/// was set by this call.
pub fn serial_candle_elementwise() -> bool {
    match setting_for(std::env::var_os(CANDLE_POOL_VARIABLE)) {
        Some(value) => {
            std::env::set_var(CANDLE_POOL_VARIABLE, value);
            true
        }
        None => false,
    }
}

/// The value to give [`CANDLE_POOL_VARIABLE`] when it currently holds `existing`: one thread
/// when unset, nothing when the user chose a value.
fn setting_for(existing: Option<OsString>) -> Option<&'static str> {
    match existing {
        Some(_) => None,
        None => Some("1"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_pool_gets_one_thread_and_a_users_choice_is_kept() {
        assert_eq!(setting_for(None), Some("1"));
        assert_eq!(setting_for(Some("4".into())), None);
        assert_eq!(setting_for(Some("".into())), None);
    }

    #[test]
    fn after_the_call_candle_finds_a_value_and_a_second_call_keeps_it() {
        serial_candle_elementwise();
        let value = std::env::var_os(CANDLE_POOL_VARIABLE);
        assert!(value.is_some(), "set by the call, or earlier by the user");
        assert!(!serial_candle_elementwise());
        assert_eq!(std::env::var_os(CANDLE_POOL_VARIABLE), value);
    }
}
