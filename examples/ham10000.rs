//! Trains an AEGAN on skin-lesion images: the HAM10000 dataset, any folder of images, or (with
//! no `--data`) aegan's built-in synthetic lesions.
//!
//! ```sh
//! cargo run --release --example ham10000                                   # synthetic lesions, 1,100 steps (about 3 minutes on 2 cores)
//! cargo run --release --example ham10000 -- --data ~/HAM10000 --epochs 10  # the real dataset
//! cargo run --release --example ham10000 -- --data ~/HAM10000 --dx mel,bcc # only some diagnoses
//! cargo run --release --example ham10000 -- --data ~/HAM10000 --conditional # one model, a chosen diagnosis per image
//! cargo run --release --example ham10000 -- --data ~/HAM10000 --resume     # continue
//! ```

mod common;

use std::path::PathBuf;

use aegan::config::{ConditioningConfig, ConditioningTransition};
use aegan::data::ham10000::{self, Ham10000, DIAGNOSES};
use aegan::data::{load_folder, synthetic, Augment, LoadOptions};
use clap::Parser;
use common::{DefaultLength, TrainArgs};

#[derive(Parser, Debug)]
#[command(
    about = "Train an AEGAN on dermoscopy images (HAM10000, an image folder, or built-in synthetic lesions)"
)]
struct Args {
    /// The HAM10000 folder (metadata CSV + images anywhere below), or any folder of images.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The metadata CSV, when it is not in --data or its parent.
    #[arg(long)]
    meta: Option<PathBuf>,
    /// Keep only these diagnoses, comma-separated (akiec, bcc, bkl, df, mel, nv, vasc).
    #[arg(long, value_delimiter = ',')]
    dx: Option<Vec<String>>,
    /// Fraction of lesions held out from training (lesion-level split; 0 trains on all).
    #[arg(long, default_value_t = 0.1)]
    holdout: f64,
    /// Make the diagnosis a condition of the model (classes from the metadata's `dx`):
    /// `generate --dx mel` then draws melanomas. The condition enters gradually, from
    /// --transition's first number of images shown over its second.
    #[arg(long)]
    conditional: bool,
    /// With --conditional: draw each batch's images class-balanced (every diagnosis equally
    /// often, however rare) instead of in shuffled epochs.
    #[arg(long, requires = "conditional")]
    balanced: bool,
    /// With --conditional: START,LENGTH in images shown: the condition's strength rises from 0
    /// to 1 between START and START + LENGTH (0,1 conditions fully from the start).
    #[arg(long, requires = "conditional", value_delimiter = ',', default_values_t = [32_000, 64_000])]
    transition: Vec<u64>,
    /// With --conditional: weight of the auxiliary classifier on Dx that tells G which
    /// diagnosis an image looks like (0: the projection discriminator alone).
    #[arg(long, requires = "conditional", allow_negative_numbers = true, default_value_t = ConditioningConfig::DEFAULT_CLASS_LOSS_WEIGHT)]
    class_loss: f64,
    /// Don't cache decoded images on disk.
    #[arg(long)]
    no_cache: bool,
    #[command(flatten)]
    train: TrainArgs,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(mut args: Args) -> aegan::Result<()> {
    if !(0.0..1.0).contains(&args.holdout) {
        return Err(aegan::AeganError::option(
            "--holdout",
            args.holdout,
            "must be a fraction from 0 (inclusive) to 1 (exclusive)",
        ));
    }
    let (start, device) = common::start(&args.train, "runs/ham10000", "lean")?;
    let size = start.image_size();
    let conditional = start.is_conditional(args.conditional)?;
    let Some(dir) = &args.data else {
        if conditional {
            return Err(aegan::AeganError::option(
                "--conditional",
                "on",
                "needs --data with the HAM10000 metadata (the diagnoses are the classes)",
            ));
        }
        println!("no --data given: training on built-in SYNTHETIC lesions (procedurally drawn, not real dermoscopy).");
        println!("For the real images, download HAM10000 (Tschandl et al. 2018, CC BY-NC 4.0; e.g. from the");
        println!(
            "ISIC archive or Harvard Dataverse, doi:10.7910/DVN/DBW86T), unpack it and pass --data <folder>."
        );
        let data = synthetic::lesions(2048, size, args.train.seed.unwrap_or(0));
        let start = first_run_settings(start, &args.train);
        // Measured every 400 steps rather than every epoch of 64: the first run stays under
        // three minutes on two cores.
        args.train.eval_every.get_or_insert(400);
        common::train(
            &args.train,
            start,
            &device,
            (&data, common::DataSource::Synthetic),
            None,
            Augment::Dihedral,
            "runs/ham10000",
            DefaultLength::Steps(1100),
        )?;
        let out = args.train.out_dir("runs/ham10000");
        println!();
        println!(
            "Look at {}: lesion-like blobs on skin drawn by G from random latents (synthetic",
            out.join("samples.png").display()
        );
        println!(
            "training images, left, and their reconstructions, right, are in {}).",
            out.join("reconstructions.png").display()
        );
        println!("To train on real dermoscopy images (HAM10000, see above), for an hour on this CPU:");
        println!("  cargo run --release --example ham10000 -- --data <HAM10000 folder> --minutes 60");
        return Ok(());
    };
    let mut options = LoadOptions::new(size);
    if args.no_cache {
        options.cache_dir = None;
    }
    let has_metadata = args.meta.is_some() || ham10000::find_metadata(dir).is_ok();
    let (data, held_out) = if has_metadata {
        let mut set = Ham10000::load(dir, args.meta.as_deref(), args.dx.as_deref(), &options)?;
        if conditional {
            set.images = set.labelled()?.without_empty_classes();
            println!(
                "conditional on the diagnosis: {}",
                set.images.class_names().join(", ")
            );
        }
        println!("metadata: {}", set.metadata.display());
        for (dx, count) in set.counts_by_dx() {
            let meaning = DIAGNOSES
                .iter()
                .find(|(code, _)| *code == dx)
                .map(|(_, m)| *m)
                .unwrap_or("");
            println!("  {dx:>6}: {count:>5}  {meaning}");
        }
        let (train, held) = set.split_by_lesion(args.holdout, ham10000::SPLIT_SEED);
        if train.is_empty() {
            return Err(aegan::AeganError::option(
                "--holdout",
                args.holdout,
                format!(
                    "holds out all {} images and leaves none to train on; use a smaller fraction",
                    set.records.len()
                ),
            ));
        }
        println!(
            "lesion-level split: {} training images, {} held out (no lesion on both sides)",
            train.len(),
            held.len()
        );
        (set.subset(&train)?.images, Some(set.subset(&held)?.images))
    } else {
        if conditional {
            return Err(aegan::AeganError::option(
                "--conditional",
                "on",
                format!(
                    "needs the HAM10000 metadata CSV (none found under {}; pass --meta)",
                    dir.display()
                ),
            ));
        }
        if args.dx.is_some() {
            return Err(aegan::AeganError::Csv {
                path: dir.clone(),
                line: None,
                reason: "--dx needs a metadata CSV (none found; pass --meta)".into(),
            });
        }
        println!(
            "no metadata CSV found: training on every image under {}",
            dir.display()
        );
        let images = load_folder(dir, &options)?.to_image_set(format!("images from {}", dir.display()))?;
        (images, None)
    };
    let start = match start {
        common::Start::New(mut config) if args.conditional => {
            let mut conditioning = ConditioningConfig::new(data.class_names().to_vec());
            conditioning.balanced_batches = args.balanced;
            if !(args.class_loss.is_finite() && args.class_loss >= 0.0) {
                return Err(aegan::AeganError::option(
                    "--class-loss",
                    args.class_loss,
                    "must be a finite number ≥ 0 (0: no auxiliary classifier)",
                ));
            }
            conditioning.class_loss_weight = args.class_loss;
            let [start_images, length_images] = args.transition[..] else {
                return Err(aegan::AeganError::option(
                    "--transition",
                    format!("{:?}", args.transition),
                    "must be two numbers START,LENGTH",
                ));
            };
            if length_images == 0 {
                return Err(aegan::AeganError::option(
                    "--transition",
                    "LENGTH 0",
                    "LENGTH must be at least 1",
                ));
            }
            conditioning.transition = Some(ConditioningTransition {
                start_images,
                length_images,
            });
            config.conditioning = Some(conditioning);
            common::Start::New(config)
        }
        other => other,
    };
    common::train(
        &args.train,
        start,
        &device,
        (&data, common::DataSource::Folder(dir.clone())),
        held_out.as_ref(),
        Augment::Dihedral,
        "runs/ham10000",
        DefaultLength::Epochs(10.0),
    )
}

/// The first run (synthetic lesions, no --config or --preset) weights the adversarial terms
/// more (images 0.3, latents 1.0 instead of 0.1 and 0.1), so that samples from the prior
/// take shape within its 1,100 steps: with the defaults, encoded latents are still far from
/// N(0, I) after 1,500 steps and samples from the prior are coloured noise, while these
/// weights give lesion-like blobs by step 1,000. Real data keeps the measured defaults.
fn first_run_settings(start: common::Start, args: &TrainArgs) -> common::Start {
    match start {
        common::Start::New(mut config) if args.config.is_none() && args.preset.is_none() => {
            config.loss_weights.image_adversarial = 0.3;
            config.loss_weights.latent_adversarial = 1.0;
            println!("first-run settings: adversarial weights 0.3 (images) and 1.0 (latents), so that samples take shape quickly");
            common::Start::New(config)
        }
        other => other,
    }
}
