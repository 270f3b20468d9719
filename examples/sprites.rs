//! Trains an AEGAN on pixel-art sprites: any folder of sprite images, or (with no `--data`)
//! aegan's built-in synthetic sprites.
//!
//! ```sh
//! cargo run --release --example sprites                                # synthetic sprites, 100 steps
//! cargo run --release --example sprites -- --data ~/sprites --epochs 50
//! cargo run --release --example sprites -- --data ~/sprites --conditional  # one class per category
//! ```
//!
//! With `--conditional` the category of each sprite is a condition of the model: the first
//! folder below `--data` that holds it, or the part of its file name before `__`
//! (`mon__orc.png` is a `mon`).

mod common;

use std::path::PathBuf;

use aegan::config::ConditioningConfig;
use aegan::data::{load_folder, synthetic, Augment, LoadOptions, Resample};
use clap::Parser;
use common::{DefaultLength, TrainArgs};

#[derive(Parser, Debug)]
#[command(about = "Train an AEGAN on sprites (a folder of pixel art, or built-in synthetic sprites)")]
struct Args {
    /// A folder of sprite images (searched recursively; transparency becomes --background).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Background colour for transparent pixels, as R,G,B.
    #[arg(long, value_delimiter = ',', default_value = "255,255,255")]
    background: Vec<u8>,
    /// Make each sprite's category a condition of the model (its sub-folder, or its file
    /// name up to `__`): `generate --dx <category>` then draws that category.
    #[arg(long)]
    conditional: bool,
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

fn run(args: Args) -> aegan::Result<()> {
    let (start, device) = common::start(&args.train, "runs/sprites", "sprites")?;
    let size = start.image_size();
    let conditional = start.is_conditional(args.conditional)?;
    let Some(dir) = &args.data else {
        if conditional {
            return Err(aegan::AeganError::option(
                "--conditional",
                "on",
                "needs --data: the categories come from its sub-folders or file names",
            ));
        }
        println!("no --data given: training on built-in SYNTHETIC sprites (procedurally drawn, not real game art).");
        let data = synthetic::sprites(2048, size, args.train.seed.unwrap_or(0));
        return common::train(
            &args.train,
            start,
            &device,
            &data,
            None,
            Augment::HorizontalFlip,
            "runs/sprites",
            DefaultLength::Steps(100),
        );
    };
    let [r, g, b] = args.background[..] else {
        return Err(aegan::AeganError::BadInput {
            what: "--background",
            expected: "three numbers R,G,B from 0 to 255".into(),
            found: args.background.iter().map(|&v| v as usize).collect(),
        });
    };
    let mut options = LoadOptions::new(size);
    options.background = [r, g, b];
    options.resample = Resample::PixelArt;
    if args.no_cache {
        options.cache_dir = None;
    }
    let loaded = load_folder(dir, &options)?;
    let description = format!("sprites from {}", dir.display());
    let data = match conditional {
        true => loaded.to_labelled_set(dir, description)?,
        false => loaded.to_image_set(description)?,
    };
    let start = match start {
        common::Start::New(mut config) if args.conditional => {
            println!("conditional on the category: {}", data.class_names().join(", "));
            config.conditioning = Some(ConditioningConfig::new(data.class_names().to_vec()));
            common::Start::New(config)
        }
        other => other,
    };
    common::train(
        &args.train,
        start,
        &device,
        &data,
        None,
        Augment::HorizontalFlip,
        "runs/sprites",
        DefaultLength::Epochs(50.0),
    )
}
