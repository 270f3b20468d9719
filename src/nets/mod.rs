//! The four AEGAN networks and [`Networks`], which builds them together with their tensors.

mod discriminator;
mod encoder;
mod generator;
pub(crate) mod layers;

pub use discriminator::{ImageDiscriminator, LatentDiscriminator};
pub use encoder::Encoder;
pub use generator::Generator;

use candle_core::Device;

use crate::config::AeganConfig;
use crate::error::Result;
use crate::params::{fnv1a, ParamStore};

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
    stores: [ParamStore; 4],
    latent_dim: usize,
    device: Device,
}

impl Networks {
    /// Builds the four networks on `device`, initialised from `config.seed`. The config is
    /// validated first.
    pub fn new(config: &AeganConfig, device: &Device) -> Result<Self> {
        config.validate()?;
        let stores =
            NetworkKind::ALL.map(|kind| ParamStore::new(config.seed ^ fnv1a(kind.name().as_bytes())));
        let vb = |kind: NetworkKind| stores[kind.index()].var_builder(device);
        Ok(Networks {
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
}
