//! Uses a trained checkpoint: writes N generated images, a grid, and, given real images, a
//! reconstruction grid (x beside G(E(x))) and an interpolation strip between two real images
//! through the encoder.
//!
//! ```sh
//! cargo run --release --example generate -- --checkpoint runs/ham10000/checkpoint --n 64 --out runs/generated
//! cargo run --release --example generate -- --checkpoint runs/ham10000/checkpoint --real ~/HAM10000/HAM10000_images_part_1
//! cargo run --release --example generate -- --checkpoint runs/conditional/checkpoint --dx df --n 500  # one diagnosis
//! cargo run --release --example generate -- --checkpoint runs/sprites/checkpoint --truncation 0.7  # more typical, less varied
//! cargo run --release --example generate -- --checkpoint runs/conditional/checkpoint --edit my_lesions --from nv  # each lesion as every diagnosis
//! cargo run --release --example generate -- --checkpoint runs/conditional/checkpoint --class-path nv,mel --steps 8
//! cargo run --release --example generate -- --checkpoint runs/conditional/checkpoint --quiz runs/quiz --real ~/HAM10000 --n 40
//! ```
//!
//! `--edit`, `--class-path` and `--quiz` each do only their own work (no samples are written):
//! - `--edit <folder or image>` (conditional checkpoints): `edits.png`, one row per input
//!   image (the first 16): the input, its reconstruction as its own class (its HAM10000
//!   diagnosis, or `--from`), then the image drawn as each diagnosis (or the `--to` ones), and
//!   every image alone under `edits/`. With `--ham-holdout F` on a HAM10000 folder: 16 of the
//!   lesions that `ham10000 --holdout F` kept out of training, one diagnosis after another.
//! - `--class-path FROM,TO --steps S`: `class-path.png`, one row per image of `--edit` (or per
//!   sampled latent, the first `min(--n, 8)`), S images from FROM to TO.
//! - `--quiz <folder> --real <folder> --n N`: a practice page, `index.html`, of N/2 real and
//!   N/2 generated images mixed ("real or generated?", and "which diagnosis?" for a
//!   conditional model whose real images have HAM10000 metadata), with `answers.json`.
//!
//! A class-conditional checkpoint (trained with `ham10000 --conditional`, or `sprites` on
//! sprites with categories) writes `--n` images of each class into `images/<class>/` (a
//! sprite class `item/potion` into `images/item/potion/`, the layout the sprites example
//! reads) or of the `--dx` class alone, and a grid with one labelled row per class.

mod edit;
mod quiz;

use std::path::PathBuf;

