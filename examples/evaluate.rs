//! Measures how close generated images are to real ones: SWD, checkerboard ratio, near
//! duplicates, pairwise-distance ratio, and with `--inception` FID and KID; with a checkpoint,
//! also the reconstruction error of the real images through x → E → G.
//!
//! ```sh
//! # a trained model against held-out real images (generates --n images)
//! cargo run --release --example evaluate -- --real ~/HAM10000/holdout --checkpoint runs/ham10000/checkpoint --n 1000
//! # two folders, with FID/KID (the weights file is never downloaded: point at it)
//! cargo run --release --example evaluate -- --real ~/real --fake runs/generated/images \
//!     --inception ../shared/models/inception-2015-12-05-fid.safetensors
//! # one JSON line instead of a table
//! cargo run --release --example evaluate -- --real ~/real --fake ~/fake --json
//! # a class-conditional model, class by class: KID/FID per diagnosis and class fidelity
//! cargo run --release --example evaluate -- --real ~/HAM10000 --ham-holdout 0.1 \
//!     --checkpoint runs/conditional/checkpoint --per-class --inception <weights>
//! ```
//!
//! A class-conditional checkpoint takes its classes from the real images: the diagnoses with
//! `--ham-holdout`, otherwise the folder's categories (sub-folders or `<category>__` file-name
//! prefixes, as the sprites example reads them), which must be the checkpoint's classes. Its
//! images are generated with the classes of the real images they are compared with, in turn.

use std::path::{Path, PathBuf};

use aegan::candle_core::{Device, Tensor};
use aegan::data::ham10000::{self, Ham10000};
use aegan::data::{load_folder, ImageSet, LoadOptions, LoadedImages, Resample};
use aegan::metrics::classifier::{Classifier, ClassifierConfig};
use aegan::metrics::{self, FidInception};
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
    /// --real is a HAM10000 folder: split it by lesion as the ham10000 example does with
    /// `--holdout F`, compare with the training part, and measure reconstruction on the
    /// held-out lesions.
    #[arg(long)]
    ham_holdout: Option<f64>,
    /// Real images the model never saw (e.g. held-out lesions): adds the memorisation check
    /// (generated images' distance to their nearest --real image, searched among all of them
    /// whatever --max-real says, against these images'; and the NN1/NN2 copy test) and, with a
    /// checkpoint, membership inference (training against these images by Dx's logit and by
    /// the reconstruction error).
    #[arg(long, conflicts_with = "ham_holdout")]
    held_out: Option<PathBuf>,
    /// Write the most copy-like pairs of the memorisation check here (PNG): each row a generated
    /// image beside its nearest training image, lowest NN1/NN2 ratio first.
    #[arg(long)]
    closest_pairs: Option<PathBuf>,
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
    /// Do not read or write the cache of the real images' Inception features (kept in
    /// `$AEGAN_CACHE_DIR`, else `~/.cache/aegan`, under a fingerprint of the pixels).
    #[arg(long, requires = "inception")]
    no_cache: bool,
    /// Image side (default: the checkpoint's image size, else 32).
    #[arg(long)]
    size: Option<usize>,
    /// Resize with nearest neighbour for integer factors (pixel art, as the sprites example).
    #[arg(long)]
    pixel_art: bool,
    /// Seed of the latents and of every metric's random choices.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// With a class-conditional --checkpoint: also measure each class on its own
    /// (--per-class-n images of each against the class's real images: KID, FID for classes of
    /// 500 images or more, and class fidelity by a classifier trained on the real images,
    /// beside its recall on held-out images when there are any).
    #[arg(long, requires = "checkpoint")]
    per_class: bool,
    /// Images generated per class with --per-class.
    #[arg(long, default_value_t = 500, requires = "per_class")]
    per_class_n: usize,
    /// Training steps of the classifier of --per-class.
    #[arg(long, default_value_t = 600, requires = "per_class")]
    classifier_steps: u64,
    /// With --per-class and held-out images: redraw up to this many held-out images of other
    /// classes as each class (the model's counterfactuals), and report the share the
    /// classifier assigns to the class asked for and how much the skin around the lesion (the
    /// outer eighth of the image) changed.
    #[arg(long, requires = "per_class")]
    counterfactuals: Option<usize>,
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

