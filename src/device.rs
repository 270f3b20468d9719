//! Choosing the compute device: CUDA or Metal when compiled in and present, else the CPU.

use std::str::FromStr;

use candle_core::Device;

use crate::error::{AeganError, Result};

/// Which device to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The first GPU whose backend is compiled in (`cuda` or `metal` feature) and present,
    /// otherwise the CPU.
    #[default]
    Auto,
    /// The CPU, even when a GPU is available.
    Cpu,
    /// CUDA GPU with this ordinal (needs the `cuda` feature).
    Cuda(usize),
    /// Metal GPU with this ordinal (needs the `metal` feature; macOS only).
    Metal(usize),
}

impl FromStr for DeviceChoice {
    type Err = AeganError;

    /// Parses `auto`, `cpu`, `cuda`, `cuda:N`, `metal` or `metal:N`.
    fn from_str(s: &str) -> Result<Self> {
        let (name, ordinal) = match s.split_once(':') {
            Some((name, n)) => {
                let n = n.parse().map_err(|_| AeganError::DeviceUnavailable {
                    device: s.to_string(),
                    reason: "the part after ':' must be a GPU number".into(),
                })?;
                (name, n)
            }
            None => (s, 0),
        };
        match name.to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(ordinal)),
            "metal" => Ok(DeviceChoice::Metal(ordinal)),
            _ => Err(AeganError::DeviceUnavailable {
                device: s.to_string(),
                reason: "expected auto, cpu, cuda[:N] or metal[:N]".into(),
            }),
        }
    }
}

/// The device for `choice`. `Auto` never fails; an explicit GPU that is not compiled in or not
/// present is an error naming it.
pub fn select_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda(n) => Device::new_cuda(n).map_err(|e| unavailable(format!("cuda:{n}"), e, "cuda")),
        DeviceChoice::Metal(n) => {
            Device::new_metal(n).map_err(|e| unavailable(format!("metal:{n}"), e, "metal"))
        }
        DeviceChoice::Auto => {
            if candle_core::utils::cuda_is_available() {
                if let Ok(device) = Device::new_cuda(0) {
                    return Ok(device);
                }
            }
            if candle_core::utils::metal_is_available() {
                if let Ok(device) = Device::new_metal(0) {
                    return Ok(device);
                }
            }
            Ok(Device::Cpu)
        }
    }
}

fn unavailable(device: String, err: candle_core::Error, feature: &str) -> AeganError {
    AeganError::DeviceUnavailable {
        device,
        reason: format!("{err} (is aegan built with `--features {feature}` and is the GPU present?)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse() {
        assert_eq!("cpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!("auto".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
        assert_eq!("cuda:1".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(1));
        assert_eq!("Metal".parse::<DeviceChoice>().unwrap(), DeviceChoice::Metal(0));
        assert!("tpu"
            .parse::<DeviceChoice>()
            .unwrap_err()
            .to_string()
            .contains("tpu"));
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn cpu_can_always_be_forced_and_auto_never_fails() {
        assert!(select_device(DeviceChoice::Cpu).unwrap().is_cpu());
        select_device(DeviceChoice::Auto).unwrap();
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_a_typed_error_naming_the_feature() {
        let err = select_device(DeviceChoice::Cuda(0)).unwrap_err();
        assert!(matches!(&err, AeganError::DeviceUnavailable { .. }));
        assert!(err.to_string().contains("--features cuda"), "{err}");
    }
}