use aegan::candle_core::Tensor;
use aegan::data::{load_folder, synthetic, LoadOptions};
use aegan::{viz, AeganError, DeviceChoice, Interpolation, Model};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser, Debug)]
#[command(about = "Generate, reconstruct and interpolate images with a trained AEGAN checkpoint")]
struct Args {
    /// Checkpoint folder (a training run's `checkpoint/`, or one `step-*` snapshot in it).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Number of images to generate (per class, for a class-conditional checkpoint).
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// The class to generate, for a class-conditional checkpoint (a HAM10000 diagnosis such as
    /// `mel` or `df`); default: every class.
    #[arg(long)]
    dx: Option<String>,
    /// Output folder.
    #[arg(long, default_value = "runs/generated")]
    out: PathBuf,
    /// A folder of real images for reconstructions and interpolation (default: built-in
    /// synthetic lesions, labelled as such).
    #[arg(long)]
    real: Option<PathBuf>,
    /// Seed of the latents.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Scale the latents by this factor, from 0 (exclusive) to 1 (the prior itself): samples
    /// nearer the prior's centre are more typical and less varied (the truncation trick).
    #[arg(long, default_value_t = 1.0)]
    truncation: f64,
    /// Steps of the interpolation strip between two real images.
    #[arg(long, default_value_t = 10)]
    interpolation_steps: usize,
    /// Interpolate along the great circle between the two latents (slerp) instead of the
    /// straight line.
    #[arg(long)]
    spherical: bool,
    /// Images per row of grid.png (it shows the first --n images, at most 64).
    #[arg(long, default_value_t = 8)]
    grid_columns: usize,
    /// Pixels per image pixel in the grids (nearest-neighbour enlargement).
    #[arg(long, default_value_t = 2)]
    grid_scale: usize,
    /// Compute device: auto, cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "auto")]
    device: String,
    /// Draw these real images (a folder, or one image) as other classes (conditional
    /// checkpoints): writes edits.png and edits/ only.
    #[arg(long)]
    edit: Option<PathBuf>,
    /// With --edit: the classes to draw the images as, comma-separated (default: every class).
    #[arg(long)]
    to: Option<String>,
    /// With --edit: the class the images are, when they have no HAM10000 metadata beside them.
    #[arg(long)]
    from: Option<String>,
    /// With --edit on a HAM10000 folder: only lesions that `ham10000 --holdout FRACTION` kept
    /// out of training (the same split), taken from each diagnosis in turn (at most 16).
    #[arg(long)]
    ham_holdout: Option<f64>,
    /// FROM,TO: a row of --steps images from class FROM to class TO for each --edit image (or
    /// sampled latent): writes class-path.png only.
    #[arg(long)]
    class_path: Option<String>,
    /// Images in each --class-path row.
    #[arg(long, default_value_t = 8)]
    steps: usize,
    /// Write a practice quiz page into this folder: --n images, half real (from --real), half
    /// generated, mixed.
    #[arg(long)]
    quiz: Option<PathBuf>,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Images generated and written per batch: memory stays bounded whatever --n is.
const CHUNK: usize = 64;

fn run(args: Args) -> aegan::Result<()> {
    // Before the first candle operation: candle sizes its elementwise pool once.
    aegan::serial_candle_elementwise();
    if args.n == 0 {
        return Err(AeganError::option("--n", 0, "must be at least 1"));
    }
    for (option, value) in [
        ("--grid-columns", args.grid_columns),
        ("--grid-scale", args.grid_scale),
    ] {
        if !(1..=64).contains(&value) {
            return Err(AeganError::option(option, value, "must be from 1 to 64"));
        }
    }
    if let Some(fraction) = args.ham_holdout {
        if args.edit.is_none() {
            return Err(AeganError::option(
                "--ham-holdout",
                fraction,
                "chooses which lesions --edit redraws; give --edit <HAM10000 folder> with it",
            ));
        }
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(AeganError::option(
                "--ham-holdout",
                fraction,
                "must be above 0 and below 1",
            ));
        }
    }
    if !(args.truncation > 0.0 && args.truncation <= 1.0) {
        return Err(AeganError::option(
            "--truncation",
            args.truncation,
            "must be above 0 and at most 1",
        ));
    }
    if args.interpolation_steps < 2 {
        return Err(AeganError::option(
            "--interpolation-steps",
            args.interpolation_steps,
            "must be at least 2",
        ));
    }
    if args.steps < 2 {
        return Err(AeganError::option("--steps", args.steps, "must be at least 2"));
    }
    let device = aegan::select_device(args.device.parse::<DeviceChoice>()?)?;
    let loaded = Model::load_reporting(&args.checkpoint, &device)?;
    for (snapshot, error) in &loaded.skipped {
        eprintln!("warning: skipped snapshot {}: {error}", snapshot.display());
    }
    let model = loaded.value;
    if let Some(quiz_dir) = &args.quiz {
        let Some(real) = &args.real else {
            return Err(AeganError::option(
                "--quiz",
                quiz_dir.display(),
                "needs --real, the folder of real images to mix in",
            ));
        };
        let files = quiz::write(&model, real, args.n, args.seed, quiz_dir, &device)?;
        println!(
            "wrote {} ({} images, half real, half generated; open it in a browser) and {} (which was which)",
            files.page.display(),
            args.n,
            files.answers.display()
        );
        return Ok(());
    }
    if args.edit.is_some() || args.class_path.is_some() {
        return edit_mode(&model, &args, &device);
    }
    let config = model.config().clone();
    let images_dir = args.out.join("images");
    std::fs::create_dir_all(&images_dir).map_err(|e| AeganError::io(&images_dir, e))?;

