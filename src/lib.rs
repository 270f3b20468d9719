//! # aegan
//!
//! Autoencoding GANs (AEGAN, Lazarou 2020, [arXiv:2004.05472](https://arxiv.org/abs/2004.05472))
//! on [candle](https://github.com/huggingface/candle).
//!
//! An AEGAN trains four networks together: a generator G (z → x), an encoder E (x → z), an
//! image discriminator Dx and a latent discriminator Dz. Besides the usual adversarial game on
//! images, it plays one on latents and ties G and E with two reconstruction losses
//! (x → E → G and z → G → E), which counters mode collapse and gives an encoder for free. The
//! whole objective is written down in [`objective`].
//!
//! | where | what |
//! |---|---|
//! | [`config`] | [`AeganConfig`], presets, validation, class conditioning, mixed precision |
//! | [`nets`] | the four networks ([`Generator`], [`Encoder`], [`ImageDiscriminator`], [`LatentDiscriminator`]) |
//! | [`objective`] | the AEGAN losses, written once |
//! | [`diffaug`] | differentiable augmentation of the discriminator's inputs |
//! | [`AeganTrainer`] | the two training phases, optimisers, step counter |
//! | [`optim`] | Adam with state that can be saved |
//! | [`checkpoint`] | atomic save, validated load, exact resume |
//! | [`model`] | [`Model`]: a loaded checkpoint that samples, encodes, reconstructs, interpolates, and draws an image as another class |
//! | [`progressive`] | progressive growing from 4×4 with fade-in |
//! | [`training_loop`] | progress bar, pictures, logs, checkpoints, Ctrl-C |
//! | [`run_folder`] | what an output folder already holds; no run overwrites another |
//! | [`data`] | the `Dataset` trait, in-memory and on-demand sets, image folders, HAM10000, augmentation, synthetic sets |
//! | [`metrics`] | FID/KID, SWD, checkerboard, mode collapse, reconstruction, memorisation, per-class quality |
//! | [`ops`] | fast CPU convolution kernels, and the generic path other devices run |
//! | [`viz`] | image grids and charts |
//! | [`quiz`] | a practice page of real and generated images: "real or generated?", "which class?" |
//!
//! ```
//! use aegan::{data::synthetic, AeganConfig, AeganTrainer, DeviceChoice};
//! # fn main() -> aegan::Result<()> {
//! let device = aegan::select_device(DeviceChoice::Auto)?;
//! let mut config = AeganConfig::lean(32); // the CPU-friendly default preset
//! config.batch_size = 8;
//! let data = synthetic::lesions(16, 32, 0); // built-in synthetic lesions, not real data
//! let mut trainer = AeganTrainer::new(config, &device)?;
//! let batch = data.batch(&[0, 1, 2, 3, 4, 5, 6, 7], &device)?;
//! let losses = trainer.step(&batch)?;
//! println!("{:?}", losses.generator);
//! let model = trainer.model(); // sampling, encoding, reconstruction: `Model`
//! let z = model.sample_latents(4, 42)?;
//! let images = model.generate(&z)?; // (4, 3, 32, 32) in [-1, 1]
//! assert_eq!(images.dims(), &[4, 3, 32, 32]);
//! # Ok(()) }
//! ```
//!
//! **A chosen class.** With [`config::ConditioningConfig`] G and Dx take a label per image:
//!
//! ```
//! use aegan::config::ConditioningConfig;
//! use aegan::candle_core::Device;
//! use aegan::{AeganConfig, AeganTrainer};
//! # fn main() -> aegan::Result<()> {
//! let mut config = AeganConfig::lean(32);
//! config.batch_size = 4;
//! config.conditioning = Some(ConditioningConfig::new(vec!["nv".into(), "mel".into()]));
//! let mut trainer = AeganTrainer::new(config, &Device::Cpu)?;
//! let batch = aegan::data::synthetic::lesions(4, 32, 0).to_tensor(&Device::Cpu)?; // synthetic
//! trainer.step_labelled(&batch, &[0, 1, 0, 1])?; // the class of each image
//! let melanomas = trainer.model().sample_class(4, "mel", 7)?;
//! assert_eq!(melanomas.dims(), &[4, 3, 32, 32]);
//! assert!(trainer.model().sample_class(4, "bcc", 7).is_err()); // names the known classes
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod alloc;
pub mod checkpoint;
pub mod config;
pub mod controllers;
#[cfg(feature = "plots")]
mod curves;
pub mod data;
mod device;
pub mod diffaug;
mod error;
mod host;
mod io;
pub mod metrics;
pub mod model;
pub mod nets;
pub mod objective;
pub mod ops;
pub mod optim;
pub mod params;
mod progress;
pub mod progressive;
pub mod quiz;
pub mod rng;
pub mod run_folder;
pub mod run_lock;
mod threads;
mod trainer;
pub mod training_loop;
pub mod viz;

pub use alloc::keep_freed_memory;
pub use config::AeganConfig;
pub use device::{select_device, DeviceChoice};
pub use error::{AeganError, Result};
pub use host::host_reads;
pub use model::{Interpolation, Model};
pub use nets::{Encoder, Generator, ImageDiscriminator, LatentDiscriminator, NetworkKind, Networks};
pub use threads::{serial_candle_elementwise, CANDLE_POOL_VARIABLE};
pub use trainer::{AeganTrainer, StepLosses};
pub use training_loop::{LoopOptions, LoopSummary, TrainingLoop};

/// candle, re-exported so users get the version aegan was built with.
pub use candle_core;
pub use candle_nn;

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
