//! Measures how close generated images are to real ones: SWD, checkerboard ratio, near
//! duplicates, pairwise-distance ratio, and with `--inception` FID and KID; with a checkpoint,
//! also the reconstruction error of the real images through x → E → G.
//!
//! ```sh
//! # a trained model against held-out real images (generates --n images)
//! cargo run --release --example evaluate -- --real ~/HAM10000/holdout --checkpoint runs/ham10000/checkpoint --n 1000
//! # two folders, with FID/KID (the weights file is never downloaded: point at it)
//! cargo run --release --example evaluate -- --real ~/real --fake runs/generated/images \
//!     --inception ../shared/models/inception-2015-12-05-fid.safetensors --real-stats real-stats.safetensors
//! # one JSON line instead of a table
//! cargo run --release --example evaluate -- --real ~/real --fake ~/fake --json
//! ```

use std::path::{Path, PathBuf};

use aegan::candle_core::{Device, Tensor};
use aegan::data::{load_folder, LoadOptions, Resample};
use aegan::metrics::{self, FeatureStats, FidInception};
use aegan::rng::TrainRng;
use aegan::{checkpoint, AeganError, DeviceChoice};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Evaluate generated images against real ones (SWD, checkerboards, mode collapse, FID/KID)")]
struct Args {
    /// Folder of real images (searched recursively).
    #[arg(long)]
    real: PathBuf,
    /// Use at most this many real images, evenly spaced through the folder's sorted files.
    #[arg(long)]
    max_real: Option<usize>,
    /// Folder of generated images.
    #[arg(long, conflicts_with = "checkpoint", required_unless_present = "checkpoint")]
    fake: Option<PathBuf>,
    /// Checkpoint folder to generate images from (a run's `checkpoint/` or one snapshot).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// With --checkpoint: sample from G itself, not from its moving average.
    #[arg(long, requires = "checkpoint")]
    no_ema: bool,
    /// Number of images to generate with --checkpoint.
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// FID Inception-v3 weights (`inception-2015-12-05-fid.safetensors`); without it, no FID/KID.
    #[arg(long)]
    inception: Option<PathBuf>,
    /// Cache of the real images' Inception statistics: read if present, else written.
    #[arg(long, requires = "inception")]
    real_stats: Option<PathBuf>,
    /// Image side (default: the checkpoint's image size, else 32).
    #[arg(long)]
    size: Option<usize>,
    /// Resize with nearest neighbour for integer factors (pixel art, as the sprites example).
    #[arg(long)]
    pixel_art: bool,
    /// Seed of the latents and of every metric's random choices.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    json: bool,
    /// Compute device: auto, cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "auto")]
    device: String,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> aegan::Result<()> {
    let device = aegan::select_device(args.device.parse::<DeviceChoice>()?)?;
    let networks = match &args.checkpoint {
        Some(dir) => {
            let (config, mut nets) = checkpoint::load_networks(dir, &device)?;
            if args.no_ema {
                nets.generator_ema = None;
            }
            Some((config, nets))
        }
        None => None,
    };
    let size = match (&networks, args.size) {
        (Some((config, _)), Some(size)) if size != config.image_size => {
            return Err(AeganError::BadInput {
                what: "--size",
                expected: format!("the checkpoint's image size {} (or no --size)", config.image_size),
                found: vec![size],
            })
        }
        (Some((config, _)), _) => config.image_size,
        (None, size) => size.unwrap_or(32),
    };
    let real = load_images(&args.real, size, args.pixel_art, args.max_real)?;
    let fake = match (&args.fake, &networks) {
        (Some(dir), _) => load_images(dir, size, args.pixel_art, None)?,
        (None, Some((config, nets))) => {
            let z = TrainRng::new(args.seed).normal((args.n, config.latent_dim), &device)?;
            aegan::metrics::generate(nets, &z)?
        }
        (None, None) => {
            return Err(AeganError::BadInput {
                what: "arguments",
                expected: "--fake DIR or --checkpoint DIR".into(),
                found: vec![],
            })
        }
    };

    let inception = match &args.inception {
        Some(path) => Some(FidInception::load(path, &device)?),
        None => None,
    };
    let mut report = metrics::evaluate(&real, &fake, None, args.seed)?;
    if let Some(net) = &inception {
        let real_stats = real_statistics(net, &real, args.real_stats.as_deref())?;
        let fake_features = net.features(&fake)?;
        report.fid = Some(metrics::fid(
            &real_stats.0,
            &FeatureStats::from_features(&fake_features)?,
        )?);
        report.kid = match &real_stats.1 {
            Some(real_features) => Some(metrics::kid(
                real_features,
                &fake_features,
                metrics::fid::KID_SUBSET_SIZE,
                metrics::fid::KID_SUBSETS,
                args.seed,
            )?),
            None => None,
        };
    }
    if let Some((_, nets)) = &networks {
        report.reconstruction = Some(metrics::reconstruction_error(nets, &real)?);
    }

    if args.json {
        println!("{}", report.to_json_line());
    } else {
        print!("{report}");
        if inception.is_some() && report.kid.is_none() {
            println!("(KID needs the real images' features: not available from cached statistics)");
        }
    }
    Ok(())
}

/// Every image of a folder at `size`, as one `(N, 3, size, size)` tensor on the CPU.
/// At most `max` of them (evenly spaced) when `max` is given.
fn load_images(dir: &Path, size: usize, pixel_art: bool, max: Option<usize>) -> aegan::Result<Tensor> {
    let mut options = LoadOptions::new(size);
    if pixel_art {
        options.resample = Resample::PixelArt;
    }
    let set = load_folder(dir, &options)?.to_image_set(format!("images from {}", dir.display()))?;
    match max {
        Some(n) => aegan::metrics::evenly_spaced(&set, n),
        None => set.to_tensor(&Device::Cpu),
    }
}

/// The real set's Inception statistics (from the cache when there is one) and, when computed
/// here, its features (KID needs them).
fn real_statistics(
    net: &FidInception,
    real: &Tensor,
    cache: Option<&Path>,
) -> aegan::Result<(FeatureStats, Option<Tensor>)> {
    if let Some(path) = cache.filter(|p| p.is_file()) {
        let stats = FeatureStats::load(path)?;
        if stats.n == real.dim(0)? {
            eprintln!("real statistics read from {}", path.display());
            return Ok((stats, None));
        }
        eprintln!(
            "{} holds statistics of {} images, not {}: recomputing",
            path.display(),
            stats.n,
            real.dim(0)?
        );
    }
    let features = net.features(real)?;
    let stats = FeatureStats::from_features(&features)?;
    if let Some(path) = cache {
        stats.save(path)?;
        eprintln!("real statistics written to {}", path.display());
    }
    Ok((stats, Some(features)))
}
