//! What the benches share: the device they run on.

use aegan::candle_core::Device;
use aegan::DeviceChoice;

/// The device named by `AEGAN_BENCH_DEVICE` (`cpu`, `cuda[:N]`, `metal[:N]`; default `auto`,
/// the best device present). A device asked for by name that cannot be used ends the bench
/// with its reason: a GPU row must never time the CPU under the GPU's name.
pub fn bench_device() -> Device {
    let asked = std::env::var("AEGAN_BENCH_DEVICE").unwrap_or_else(|_| "auto".to_string());
    let device = asked.parse::<DeviceChoice>().and_then(aegan::select_device);
    match device {
        Ok(device) => device,
        Err(e) => {
            eprintln!("AEGAN_BENCH_DEVICE={asked}: {e}");
            std::process::exit(1);
        }
    }
}