/// Below this many images per set, FID and KID mostly measure the sample size.
const FID_MIN_IMAGES: usize = 500;
/// Below this many images per set, no metric here means much.
const MIN_IMAGES: usize = 50;

fn run(args: Args) -> aegan::Result<()> {
    // Before the first candle operation: candle sizes its elementwise pool once.
    aegan::serial_candle_elementwise();
    if args.n == 0 {
        return Err(AeganError::option("--n", 0, "must be at least 1"));
    }
    if args.max_real == Some(0) {
        return Err(AeganError::option("--max-real", 0, "must be at least 1"));
    }
    if let Some(size) = args.size.filter(|s| !(16..=1024).contains(s)) {
        return Err(AeganError::option(
            "--size",
            size,
            "must be from 16 to 1024 pixels",
        ));
    }
    if let Some(f) = args.ham_holdout.filter(|f| !(0.0..1.0).contains(f)) {
        return Err(AeganError::option(
            "--ham-holdout",
            f,
            "must be a fraction from 0 (inclusive) to 1 (exclusive)",
        ));
    }
    let device = aegan::select_device(args.device.parse::<DeviceChoice>()?)?;
    let networks = match &args.checkpoint {
        Some(dir) => {
            let loaded =
                checkpoint::load_networks_reporting(dir, &device).map_err(naming("--checkpoint", dir))?;
            for (snapshot, error) in &loaded.skipped {
                eprintln!("warning: skipped snapshot {}: {error}", snapshot.display());
            }
            let (config, mut nets) = loaded.value;
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
    let conditional = networks.as_ref().is_some_and(|(_, nets)| nets.is_conditional());
    if args.per_class && !conditional {
        return Err(AeganError::option(
            "--per-class",
            "on",
            "needs a class-conditional --checkpoint (trained with --conditional)",
        ));
    }
    let mut labelled: Option<Labelled> = None;
    // `train`: every training image (the memorisation check searches them all); `real`: the
    // --max-real of them that the distribution metrics compare with.
    let (train, real, held_out) = match args.ham_holdout {
        Some(fraction) => {
            let mut set = Ham10000::load(&args.real, None, None, &LoadOptions::new(size))
                .map_err(naming("--real", &args.real))?;
            set.images = set.labelled()?.without_empty_classes();
            let (train, held) = set.split_by_lesion(fraction, ham10000::SPLIT_SEED);
            if train.is_empty() {
                return Err(AeganError::option(
                    "--ham-holdout",
                    fraction,
                    format!(
                        "holds out all {} images; use a smaller fraction",
                        set.records.len()
                    ),
                ));
            }
            let train = set.subset(&train)?.images;
            let held = set.subset(&held)?.images;
            let real_count = args.max_real.unwrap_or(train.len());
            labelled = Some(Labelled {
                real_labels: metrics::evenly_spaced_labels(&train, real_count).unwrap_or_default(),
                held_labels: held.labels().unwrap_or_default().to_vec(),
                train: train.clone(),
                held: Some(held.clone()),
            });
            eprintln!(
                "lesion-level split: comparing with training images, reconstructing {} held-out images",
                held.len()
            );
            let real = metrics::evenly_spaced(&train, args.max_real.unwrap_or(train.len()))?;
            let held = (!held.is_empty())
                .then(|| held.to_tensor(&Device::Cpu))
                .transpose()?;
            (train, real, held)
        }
        // A conditional model trained on a labelled folder (the sprites example's categories):
        // the same labelling of --real (and --held-out) gives the classes.
        None if conditional => {
            let classes = networks.as_ref().map_or(&[][..], |(_, nets)| nets.class_names());
            let train = load_labelled("--real", &args.real, size, args.pixel_art, classes)?;
            let held = match &args.held_out {
                Some(dir) => Some(load_labelled("--held-out", dir, size, args.pixel_art, classes)?),
                None => None,
            };
            let real_count = args.max_real.unwrap_or(train.len());
            let real = metrics::evenly_spaced(&train, real_count)?;
            let held_tensor = held.as_ref().map(|h| h.to_tensor(&Device::Cpu)).transpose()?;
            labelled = Some(Labelled {
                real_labels: metrics::evenly_spaced_labels(&train, real_count).unwrap_or_default(),
                held_labels: held
                    .as_ref()
                    .and_then(|h| h.labels())
                    .unwrap_or_default()
                    .to_vec(),
                train: train.clone(),
                held,
            });
            (train, real, held_tensor)
        }
        None => {
            let train = load_set("--real", &args.real, size, args.pixel_art)?;
            let real = metrics::evenly_spaced(&train, args.max_real.unwrap_or(train.len()))
                .map_err(naming("--real", &args.real))?;
            let held = match &args.held_out {
                Some(dir) => Some(load_images("--held-out", dir, size, args.pixel_art, None)?),
                None => None,
            };
            (train, real, held)
        }
    };
    let fake = match (&args.fake, &networks) {
        (Some(dir), _) => load_images("--fake", dir, size, args.pixel_art, None)?,
        (None, Some((config, nets))) => {
            let model = aegan::Model::new(config.clone(), nets.clone());
            match labelled.as_ref().filter(|_| conditional) {
                // The classes of the real sample in turn: both sides hold the same mix.
                Some(l) => {
                    let labels: Vec<usize> = (0..args.n)
                        .map(|i| l.real_labels[i % l.real_labels.len()])
                        .collect();
                    model.generate_labelled(&model.sample_latents(args.n, args.seed)?, &labels)?
                }
                None => model.sample(args.n, args.seed)?,
            }
            .to_device(&Device::Cpu)?
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
    let (n_real, n_fake) = (real.dim(0)?, fake.dim(0)?);
    if n_real.min(n_fake) < MIN_IMAGES {
        eprintln!(
            "warning: {n_real} real and {n_fake} generated images: under {MIN_IMAGES} per set the metrics below are mostly noise"
        );
    }
    if inception.is_some() && n_real.min(n_fake) < FID_MIN_IMAGES {
        eprintln!(
            "warning: FID and KID of {n_real} real and {n_fake} generated images: under {FID_MIN_IMAGES} per set they mostly measure the sample size (FID is biased upward); use 2,000 or more to compare models"
        );
    }
    let mut report = metrics::evaluate(&real, &fake, None, args.seed)?;
    let cache = if args.no_cache {
        None
    } else {
        aegan::data::folder::default_cache_dir()
    };
    let mut features = None;
    if let Some(net) = &inception {
        let real_features = metrics::cached_features(net, &real, cache.as_deref())?;
        let fake_features = net.features(&fake)?;
        report.add_feature_scores(&real_features, &fake_features, args.seed)?;
        features = Some((net, real_features, fake_features));
    }
    if let Some(held) = &held_out {
        let chunks = training_chunks(&train).map(|c| c?.to_tensor(&Device::Cpu));
        let pixels = metrics::memorisation_over(chunks, &fake, held)?;
        if let Some(path) = &args.closest_pairs {
            save_copy_like_pairs(&pixels, &train, &fake, path)?;
            eprintln!(
                "wrote {} (generated | nearest training image, lowest NN1/NN2 ratio first)",
                path.display()
            );
        }
        report.memorisation_pixels = Some(pixels);
        if let Some((net, _, fake_features)) = &features {
            eprintln!(
                "memorisation: Inception features of all {} training images (computed once, then cached)",
                train.len()
            );
            let held_features = metrics::cached_features(net, held, cache.as_deref())?;
            let train_features = training_chunks(&train).map(|chunk| {
                metrics::cached_features(net, &chunk?.to_tensor(&Device::Cpu)?, cache.as_deref())
            });
            report.memorisation_features = Some(metrics::memorisation_over(
                train_features,
                fake_features,
                &held_features,
            )?);
        }
        if let Some((_, nets)) = &networks {
            // As many training images as held-out ones, evenly spaced: balanced sets.
            let count = held.dim(0)?;
            let members = metrics::evenly_spaced(&train, count)?;
            let labels = labelled.as_ref().filter(|_| conditional);
            let member_labels = labels.and_then(|_| metrics::evenly_spaced_labels(&train, count));
            report.membership = Some(metrics::membership_inference(
                nets,
                &members,
                member_labels.as_deref(),
                held,
                labels.map(|l| l.held_labels.as_slice()),
            )?);
        }
    } else if args.closest_pairs.is_some() {
        eprintln!("warning: --closest-pairs needs held-out images (--held-out or --ham-holdout); no picture written");
    }
    if let Some((_, nets)) = &networks {
        if held_out.is_none() {
            eprintln!(
                "no held-out images (--held-out or --ham-holdout): reconstruction is measured on the --real images, which the model may have trained on"
            );
        }
        let target = held_out.as_ref().unwrap_or(&real).to_device(&device)?;
        let target = &target;
        let labels = labelled
            .as_ref()
            .filter(|_| conditional)
            .map(|l| match &held_out {
                Some(_) => l.held_labels.as_slice(),
                None => l.real_labels.as_slice(),
            });
        report.reconstruction = Some(metrics::reconstruction_error(nets, target, labels)?);
    }
    let mut counterfactuals = None;
    let per_class = match (&networks, &labelled) {
        (Some((config, nets)), Some(l)) if args.per_class => {
            let model = aegan::Model::new(config.clone(), nets.clone());
            eprintln!(
                "per class: training the classifier on {} images ({} steps), then {} images per class",
                l.train.len(),
                args.classifier_steps,
                args.per_class_n
            );
            let classifier_config = ClassifierConfig {
                steps: args.classifier_steps,
                seed: args.seed,
                ..ClassifierConfig::default()
            };
            let classifier = Classifier::train(&l.train, &classifier_config, &device)?;
            if let Some(count) = args.counterfactuals {
                let Some(held) = &l.held else {
                    return Err(AeganError::option(
                        "--counterfactuals",
                        count,
                        "needs held-out images (--ham-holdout or --held-out with labels) to redraw",
                    ));
                };
                eprintln!("counterfactuals: redrawing up to {count} held-out images as each class");
                counterfactuals = Some(metrics::counterfactual_quality(&model, held, &classifier, count)?);
            }
            let reference = metrics::ClassReference {
                real: &l.train,
                held_out: l.held.as_ref(),
                inception: inception.as_ref(),
                classifier: Some(&classifier),
                cache_dir: cache.as_deref(),
            };
            let max_real = args.max_real.unwrap_or(usize::MAX);
            Some(metrics::per_class_quality(
                &model,
                &reference,
                args.per_class_n,
                max_real,
                args.seed,
            )?)
        }
        _ => None,
    };

    if args.json {
        println!("{}", report.to_json_line());
        if let Some(classes) = &per_class {
            for class in classes {
                println!("{}", serde_json::to_string(class).unwrap_or_default());
            }
        }
        for edited in counterfactuals.iter().flatten() {
            let line = serde_json::json!({ "counterfactual": edited });
            println!("{line}");
        }
    } else {
        print!("{report}");
        if let Some(classes) = &per_class {
            println!("\n{}", metrics::PerClassTable(classes));
        }
        if let Some(edited) = &counterfactuals {
            println!("\n{}", metrics::CounterfactualTable(edited));
        }
    }
    Ok(())
}

/// The labelled real images, kept for a class-conditional model: the HAM10000 split, or a
/// labelled folder (and held-out folder).
struct Labelled {
    train: ImageSet,
    held: Option<ImageSet>,
    /// The classes of the real sample compared with (evenly spaced through `train`).
    real_labels: Vec<usize>,
    held_labels: Vec<usize>,
}

/// The images of the folder given as `option`, decoded at `size` (nearest-neighbour for pixel
/// art), with a warning if any had another size; errors name `option` and the folder.
fn read_folder(option: &str, dir: &Path, size: usize, pixel_art: bool) -> aegan::Result<LoadedImages> {
    let mut options = LoadOptions::new(size);
    if pixel_art {
        options.resample = Resample::PixelArt;
    }
    // The warning below covers enlarged images too, in terms of the metrics.
    options.warn_enlarged = false;
    let loaded = load_folder(dir, &options).map_err(naming(option, dir))?;
    warn_if_resized(option, dir, &loaded, size);
    Ok(loaded)
}

/// The training images in consecutive chunks of [`metrics::memorisation::TRAINING_CHUNK`]:
/// searched whole, held as f32 tensors one chunk at a time.
fn training_chunks(set: &ImageSet) -> impl Iterator<Item = aegan::Result<ImageSet>> + '_ {
    let chunk = metrics::memorisation::TRAINING_CHUNK;
    (0..set.len())
        .step_by(chunk)
        .map(move |start| set.select(&(start..set.len().min(start + chunk)).collect::<Vec<_>>()))
}

/// Every image of a folder at `size`, as a set. Errors name `option` and the folder; images of
/// another size than `size` are resized, with a warning saying so.
fn load_set(option: &str, dir: &Path, size: usize, pixel_art: bool) -> aegan::Result<ImageSet> {
    read_folder(option, dir, size, pixel_art)?
        .to_image_set(format!("images from {}", dir.display()))
        .map_err(naming(option, dir))
}

/// Every image of a folder at `size`, as one `(N, 3, size, size)` tensor on the CPU.
/// At most `max` of them (evenly spaced) when `max` is given. Errors name `option` and the
/// folder; images of another size than `size` are resized, with a warning saying so.
fn load_images(
    option: &str,
    dir: &Path,
    size: usize,
    pixel_art: bool,
    max: Option<usize>,
) -> aegan::Result<Tensor> {
    let set = load_set(option, dir, size, pixel_art)?;
    match max {
        Some(n) => aegan::metrics::evenly_spaced(&set, n),
        None => set.to_tensor(&Device::Cpu),
    }
    .map_err(naming(option, dir))
}

/// The images of a folder labelled by a conditional model's `classes`, from where each lies
/// (sub-folders and `__` name parts, as the sprites example labels them): a file that fits
/// none of them is an error naming it, the folder and the option, with a hint for HAM10000.
fn load_labelled(
    option: &str,
    dir: &Path,
    size: usize,
    pixel_art: bool,
    classes: &[String],
) -> aegan::Result<ImageSet> {
    read_folder(option, dir, size, pixel_art)?
        .to_labelled_set_as(dir, classes, format!("images from {}", dir.display()))
        .map_err(|e| {
            e.context(format!(
                "{option} {} (for a HAM10000 model pass --ham-holdout)",
                dir.display()
            ))
        })
}

/// Adds the option and the folder it named to an error about that folder.
fn naming<'a>(option: &'a str, dir: &'a Path) -> impl Fn(AeganError) -> AeganError + 'a {
    move |e| e.context(format!("{option} {}", dir.display()))
}

/// The most copy-like pairs of a memorisation check (lowest NN1/NN2 ratio first) as one grid:
/// each row a generated image beside its nearest training image.
fn save_copy_like_pairs(
    check: &metrics::Memorisation,
    train: &ImageSet,
    fake: &Tensor,
    path: &Path,
) -> aegan::Result<()> {
    let nearest: Vec<usize> = check.most_copy_like.iter().map(|&(_, t, _)| t).collect();
    let nearest = train.batch(&nearest, &Device::Cpu)?;
    let mut tiles = Vec::with_capacity(2 * nearest.dim(0)?);
    for (row, &(generated, _, _)) in check.most_copy_like.iter().enumerate() {
        tiles.push(fake.get(generated)?);
        tiles.push(nearest.get(row)?);
    }
    aegan::viz::save_grid(&Tensor::stack(&tiles, 0)?, 2, 3, path)
}

/// Warns when files were not `size`×`size`: resized images are not what the model was
/// trained or asked to make, and the metrics measure the resizing too. From the loader's count,
/// so no file is read twice.
fn warn_if_resized(option: &str, dir: &Path, loaded: &LoadedImages, size: usize) {
    if let Some((w, h)) = loaded.resized_example() {
        eprintln!(
            "warning: {option} {}: {} of {} images are not {size}×{size} (e.g. {w}×{h}); they were cropped and resized to {size}×{size}, which changes the metrics",
            dir.display(),
            loaded.resized(),
            loaded.images.len()
        );
    }
}
