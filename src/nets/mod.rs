//! The four AEGAN networks and [`Networks`], which builds them together with their tensors.

mod discriminator;
mod encoder;
mod excitation;
mod feature_decoder;
mod generator;
mod growing;
pub(crate) mod layers;
mod noise;
pub(crate) mod spectral;

pub use discriminator::{DiscriminatorOutput, ImageDiscriminator, LatentDiscriminator};
pub use encoder::Encoder;
pub use generator::Generator;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use candle_core::{Device, Tensor, Var};

use crate::config::AeganConfig;
use crate::error::Result;
use crate::io::fnv1a;
use crate::params::ParamStore;
use crate::progressive::Growth;
use crate::rng::TrainRng;

/// Batches of latents over which the average of G's batch-norm statistics are measured.
pub const STANDING_STATISTICS_BATCHES: usize = 16;
/// Latents per batch of that measurement.
pub const STANDING_STATISTICS_BATCH: usize = 128;
/// Seed of the latents of that measurement (its own stream: training is not affected).
const STANDING_STATISTICS_SEED: u64 = 0x57a7;

/// A network's spec check as candle's error type (the constructors return candle's `Result`),
/// keeping the field and value: a network built on its own refuses what [`Networks::new`]
/// refuses (an `image_size` of 24 would otherwise give a G that outputs 8×8).
pub(crate) fn validated(checked: crate::Result<()>) -> candle_core::Result<()> {
    checked.map_err(|e| candle_core::Error::Msg(e.to_string()))
}

/// The class layer of a network (`layer`: `None` for an unconditional network) paired with
/// the `labels` of a forward pass, checked: a conditional network needs one u32 label per
/// `item` of the batch of `batch`, an unconditional one takes none. `None` means "no label
/// term"; `network` and `item` name what is wrong in the error.
pub(crate) fn with_labels<'a, L>(
    layer: &'a Option<L>,
    labels: Option<&'a Tensor>,
    batch: usize,
    network: &str,
    item: &str,
) -> candle_core::Result<Option<(&'a L, &'a Tensor)>> {
    match (layer, labels) {
        (None, None) => Ok(None),
        (Some(layer), Some(labels)) => {
            if labels.dims() != [batch] || labels.dtype() != candle_core::DType::U32 {
                candle_core::bail!(
                    "labels must be a u32 tensor of shape ({batch},), one per image; found {:?} of {:?}",
                    labels.dims(),
                    labels.dtype()
                );
            }
            Ok(Some((layer, labels)))
        }
        (Some(_), None) => candle_core::bail!(
            "this {network} is class-conditional: it needs a label per {item} (forward_labelled_t)"
        ),
        (None, Some(_)) => candle_core::bail!("this {network} is not class-conditional: it takes no labels"),
    }
}

/// Class labels as the u32 tensor `(n,)` that the conditional networks take, on `device`.
pub fn labels_tensor(labels: &[usize], device: &Device) -> Result<Tensor> {
    let values: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
    Ok(Tensor::from_vec(values, labels.len(), device)?)
}

/// File stem of the moving average of G in a checkpoint.
pub const EMA_FILE_STEM: &str = "generator_ema";

/// Names one of the four networks; its [`NetworkKind::name`] is its checkpoint file stem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkKind {
    /// G: z → x.
    Generator,
    /// E: x → z.
    Encoder,
    /// Dx: x → logit.
    ImageDiscriminator,
    /// Dz: z → logit.
    LatentDiscriminator,
}

impl NetworkKind {
    /// All four, in a fixed order.
    pub const ALL: [NetworkKind; 4] = [
        NetworkKind::Generator,
        NetworkKind::Encoder,
        NetworkKind::ImageDiscriminator,
        NetworkKind::LatentDiscriminator,
    ];