    // Which classes to draw: none for an unconditional model, --dx or all for a conditional one.
    let classes: Vec<Option<usize>> =
        match (&args.dx, model.class_names()) {
            (None, []) => vec![None],
            (Some(dx), []) => return Err(AeganError::option(
                "--dx",
                dx,
                "the checkpoint is unconditional: it draws no chosen class (train one with --conditional)",
            )),
            (Some(dx), _) => vec![Some(
                model
                    .networks()
                    .label_of(dx)
                    .map_err(|e| AeganError::option("--dx", dx, e.to_string()))?,
            )],
            (None, names) => (0..names.len()).map(Some).collect(),
        };
    let digits = args.n.saturating_sub(1).to_string().len().max(5);
    let bar = ProgressBar::new((args.n * classes.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {pos}/{len} images [{elapsed_precise}<{eta_precise}] {wide_bar}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // The first images of each class, for the grid: one row per class, so a row holds at
    // most --n images.
    let class_row = args.grid_columns.min(args.n);
    let mut shown = Vec::new();
    for &class in &classes {
        let dir = match class {
            Some(label) => images_dir.join(&model.class_names()[label]),
            None => images_dir.clone(),
        };
        std::fs::create_dir_all(&dir).map_err(|e| AeganError::io(&dir, e))?;
        // Latents are drawn in order from one stream, so image i is the same whatever --n is
        // (and each class is drawn from the same latents).
        let latents = (model.sample_latents(args.n, args.seed)? * args.truncation)?;
        for first in (0..args.n).step_by(CHUNK) {
            let count = CHUNK.min(args.n - first);
            let z = latents.narrow(0, first, count)?;
            let generated = match class {
                Some(label) => model.generate_labelled(&z, &vec![label; count])?,
                None => model.generate(&z)?,
            };
            for (i, image) in viz::to_rgb_images(&generated)?.iter().enumerate() {
                let name = format!("{:0digits$}.png", first + i);
                viz::save_png(image, dir.join(name))?;
            }
            if first == 0 {
                let per_class = if class.is_some() { class_row } else { CHUNK };
                shown.push(generated.narrow(0, 0, per_class.min(count))?);
            }
            bar.inc(count as u64);
        }
    }
    bar.finish_and_clear();
    let grid = Tensor::cat(&shown, 0)?;
    let grid_path = args.out.join("grid.png");
    match classes[..] {
        [None] => viz::save_grid(&grid, args.grid_columns, args.grid_scale, &grid_path)?,
        _ => {
            let names: Vec<String> = classes
                .iter()
                .flatten()
                .map(|&label| model.class_names()[label].clone())
                .collect();
            viz::save_class_rows(&grid, &names, class_row, args.grid_scale, &grid_path)?
        }
    }
    match classes[..] {
        [None] => println!(
            "wrote {} images to {} and grid.png (the first {})",
            args.n,
            images_dir.display(),
            args.n.min(CHUNK)
        ),
        _ => println!(
            "wrote {} images of each of {} classes to {}/<class>/ and grid.png (one row per class)",
            args.n,
            classes.len(),
            images_dir.display()
        ),
    }

    let real = match &args.real {
        Some(dir) => {
            let mut options = LoadOptions::new(config.image_size);
            options.cache_dir = None;
            let loaded = load_folder(dir, &options)?;
            let count = loaded.images.len().min(16);
            loaded
                .to_image_set(format!("images from {}", dir.display()))?
                .batch(&(0..count).collect::<Vec<_>>(), &device)?
        }
        None => {
            println!("no --real given: reconstructing built-in SYNTHETIC lesions (not real data)");
            synthetic::lesions(16, config.image_size, args.seed).to_tensor(&device)?
        }
    };
    if model.resolution() != config.image_size {
        println!(
            "the checkpoint is at {0}×{0} of a progressive run growing to {1}×{1}",
            model.resolution(),
            config.image_size
        );
    }
    // The model works at its own resolution (a progressive checkpoint taken before full
    // size works at a lower one): compare at that resolution.
    let real = aegan::progressive::downsample_area(&real, config.image_size / model.resolution())?;
    // A conditional model reconstructs through G(E(x), y): with the first class drawn
    // (the --dx class), since these images carry no diagnosis.
    let (recon, through) = match classes[0] {
        None => (model.reconstruct(&real)?, "G(E(x))".to_string()),
        Some(label) => (
            model.reconstruct_labelled(&real, &vec![label; real.dim(0)?])?,
            format!("G(E(x), {})", model.class_names()[label]),
        ),
    };
    let pairs = Tensor::stack(&[&real, &recon], 1)?.flatten_to(1)?;
    viz::save_grid(&pairs, 8, 2, args.out.join("reconstructions.png"))?;
    let l1 = (&recon - &real)?.abs()?.mean_all()?.to_scalar::<f32>()?;
    println!(
        "wrote reconstructions.png (pairs x | {through}; mean |{through} - x| = {l1:.4} on the [-1, 1] scale)"
    );
    if classes[0].is_some() {
        println!("(no interpolation strip: it runs through an unconditional G)");
        return Ok(());
    }

    if real.dim(0)? >= 2 {
        let steps = args.interpolation_steps;
        let (how, path) = match args.spherical {
            true => (Interpolation::Spherical, "the great circle"),
            false => (Interpolation::Linear, "the line"),
        };
        let between = model.interpolate(&real.get(0)?, &real.get(1)?, steps, how)?;
        let strip = Tensor::cat(&[&real.narrow(0, 0, 1)?, &between, &real.narrow(0, 1, 1)?], 0)?;
        viz::save_grid(&strip, steps + 2, 3, args.out.join("interpolation.png"))?;
        println!(
            "wrote interpolation.png (real x0 | G(z) for {steps} points on {path} from E(x0) to E(x1) | real x1)"
        );
    }
    Ok(())
}

/// `--edit` and `--class-path`: refused for an unconditional checkpoint, naming why.
fn edit_mode(model: &Model, args: &Args, device: &aegan::candle_core::Device) -> aegan::Result<()> {
    let option = if args.edit.is_some() {
        "--edit"
    } else {
        "--class-path"
    };
    if model.class_names().is_empty() {
        return Err(AeganError::option(
            option,
            args.edit.as_ref().map_or_else(|| args.class_path.clone().unwrap_or_default(), |e| e.display().to_string()),
            "draws images as other classes, and this checkpoint is unconditional: it has no classes (train one with --conditional)",
        ));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| AeganError::io(&args.out, e))?;
    let inputs = match &args.edit {
        Some(path) => Some(edit::read_inputs(
            model,
            path,
            args.from.as_deref(),
            args.ham_holdout,
            device,
        )?),
        None => None,
    };
    if let Some(inputs) = &inputs {
        let targets = edit::target_labels(model, args.to.as_deref())?;
        let grid = edit::write_edits(model, inputs, &targets, &args.out)?;
        println!(
            "wrote {} ({} images: input | reconstruction as its own class | as {}) and each image under {}",
            grid.display(),
            inputs.labels.len(),
            targets
                .iter()
                .map(|&t| model.class_names()[t].as_str())
                .collect::<Vec<_>>()
                .join(", "),
            args.out.join("edits").display()
        );
    }
    if let Some(pair) = &args.class_path {
        let (from, to) = pair.split_once(',').ok_or_else(|| {
            AeganError::option(
                "--class-path",
                pair,
                "must be two classes, FROM,TO (for example nv,mel)",
            )
        })?;
        let (from, to) = (from.trim(), to.trim());
        for class in [from, to] {
            model
                .networks()
                .label_of(class)
                .map_err(|e| AeganError::option("--class-path", pair, e.to_string()))?;
        }
        let latents = match &inputs {
            Some(inputs) => model.encode(&inputs.images)?,
            None => model.sample_latents(args.n.min(8), args.seed)?,
        };
        let path = edit::write_class_path(model, &latents, (from, to), args.steps, &args.out)?;
        println!(
            "wrote {} ({} rows of {} images from {from} to {to})",
            path.display(),
            latents.dim(0)?,
            args.steps
        );
    }
    Ok(())
}
