//! Does adding generated images of rare diagnoses help a classifier? Trains the small
//! classifier of `aegan::metrics::classifier` on (a) the real HAM10000 training images and,
//! given `--generated`, (b) the same plus generated images, with several seeds each, and
//! reports balanced accuracy and per-class recall on the held-out lesions (lesion-level
//! split: no lesion on both sides), mean ± standard deviation.
//!
//! ```sh
//! cargo run --release --example augment_classifier -- --data ~/HAM10000 --seeds 3
//! # (b): generated images in one folder per diagnosis code, e.g. gen/df/*.png, gen/vasc/*.png
//! cargo run --release --example augment_classifier -- --data ~/HAM10000 --generated gen --seeds 3
//! ```

use std::path::PathBuf;

use aegan::candle_core::Device;
use aegan::data::ham10000::{self, Ham10000};
use aegan::data::{load_folder, ImageSet, LoadOptions};
use aegan::metrics::classifier::{balanced_accuracy, recall_per_class, Classifier, ClassifierConfig};
use aegan::AeganError;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Train a lesion classifier on real images, with and without generated ones, and compare")]
struct Args {
    /// HAM10000 folder (metadata CSV and images anywhere under it).
    #[arg(long)]
    data: PathBuf,
    /// Generated images, one subfolder per diagnosis code (`df/`, `vasc/`, ...), added to the
    /// real training images for the second arm.
    #[arg(long)]
    generated: Option<PathBuf>,
    /// Image side in pixels.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Fraction of lesions held out for testing.
    #[arg(long, default_value_t = 0.1)]
    holdout: f64,
    /// Classifier seeds per arm.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Training steps of each classifier.
    #[arg(long, default_value_t = 600)]
    steps: u64,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> aegan::Result<()> {
    // Before the first candle operation: candle sizes its elementwise pool once.
    aegan::serial_candle_elementwise();
    if args.seeds == 0 || args.steps == 0 {
        return Err(AeganError::option(
            "--seeds/--steps",
            format!("{}/{}", args.seeds, args.steps),
            "must be at least 1",
        ));
    }
    if !(0.0..1.0).contains(&args.holdout) || args.holdout == 0.0 {
        return Err(AeganError::option(
            "--holdout",
            args.holdout,
            "must be a fraction above 0 and below 1",
        ));
    }
    if !(8..=256).contains(&args.size) {
        return Err(AeganError::option(
            "--size",
            args.size,
            "must be from 8 to 256 pixels",
        ));
    }
    let device = Device::Cpu;
    let options = LoadOptions::new(args.size);
    let set = Ham10000::load(&args.data, None, None, &options)?;
    let (train, held) = set.split_by_lesion(args.holdout, ham10000::SPLIT_SEED);
    let train = set.subset(&train)?.labelled()?;
    let held = set.subset(&held)?.labelled()?;
    let names = train.class_names().to_vec();
    println!(
        "{} training and {} held-out images; classes {}",
        train.len(),
        held.len(),
        names.join(", ")
    );

    let mut arms = vec![("real only".to_string(), train.clone())];
    if let Some(dir) = &args.generated {
        arms.push((
            "real + generated".to_string(),
            with_generated(&train, dir, &options)?,
        ));
    }
    let test = held.to_tensor(&device)?;
    let truth = held.labels().unwrap_or_default().to_vec();
    let mut header = "| arm | balanced accuracy |".to_string();
    for name in &names {
        header.push_str(&format!(" {name} |"));
    }
    let mut rows = Vec::new();
    for (arm, data) in &arms {
        let mut scores = Vec::new();
        let mut recalls: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        for seed in 0..args.seeds {
            let config = ClassifierConfig {
                steps: args.steps,
                seed,
                ..ClassifierConfig::default()
            };
            let classifier = Classifier::train(data, &config, &device)?;
            let predicted = classifier.predict(&test)?;
            let score = balanced_accuracy(&predicted, &truth, names.len())?;
            println!("{arm}, seed {seed}: balanced accuracy {score:.3}");
            scores.push(score);
            for (c, r) in recall_per_class(&predicted, &truth, names.len())?
                .into_iter()
                .enumerate()
            {
                if let Some(r) = r {
                    recalls[c].push(r);
                }
            }
        }
        let mut row = format!("| {arm} | {} |", mean_sd(&scores));
        for r in &recalls {
            row.push_str(&format!(" {} |", mean_sd(r)));
        }
        rows.push(row);
    }
    println!("\n{header}\n|{}", "---|".repeat(names.len() + 2));
    for row in rows {
        println!("{row}");
    }
    println!(
        "(recall per class on the held-out lesions; mean ± standard deviation over {} seeds)",
        args.seeds
    );
    Ok(())
}

/// `train` plus the images of `dir/<class>/` for each class name found there.
fn with_generated(train: &ImageSet, dir: &std::path::Path, options: &LoadOptions) -> aegan::Result<ImageSet> {
    let names = train.class_names().to_vec();
    let mut images = aegan::viz::to_rgb_images(&train.to_tensor(&Device::Cpu)?)?;
    let mut labels = train.labels().unwrap_or_default().to_vec();
    let mut found = 0;
    for (class, name) in names.iter().enumerate() {
        let folder = dir.join(name);
        if !folder.is_dir() {
            continue;
        }
        let loaded = load_folder(&folder, options)?;
        println!(
            "generated: {} images of {name} from {}",
            loaded.images.len(),
            folder.display()
        );
        labels.extend(std::iter::repeat_n(class, loaded.images.len()));
        images.extend(loaded.images);
        found += 1;
    }
    if found == 0 {
        return Err(AeganError::option(
            "--generated",
            dir.display(),
            format!("holds no folder named after a class ({})", names.join(", ")),
        ));
    }
    ImageSet::from_rgb(&images, "real and generated lesions")?.with_labels(labels, names)
}

/// `mean ± sd` of `values` (sample standard deviation), or `—` for none.
fn mean_sd(values: &[f64]) -> String {
    if values.is_empty() {
        return "—".into();
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    format!("{mean:.3} ± {sd:.3}")
}
