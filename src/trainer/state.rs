//! What a training run carries besides its networks and optimisers, and saves in every
//! checkpoint beside them: the step count, the random stream's position, the controllers'
//! state and the run's id.

use crate::config::AeganConfig;
use crate::controllers::Controllers;
use crate::rng::TrainRng;

/// The run's state outside the networks and optimisers.
#[derive(Debug, Clone)]
pub(super) struct RunState {
    /// Training steps completed.
    pub step: u64,
    /// The stream every random number of training comes from.
    pub rng: TrainRng,
    /// ADA, LeCam, the average's decay and the condition's strength.
    pub controllers: Controllers,
    /// Identifies the run in its checkpoints ([`super::AeganTrainer::run_id`]).
    pub run_id: String,
}

impl RunState {
    /// The state of a new run of `config`.
    pub fn new(config: &AeganConfig) -> Self {
        RunState {
            step: 0,
            rng: TrainRng::new(config.seed),
            controllers: Controllers::new(config),
            run_id: new_run_id(),
        }
    }
}

/// A run id that does not repeat: wall-clock nanoseconds, the process id and a per-process
/// counter. It never feeds any computation, so it does not affect reproducibility.
fn new_run_id() -> String {
    static CREATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{nanos:x}-{:x}-{n}", std::process::id())
}
