//! Trains an AEGAN on pixel-art sprites: any folder of sprite images, or (with no `--data`)
//! aegan's built-in synthetic sprites.
//!
//! ```sh
//! cargo run --release --example sprites                                # synthetic sprites, 100 steps
//! cargo run --release --example sprites -- --data ~/sprites --epochs 50
//! cargo run --release --example sprites -- --data ~/sprites --unconditional  # ignore the categories
//! ```
//!
//! Where every sprite has a category, a new run from the preset makes it a condition of the
//! model (it measured far better than one model for all: `docs/quality.md`): the first folder
//! below `--data` that holds the sprite, or the part of its file name before `__`
//! (`mon__orc.png` is a `mon`). `generate --dx mon` then draws monsters. `--unconditional`
//! trains without; `--conditional` insists (an error when a sprite has no category).

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
    /// name up to `__`): `generate --dx <category>` then draws that category. The default of
    /// a new run from the preset when every sprite has one of two or more categories; with
    /// this flag a sprite without a category is an error.
    #[arg(long)]
    conditional: bool,
    /// Train one model for all sprites, ignoring their categories.
    #[arg(long, conflicts_with = "conditional")]
    unconditional: bool,
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
    if conditional && args.unconditional {
        return Err(aegan::AeganError::option(
            "--unconditional",
            "on",
            "the --config or the resumed checkpoint is conditional, and a run keeps its config",
        ));
    }
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
    // A new run from the preset is conditional by default where the sprites have categories.
    let by_default =
        matches!(start, common::Start::New(_)) && args.train.config.is_none() && !args.unconditional;
    let labelled = match conditional {
        true => Some(loaded.to_labelled_set(dir, description.clone())?),
        false if by_default => loaded
            .to_labelled_set(dir, description.clone())
            .ok()
            .filter(|set| set.class_names().len() >= 2),
        false => None,
    };
    if by_default && !conditional && labelled.is_none() {
        println!(
            "unconditional: the sprites do not all have one of two or more categories (sub-folders or <category>__ file names)"
        );
    }
    let start = match (start, &labelled) {
        (common::Start::New(mut config), Some(set)) if config.conditioning.is_none() => {
            println!(
                "conditional on the category: {} (--unconditional trains one model for all)",
                set.class_names().join(", ")
            );
            config.conditioning = Some(ConditioningConfig::new(set.class_names().to_vec()));
            common::Start::New(config)
        }
        (other, _) => other,
    };
    let data = match labelled {
        Some(set) => set,
        None => loaded.to_image_set(description)?,
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
