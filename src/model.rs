//! A trained AEGAN for inference: load a checkpoint, then sample, generate, encode,
//! reconstruct and interpolate. Every program that uses a trained model (the `generate` and
//! `evaluate` examples, the metrics, the trainer's own pictures) goes through the same
//! functions, so that they all sample the same way.
//!
//! ```no_run
//! # fn main() -> aegan::Result<()> {
//! use aegan::model::{Interpolation, Model};
//! let model = Model::load("runs/ham10000/checkpoint", &aegan::candle_core::Device::Cpu)?;
//! let images = model.sample(16, 42)?; // (16, 3, 32, 32) in [-1, 1]
//! let codes = model.encode(&images)?;
//! let path = model.interpolate(&images.get(0)?, &images.get(1)?, 8, Interpolation::Spherical)?;
//! # let _ = (codes, path);
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::checkpoint::{self, Fallback};
use crate::config::AeganConfig;
use crate::error::{AeganError, Result};
use crate::nets::Networks;
use crate::ops::{downsample_area, upsample_nearest};
use crate::rng::TrainRng;

/// Latents passed through G at a time, and images through E.
const BATCH: usize = 256;

/// How [`Model::interpolate`] moves between two latents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// Along the straight line `(1 − t)·z₀ + t·z₁`.
    Linear,
    /// Along the great circle (slerp), which keeps the norm of Gaussian latents typical
    /// where the straight line passes close to the origin (White 2016).
    Spherical,
}

/// The networks of a checkpoint and its config, in evaluation mode.
#[derive(Clone)]
pub struct Model {
    config: AeganConfig,
    networks: Networks,
}

impl Model {
    /// Wraps networks built for `config` (for example a trainer's).
    pub fn new(config: AeganConfig, networks: Networks) -> Self {
        Model { config, networks }
    }