    /// `generator`, `encoder`, `image_discriminator` or `latent_discriminator`.
    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::Generator => "generator",
            NetworkKind::Encoder => "encoder",
            NetworkKind::ImageDiscriminator => "image_discriminator",
            NetworkKind::LatentDiscriminator => "latent_discriminator",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// G, E, Dx and Dz built from one config, each with its own [`ParamStore`].
#[derive(Clone)]
pub struct Networks {
    /// Generator G.
    pub generator: Generator,
    /// Encoder E.
    pub encoder: Encoder,
    /// Image discriminator Dx.
    pub image_discriminator: ImageDiscriminator,
    /// Latent discriminator Dz.
    pub latent_discriminator: LatentDiscriminator,
    /// The moving average of G's weights when the config keeps one
    /// ([`AeganConfig::generator_average`]);
    /// [`Networks::sampler`] picks it over G.
    pub generator_ema: Option<Generator>,
    stores: [ParamStore; 4],
    ema_store: Option<ParamStore>,
    /// Whether the average's weights moved since its batch-norm statistics were measured.
    average_statistics_stale: Arc<AtomicBool>,
    latent_dim: usize,
    class_names: Vec<String>,
    device: Device,
}

impl Networks {
    /// Builds the four networks on `device`, initialised from `config.seed`. The config is
    /// validated first.
    pub fn new(config: &AeganConfig, device: &Device) -> Result<Self> {
        config.validate()?;
        let seed_of = |kind: NetworkKind| config.seed ^ fnv1a(kind.name().as_bytes());
        let stores = NetworkKind::ALL.map(|kind| ParamStore::new(seed_of(kind)));
        let vb = |kind: NetworkKind| stores[kind.index()].var_builder(device);
        // Same seed as G: the average starts from G's initial weights.
        let ema_store = config
            .keeps_generator_average()
            .then(|| ParamStore::new(seed_of(NetworkKind::Generator)));
        let generator_ema = match &ema_store {
            Some(store) => Some(Generator::new(config, store.var_builder(device))?),
            None => None,
        };
        Ok(Networks {
            generator_ema,
            ema_store,
            generator: Generator::new(config, vb(NetworkKind::Generator))?,
            encoder: Encoder::new(config, vb(NetworkKind::Encoder))?,
            image_discriminator: ImageDiscriminator::new(config, vb(NetworkKind::ImageDiscriminator))?,
            latent_discriminator: LatentDiscriminator::new(config, vb(NetworkKind::LatentDiscriminator))?,
            stores,
            average_statistics_stale: Arc::new(AtomicBool::new(true)),
            latent_dim: config.latent_dim,
            class_names: config.class_names().to_vec(),
            device: device.clone(),
        })
    }

    /// The class names of a class-conditional model (label i is `class_names()[i]`); empty
    /// for an unconditional one.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Whether G and Dx take class labels.
    pub fn is_conditional(&self) -> bool {
        !self.class_names.is_empty()
    }

    /// `labels` as the tensor G and Dx take, after checking them against this model: labels
    /// for an unconditional model, none for a conditional one, a count other than `n` or a
    /// label beyond the classes are errors naming the problem.
    pub fn labels_for(&self, labels: Option<&[usize]>, n: usize) -> Result<Option<Tensor>> {
        let classes = self.class_names.len();
        let model = crate::AeganError::describe_classes(&self.class_names);
        let refuse = |reason: String| Err(crate::AeganError::ClassLabels { reason });
        match labels {
            None if classes == 0 => Ok(None),
            None => refuse(format!("the model is {model}: give a label per image")),
            Some(_) if classes == 0 => refuse("the model is unconditional: it takes no labels".into()),
            Some(labels) if labels.len() != n => refuse(format!(
                "{} labels for {n} images: give one per image",
                labels.len()
            )),
            Some(labels) => match labels.iter().find(|&&l| l >= classes) {
                Some(bad) => refuse(format!(
                    "label {bad} is beyond the model's classes: it is {model}"
                )),
                None => Ok(Some(labels_tensor(labels, &self.device)?)),
            },
        }
    }

    /// The label of the class called `name`, or an error listing the model's classes.
    pub fn label_of(&self, name: &str) -> Result<usize> {
        match self.class_names.iter().position(|c| c == name) {
            Some(label) => Ok(label),
            None => Err(crate::AeganError::ClassLabels {
                reason: format!(
                    "no class `{name}`: the model is {}",
                    crate::AeganError::describe_classes(&self.class_names)
                ),
            }),
        }
    }

    /// Sets the strength λ of the class condition in G (and its average) and Dx: 1 when fully
    /// conditional; a transition raises it from 0. Does nothing to an unconditional model.
    pub fn set_condition_strength(&mut self, strength: f64) {
        if (strength - self.generator.condition_strength()).abs() > 0.0 {
            self.average_statistics_stale.store(true, Ordering::Release);
        }
        self.generator.set_condition_strength(strength);
        if let Some(ema) = &mut self.generator_ema {
            ema.set_condition_strength(strength);
        }
        self.image_discriminator.set_condition_strength(strength);
    }

    /// The device the networks' tensors live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Size of the latent vector z.
    pub fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    /// The tensors of one network.
    pub fn store(&self, kind: NetworkKind) -> &ParamStore {
        &self.stores[kind.index()]
    }

    /// Makes G (and its average), E and Dx work at `growth` (progressive networks only;
    /// `None` returns to the full image size). Dz never changes.
    pub fn set_growth(&mut self, growth: Option<Growth>) -> Result<()> {
        if growth != self.growth() {
            self.average_statistics_stale.store(true, Ordering::Release);
        }
        self.generator.set_growth(growth)?;
        if let Some(ema) = &mut self.generator_ema {
            ema.set_growth(growth)?;
        }
        self.encoder.set_growth(growth)?;
        self.image_discriminator.set_growth(growth)?;
        Ok(())
    }

