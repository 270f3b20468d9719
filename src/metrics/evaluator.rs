//! [`Evaluator`]: a model's metrics during or after training. The real images' Inception
//! features are computed once and cached on disk.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::{evaluate, memorisation, reconstruction_error, FidInception, Report};
use crate::checkpoint::{read_tensors, save_tensors};
use crate::data::ImageSet;
use crate::error::Result;
use crate::io::fnv1a;
use crate::rng::TrainRng;
use crate::Networks;

/// Evaluates generators against a fixed sample of real images.
pub struct Evaluator {
    real: Tensor,
    /// The classes of `real` when the set carries labels.
    real_labels: Option<Vec<usize>>,
    held_out: Option<Tensor>,
    held_out_labels: Option<Vec<usize>>,
    inception: Option<(FidInception, Tensor)>,
    n_fake: usize,
    seed: u64,
}

impl Evaluator {
    /// Compares `n_fake` generated images with `n_real` real ones (evenly spaced through
    /// `real`, all of them if it holds fewer). Metric randomness and latents come from `seed`.
    ///
    /// For a class-conditional model `real` must carry labels ([`ImageSet::with_labels`]):
    /// the generated images take the labels of the real sample in turn, so both sides hold the
    /// same mix of classes.
    pub fn new(real: &ImageSet, n_real: usize, n_fake: usize, seed: u64) -> Result<Self> {
        Ok(Evaluator {
            real: evenly_spaced(real, n_real)?,
            real_labels: evenly_spaced_labels(real, n_real),
            held_out: None,
            held_out_labels: None,
            inception: None,
            n_fake,
            seed,
        })
    }

    /// Adds FID and KID with `net`; the real images' features are read from, or written to,
    /// `cache_dir` under a name that fingerprints the images.
    pub fn with_inception(mut self, net: FidInception, cache_dir: Option<&Path>) -> Result<Self> {
        let features = cached_features(&net, &self.real, cache_dir)?;
        self.inception = Some((net, features));
        Ok(self)
    }

    /// Measures reconstruction on these images (e.g. a held-out split) instead of the real
    /// sample, and the memorisation check (pixels) of generated images against the real
    /// sample, with these as the held-out reference.
    /// A conditional model reconstructs with `labels`, the class of each held-out image.
    pub fn with_held_out(mut self, images: Tensor, labels: Option<Vec<usize>>) -> Self {
        self.held_out = Some(images);
        self.held_out_labels = labels;
        self
    }

    /// Number of real and generated images compared.
    pub fn sizes(&self) -> Result<(usize, usize)> {
        Ok((self.real.dim(0)?, self.n_fake))
    }

    /// Whether FID/KID are computed.
    pub fn has_inception(&self) -> bool {
        self.inception.is_some()
    }

    /// Generates the images (G in evaluation mode, fixed latents) and computes every metric.
    pub fn evaluate(&self, networks: &Networks, device: &Device) -> Result<Report> {
        let latent_dim = networks.latent_dim();
        let z = TrainRng::new(self.seed).normal((self.n_fake, latent_dim), device)?;
        let fake_labels = match (networks.is_conditional(), &self.real_labels) {
            (false, _) => None,
            (true, Some(real)) => Some((0..self.n_fake).map(|i| real[i % real.len()]).collect::<Vec<_>>()),
            (true, None) => {
                return Err(crate::AeganError::ClassLabels {
                    reason: "the model is class-conditional but the evaluation's real images carry no labels"
                        .into(),
                })
            }
        };
        let fake = generate(networks, &z, fake_labels.as_deref())?;
        let mut report = evaluate(&self.real, &fake, None, self.seed)?;
        if let Some((net, real_features)) = &self.inception {
            report.add_feature_scores(real_features, &net.features(&fake)?, self.seed)?;
        }
        if let Some(held_out) = &self.held_out {
            report.memorisation_pixels = Some(memorisation(&self.real, &fake, held_out)?);
        }
        let (held_out, labels) = match &self.held_out {
            Some(images) => (images, self.held_out_labels.as_deref()),
            None => (&self.real, self.real_labels.as_deref()),
        };
        let labels = labels.filter(|_| networks.is_conditional());
        report.reconstruction = Some(reconstruction_error(
            networks,
            &held_out.to_device(device)?,
            labels,
        )?);
        Ok(report)
    }
}

/// `n` images evenly spaced through `set` (all if it holds fewer), on the CPU.
pub fn evenly_spaced(set: &ImageSet, n: usize) -> Result<Tensor> {
    let indices: Vec<usize> = evenly_spaced_indices(set.len(), n).collect();
    set.batch(&indices, &Device::Cpu)
}

/// The classes of the images [`evenly_spaced`] takes from `set`, when it carries labels.
pub fn evenly_spaced_labels(set: &ImageSet, n: usize) -> Option<Vec<usize>> {
    let labels = set.labels()?;
    Some(evenly_spaced_indices(set.len(), n).map(|i| labels[i]).collect())
}

/// The indices [`evenly_spaced`] takes from a set of `len` (at least one, none from an empty set).
pub fn evenly_spaced_indices(len: usize, n: usize) -> impl Iterator<Item = usize> {
    let n = if len == 0 { 0 } else { n.clamp(1, len) };
    (0..n).map(move |i| i * len / n)
}

/// Samples G(z) as [`crate::model::generate`] does (with `labels` for a conditional model),
/// gathered on the CPU.
pub fn generate(networks: &Networks, z: &Tensor, labels: Option<&[usize]>) -> Result<Tensor> {
    Ok(crate::model::generate(networks, z, labels)?.to_device(&Device::Cpu)?)
}

/// Inception features of `images`, from `cache_dir` when an earlier call stored them there.
/// The file name fingerprints the pixel values, so other images never hit the cache.
pub fn cached_features(net: &FidInception, images: &Tensor, cache_dir: Option<&Path>) -> Result<Tensor> {
    let path: Option<PathBuf> = match cache_dir {
        Some(dir) => {
            let bytes: Vec<u8> = images
                .flatten_all()?
                .to_vec1::<f32>()?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            Some(dir.join(format!(
                "inception-features-{}-{:016x}.safetensors",
                images.dim(0)?,
                fnv1a(&bytes)
            )))
        }
        None => None,
    };
    if let Some(p) = path.as_ref().filter(|p| p.is_file()) {
        if let Some(t) = read_tensors(p, &Device::Cpu)
            .ok()
            .and_then(|mut m| m.remove("features"))
        {
            return Ok(t);
        }
    }
    let features = net.features(images)?;
    if let (Some(p), Some(dir)) = (path, cache_dir) {
        std::fs::create_dir_all(dir).map_err(|e| crate::AeganError::io(dir, e))?;
        save_tensors(&p, &[("features".to_string(), features.clone())])?;
    }
    Ok(features)
}