    /// The newest snapshot of the checkpoint directory `dir` that loads (see
    /// [`checkpoint::load_networks`]).
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        Ok(Self::load_reporting(dir, device)?.value)
    }

    /// As [`Model::load`], also saying which snapshot loaded and why newer ones were skipped.
    pub fn load_reporting(dir: impl AsRef<Path>, device: &Device) -> Result<Fallback<Self>> {
        let loaded = checkpoint::load_networks_reporting(dir.as_ref(), device)?;
        let (config, networks) = loaded.value;
        Ok(Fallback {
            value: Model::new(config, networks),
            snapshot: loaded.snapshot,
            skipped: loaded.skipped,
        })
    }

    /// The config the checkpoint was trained with.
    pub fn config(&self) -> &AeganConfig {
        &self.config
    }

    /// The four networks (and the moving average of G, when kept).
    pub fn networks(&self) -> &Networks {
        &self.networks
    }

    /// Side of the images the model makes and takes: the config's image size, or less for a
    /// progressive run saved before it reached full size.
    pub fn resolution(&self) -> usize {
        self.networks.resolution()
    }

    /// `n` latents from N(0, I), drawn in order from a stream seeded with `seed`: latent i is
    /// the same whatever `n` is.
    pub fn sample_latents(&self, n: usize, seed: u64) -> Result<Tensor> {
        sample_latents(n, self.config.latent_dim, seed, self.networks.device())
    }

    /// `n` images from latents drawn with `seed` ([`Model::sample_latents`], [`Model::generate`]).
    pub fn sample(&self, n: usize, seed: u64) -> Result<Tensor> {
        self.generate(&self.sample_latents(n, seed)?)
    }

    /// G(z) for latents `(n, latent_dim)`: from the moving average of G when the checkpoint
    /// keeps one, in evaluation mode, detached, on the model's device. A class-conditional
    /// model needs labels: [`Model::generate_labelled`].
    pub fn generate(&self, z: &Tensor) -> Result<Tensor> {
        generate(&self.networks, z, None)
    }

    /// G(z, y) of a class-conditional model, with `labels[i]` the class of image i (an index
    /// into [`Model::class_names`]).
    pub fn generate_labelled(&self, z: &Tensor, labels: &[usize]) -> Result<Tensor> {
        generate(&self.networks, z, Some(labels))
    }

    /// The classes of a conditional model, in label order (empty for an unconditional one).
    pub fn class_names(&self) -> &[String] {
        self.networks.class_names()
    }

    /// `n` images of the class called `class` from latents drawn with `seed`. An unknown
    /// class is an error listing the model's classes.
    pub fn sample_class(&self, n: usize, class: &str, seed: u64) -> Result<Tensor> {
        let label = self.networks.label_of(class)?;
        self.generate_labelled(&self.sample_latents(n, seed)?, &vec![label; n])
    }

    /// E(x) for images `(n, channels, h, w)`, resized to [`Model::resolution`] first when
    /// their side is a power-of-two multiple or fraction of it.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        encode(&self.networks, &self.fit(x)?)
    }

    /// G(E(x)), through G itself (the generator E was trained with, never its average),
    /// at [`Model::resolution`].
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        reconstruct(&self.networks, &self.fit(x)?, None)
    }

    /// [`Model::reconstruct`] for a class-conditional model: G(E(x), y) with `labels[i]` the
    /// class of image i.
    pub fn reconstruct_labelled(&self, x: &Tensor, labels: &[usize]) -> Result<Tensor> {
        reconstruct(&self.networks, &self.fit(x)?, Some(labels))
    }

    /// `steps` images (`steps` ≥ 2) on the path from E(a) to E(b) through G itself, for two
    /// images `a`, `b` of shape `(channels, h, w)` or `(1, channels, h, w)`: the first and the
    /// last are the reconstructions of `a` and `b`. Unconditional models only (a conditional
    /// one answers with [`AeganError::ClassLabels`]).
    pub fn interpolate(&self, a: &Tensor, b: &Tensor, steps: usize, how: Interpolation) -> Result<Tensor> {
        let as_batch = |x: &Tensor| -> Result<Tensor> {
            Ok(match x.rank() {
                3 => x.unsqueeze(0)?,
                _ => x.clone(),
            })
        };
        let ends = Tensor::cat(&[as_batch(a)?, as_batch(b)?], 0)?;
        if ends.dim(0)? != 2 {
            return Err(AeganError::BadInput {
                what: "interpolation ends",
                expected: "two single images".into(),
                found: ends.dims().to_vec(),
            });
        }
        self.networks.labels_for(None, 2)?;
        let ends = self.encode(&ends)?;
        let path = interpolate_latents(&ends.get(0)?, &ends.get(1)?, steps, how)?;
        Ok(self.networks.generator.forward_t(&path, false)?.detach())
    }

    /// "This image drawn as class `to_class`": G(E(x), y′) for images `x` `(n, channels, h,
    /// w)` (resized as [`Model::encode`] does), through G itself as
    /// [`Model::reconstruct_labelled`] is, so that the same skin, framing and size come back
    /// with what the model learned for y′. Conditional models only: an unconditional one
    /// (which has no classes to draw an image as) and an unknown class are
    /// [`AeganError::ClassLabels`] errors.
    ///
    /// ```no_run
    /// # fn main() -> aegan::Result<()> {
    /// use aegan::model::Model;
    /// let model = Model::load("runs/ham10000/checkpoint", &aegan::candle_core::Device::Cpu)?;
    /// let options = aegan::data::LoadOptions::new(model.resolution());
    /// let lesions = aegan::data::load_folder("my_lesions".as_ref(), &options)?
    ///     .to_image_set("my lesions")?
    ///     .to_tensor(&aegan::candle_core::Device::Cpu)?;
    /// let as_melanoma = model.counterfactual(&lesions, "mel")?; // one per lesion
    /// # let _ = as_melanoma;
    /// # Ok(())
    /// # }
    /// ```
    pub fn counterfactual(&self, x: &Tensor, to_class: &str) -> Result<Tensor> {
        self.require_conditional("a counterfactual")?;
        let label = self.networks.label_of(to_class)?;
        let n = x.dim(0)?;
        self.reconstruct_labelled(x, &vec![label; n])
    }

    /// `steps` images (`steps` ≥ 2) G(z, (1 − t)·e(from) + t·e(to)) for t from 0 to 1 in
    /// equal steps, for one latent `z` (`(latent_dim,)` or `(1, latent_dim)`; for a real
    /// image, its code from [`Model::encode`]): how the model turns an image of one class into
    /// one of another. Through G itself, so with z = E(x) the first image is x's
    /// reconstruction as `from` and the last its counterfactual as `to`. Conditional models
    /// only ([`AeganError::ClassLabels`] otherwise, or for an unknown class).
    ///
    /// ```no_run
    /// # fn main() -> aegan::Result<()> {
    /// use aegan::model::Model;
    /// let model = Model::load("runs/ham10000/checkpoint", &aegan::candle_core::Device::Cpu)?;
    /// let z = model.sample_latents(1, 7)?;
    /// let naevus_to_melanoma = model.class_path(&z, "nv", "mel", 8)?; // (8, 3, 32, 32)
    /// # let _ = naevus_to_melanoma;
    /// # Ok(())
    /// # }
    /// ```
    pub fn class_path(&self, z: &Tensor, from: &str, to: &str, steps: usize) -> Result<Tensor> {
        self.require_conditional("a class path")?;
        if steps < 2 {
            return Err(AeganError::BadInput {
                what: "class path steps",
                expected: "at least 2".into(),
                found: vec![steps],
            });
        }
        let latent_dim = self.config.latent_dim;
        let z = z.to_dtype(DType::F32)?.to_device(self.networks.device())?;
        let z = match z.dims() {
            [d] if *d == latent_dim => z.unsqueeze(0)?,
            [1, d] if *d == latent_dim => z,
            _ => {
                return Err(AeganError::BadInput {
                    what: "class path latent",
                    expected: format!("one latent of {latent_dim} values"),
                    found: z.dims().to_vec(),
                })
            }
        };
        let device = self.networks.device();
        let ends = crate::nets::labels_tensor(
            &[self.networks.label_of(from)?, self.networks.label_of(to)?],
            device,
        )?;
        let generator = &self.networks.generator;
        let ends = generator.embed_labels(&ends)?;
        let (start, end) = (ends.get(0)?, ends.get(1)?);
        let path = (0..steps)
            .map(|i| {
                let t = i as f64 / (steps - 1) as f64;
                (&start * (1.0 - t))? + (&end * t)?
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let path = Tensor::stack(&path, 0)?;
        let zs = z.broadcast_as((steps, latent_dim))?.contiguous()?;
        Ok(generator.forward_embedded_t(&zs, &path, false)?.detach())
    }

    /// An [`AeganError::ClassLabels`] naming `what` unless the model is class-conditional.
    fn require_conditional(&self, what: &str) -> Result<()> {
        if self.networks.is_conditional() {
            return Ok(());
        }
        Err(AeganError::ClassLabels {
            reason: format!(
                "{what} draws an image as another class, and this model is unconditional: it has no classes (train one with --conditional)"
            ),
        })
    }

    /// `x` at the model's resolution: area-downsampled or nearest-upsampled by a power of two.
    fn fit(&self, x: &Tensor) -> Result<Tensor> {
        let (_, channels, h, w) = x.dims4().map_err(|_| AeganError::BadInput {
            what: "images",
            expected: "a batch (n, channels, height, width)".into(),
            found: x.dims().to_vec(),
        })?;
        let side = self.resolution();
        let wrong = || AeganError::BadInput {
            what: "image size",
            expected: format!(
                "{} channels and a square side that is a power-of-two multiple or fraction of {side}",
                self.config.channels
            ),
            found: vec![channels, h, w],
        };
        if channels != self.config.channels || h != w || !(h.is_power_of_two() && side.is_power_of_two()) {
            return Err(wrong());
        }
        let x = x.to_dtype(DType::F32)?.to_device(self.networks.device())?;
        Ok(if h > side {
            downsample_area(&x, h / side)?
        } else {
            upsample_nearest(&x, side / h)?
        })
    }
}

/// `n` latents of `latent_dim` from N(0, I) on `device`, drawn in order from a stream seeded
/// with `seed` (not the training stream, so sampling never changes how training continues).
pub fn sample_latents(n: usize, latent_dim: usize, seed: u64, device: &Device) -> Result<Tensor> {
    TrainRng::new(seed).normal((n, latent_dim), device)
}

/// G(z) in evaluation mode from [`Networks::sampler`] (the moving average of G when kept),
/// 256 latents at a time, detached (no graph is kept alive), on the networks' device.
/// `labels`: the class of each image for a conditional model ([`Networks::labels_for`]
/// checks them), `None` otherwise.
pub fn generate(networks: &Networks, z: &Tensor, labels: Option<&[usize]>) -> Result<Tensor> {
    let labels = networks.labels_for(labels, z.dim(0)?)?;
    let sampler = networks.sampler()?;
    in_batches_labelled(z, labels.as_ref(), |z, y| {
        Ok(sampler.forward_labelled_t(z, y, false)?.detach())
    })
}

/// E(x) in evaluation mode, detached, for images at the networks' resolution.
pub fn encode(networks: &Networks, x: &Tensor) -> Result<Tensor> {
    in_batches(x, |x| {
        let x = x.to_device(networks.device())?;
        Ok(networks.encoder.forward_t(&x, false)?.detach())
    })
}

/// G(E(x)) in evaluation mode through G itself, detached, for images at the networks'
/// resolution; a conditional model takes each image's class as `labels`.
pub fn reconstruct(networks: &Networks, x: &Tensor, labels: Option<&[usize]>) -> Result<Tensor> {
    let labels = networks.labels_for(labels, x.dim(0)?)?;
    let z = encode(networks, x)?;
    in_batches_labelled(&z, labels.as_ref(), |z, y| {
        Ok(networks.generator.forward_labelled_t(z, y, false)?.detach())
    })
}

/// `steps` latents from `z0` to `z1` (vectors of one length) inclusive, `(steps, latent_dim)`.
pub fn interpolate_latents(z0: &Tensor, z1: &Tensor, steps: usize, how: Interpolation) -> Result<Tensor> {
    if steps < 2 {
        return Err(AeganError::BadInput {
            what: "interpolation steps",
            expected: "at least 2".into(),
            found: vec![steps],
        });
    }
    let norm = |z: &Tensor| -> Result<f64> { Ok(z.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()? as f64) };
    let (n0, n1) = (norm(z0)?, norm(z1)?);
    let cosine = ((z0 * z1)?.sum_all()?.to_scalar::<f32>()? as f64 / (n0 * n1).max(1e-12)).clamp(-1.0, 1.0);
    let angle = cosine.acos();
    let points = (0..steps)
        .map(|i| {
            let t = i as f64 / (steps - 1) as f64;
            // Slerp's weights; on (nearly) parallel latents the line and the arc agree.
            let (w0, w1) = match how {
                Interpolation::Spherical if angle.sin() > 1e-6 => (
                    ((1.0 - t) * angle).sin() / angle.sin(),
                    (t * angle).sin() / angle.sin(),
                ),
                _ => (1.0 - t, t),
            };
            (z0 * w0)? + (z1 * w1)?
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::stack(&points, 0)?)
}

/// [`in_batches`] with the matching slice of `labels` (when given) passed beside each slice.
fn in_batches_labelled(
    x: &Tensor,
    labels: Option<&Tensor>,
    f: impl Fn(&Tensor, Option<&Tensor>) -> Result<Tensor>,
) -> Result<Tensor> {
    let n = x.dim(0)?;
    let parts = (0..n.max(1))
        .step_by(BATCH)
        .map(|start| {
            let len = BATCH.min(n - start);
            let y = labels.map(|y| y.narrow(0, start, len)).transpose()?;
            f(&x.narrow(0, start, len)?, y.as_ref())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 0)?)
}

/// `f` applied to consecutive slices of at most [`BATCH`] rows of `x`, concatenated.
fn in_batches(x: &Tensor, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    let n = x.dim(0)?;
    if n <= BATCH {
        return f(x);
    }
    let parts = (0..n)
        .step_by(BATCH)
        .map(|start| f(&x.narrow(0, start, BATCH.min(n - start))?))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 0)?)
}