    /// The growth state the networks work at (`None`: the full image size, not growing).
    pub fn growth(&self) -> Option<Growth> {
        self.generator.growth()
    }

    /// Side of the images the networks produce and take now.
    pub fn resolution(&self) -> usize {
        self.generator.output_size()
    }

    /// The tensors of the moving average of G, if one is kept.
    pub fn ema_store(&self) -> Option<&ParamStore> {
        self.ema_store.as_ref()
    }

    /// The generator to draw samples from: the moving average of G when one is kept, else G.
    /// The average's batch-norm statistics are measured afresh first when its weights moved
    /// since they last were ([`Networks::refresh_average_statistics`]).
    pub fn sampler(&self) -> Result<&Generator> {
        match &self.generator_ema {
            Some(average) => {
                if self.average_statistics_stale.load(Ordering::Acquire) {
                    self.refresh_average_statistics()?;
                }
                Ok(average)
            }
            None => Ok(&self.generator),
        }
    }

    /// Measures the batch-norm statistics of the moving average of G on its own activations
    /// ("standing statistics", Brock et al. 2019): its weights are an average of G's, so
    /// neither G's statistics nor their average describe what its layers see. Runs
    /// [`STANDING_STATISTICS_BATCHES`] batches of latents from a fixed stream in training mode
    /// and keeps the mean of their batch statistics. Training never reads these statistics,
    /// so measuring them does not change how training continues. Does nothing without an
    /// average.
    pub fn refresh_average_statistics(&self) -> Result<()> {
        let (Some(average), Some(store)) = (&self.generator_ema, &self.ema_store) else {
            return Ok(());
        };
        let buffers: Vec<Var> = store.buffers().into_iter().map(|(_, v)| v).collect();
        let mut latents = TrainRng::new(STANDING_STATISTICS_SEED);
        let mut sums: Vec<Option<Tensor>> = vec![None; buffers.len()];
        for _ in 0..STANDING_STATISTICS_BATCHES {
            // From zero, one training-mode pass leaves running = m·batch: the batch statistics
            // come back exactly, whatever the statistics held before.
            for buffer in &buffers {
                buffer.set(&buffer.as_tensor().zeros_like()?)?;
            }
            let z = latents.normal((STANDING_STATISTICS_BATCH, self.latent_dim), &self.device)?;
            // A conditional average sees every class equally often.
            let classes = self.class_names.len().max(1);
            let labels: Vec<usize> = (0..STANDING_STATISTICS_BATCH).map(|i| i % classes).collect();
            let labels = self.labels_for(self.is_conditional().then_some(&labels[..]), labels.len())?;
            average.forward_labelled_t(&z, labels.as_ref(), true)?;
            for (buffer, sum) in buffers.iter().zip(&mut sums) {
                let batch = (buffer.as_tensor() / layers::BN_MOMENTUM)?;
                *sum = Some(match sum.take() {
                    Some(total) => (total + batch)?,
                    None => batch,
                });
            }
        }
        for (buffer, sum) in buffers.iter().zip(sums) {
            if let Some(sum) = sum {
                buffer.set(&(sum / STANDING_STATISTICS_BATCHES as f64)?)?;
            }
        }
        self.average_statistics_stale.store(false, Ordering::Release);
        Ok(())
    }

    /// Every store that a checkpoint holds, with its file stem: the four networks, then
    /// `generator_ema` when kept.
    pub fn saved_stores(&self) -> Vec<(&'static str, &ParamStore)> {
        let mut out: Vec<(&'static str, &ParamStore)> = NetworkKind::ALL
            .into_iter()
            .map(|kind| (kind.name(), self.store(kind)))
            .collect();
        if let Some(ema) = &self.ema_store {
            out.push((EMA_FILE_STEM, ema));
        }
        out
    }

    /// Moves the average of G one step towards G's current weights: `avg ← d·avg + (1−d)·G`
    /// for the parameters; its batch-norm statistics are measured afresh when it is next
    /// sampled from ([`Networks::sampler`]). Does nothing when no average is kept.
    pub fn update_generator_ema(&self, decay: f64) -> Result<()> {
        let Some(ema) = &self.ema_store else {
            return Ok(());
        };
        self.average_statistics_stale.store(true, Ordering::Release);
        let current = self.store(NetworkKind::Generator).trainable();
        for ((name, avg), (source_name, source)) in ema.trainable().into_iter().zip(current) {
            debug_assert_eq!(name, source_name, "G and its average are built from one config");
            let blended = ((avg.as_tensor() * decay)? + (source.as_tensor() * (1.0 - decay))?)?;
            avg.set(&blended)?;
        }
        Ok(())
    }
}
