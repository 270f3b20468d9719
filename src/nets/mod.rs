//! The four AEGAN networks and [`Networks`], which builds them together with their tensors.

mod discriminator;
mod encoder;
mod generator;
mod growing;
pub(crate) mod layers;

pub use discriminator::{ImageDiscriminator, LatentDiscriminator};
pub use encoder::Encoder;
pub use generator::Generator;

use candle_core::Device;

use crate::config::AeganConfig;
use crate::error::Result;
use crate::params::{fnv1a, ParamStore};
use crate::progressive::Growth;

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
    /// ([`AeganConfig::generator_ema`], [`AeganConfig::generator_average`]);
    /// [`Networks::sampler`] picks it over G.
    pub generator_ema: Option<Generator>,
    stores: [ParamStore; 4],
    ema_store: Option<ParamStore>,
    latent_dim: usize,
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
            latent_dim: config.latent_dim,
            device: device.clone(),
        })
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
    pub fn sampler(&self) -> &Generator {
        self.generator_ema.as_ref().unwrap_or(&self.generator)
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
    /// for parameters and batch-norm statistics alike. Does nothing when no average is kept.
    pub fn update_generator_ema(&self, decay: f64) -> Result<()> {
        let Some(ema) = &self.ema_store else {
            return Ok(());
        };
        let current = self.store(NetworkKind::Generator).all();
        for ((name, avg), (source_name, source)) in ema.all().into_iter().zip(current) {
            debug_assert_eq!(name, source_name, "G and its average are built from one config");
            let blended = ((avg.as_tensor() * decay)? + (source.as_tensor() * (1.0 - decay))?)?;
            avg.set(&blended)?;
        }
        Ok(())
    }
}
