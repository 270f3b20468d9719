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
//! model (it measured far better than one model for all: `docs/quality.md`): two levels of
//! where the sprite lies below `--data`, folders or the parts of its file name before `__`
//! (`mon/undead/mummy.png` and `mon__undead__mummy.png` are a `mon/undead`, `mon__orc.png` a
//! `mon`), a kind of fewer than 10 sprites joining its parent (`--category-depth`,
//! `--category-min-images`). `generate --dx mon/undead` then draws undead. `--unconditional`
//! trains without; `--conditional` insists (an error when a sprite has no category).

mod common;

use std::path::PathBuf;

use aegan::config::ConditioningConfig;
use aegan::data::{load_folder, synthetic, Augment, Categories, LoadOptions, Resample};
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
    /// Make each sprite's category a condition of the model (its sub-folders, or the parts of
    /// its file name before `__`; see --category-depth): `generate --dx <category>` then draws
    /// that category. The default of a new run from the preset when every sprite has one of
    /// two or more categories; with this flag a sprite without a category is an error.
    #[arg(long)]
    conditional: bool,
    /// Train one model for all sprites, ignoring their categories.
    #[arg(long, conflicts_with = "conditional")]
    unconditional: bool,
    /// How many levels of a sprite's location name its category: 1 takes the first folder
    /// (`mon`), 2 the next as well (`mon/undead`; file names count `__` as a folder:
    /// `mon__undead__mummy.png`). [default: 2]
    #[arg(long, conflicts_with = "unconditional")]
    category_depth: Option<usize>,
    /// A category of fewer sprites than this joins its parent (`mon/aberr` of one sprite
    /// becomes a `mon`). [default: 10]
    #[arg(long, conflicts_with = "unconditional")]
    category_min_images: Option<usize>,
    /// Don't cache decoded images on disk.
    #[arg(long)]
    no_cache: bool,
    #[command(flatten)]
    train: TrainArgs,
}

/// The preset's category depth: `item/book`, `mon/animals`. On the DCSS sprites its classes'
/// samples became recognisable kinds (books, staves, gold, four-legged animals) where the
/// five top-level classes each gave one averaged shape (`docs/quality.md`).
const DEFAULT_CATEGORY_DEPTH: usize = 2;
/// The preset's smallest category: kinds of fewer sprites join their parent.
const DEFAULT_CATEGORY_MIN_IMAGES: usize = 10;

impl Args {
    /// The first category option given on the command line, with its value.
    fn category_option_given(&self) -> Option<(&'static str, usize)> {
        self.category_depth
            .map(|v| ("--category-depth", v))
            .or(self.category_min_images.map(|v| ("--category-min-images", v)))
    }

    /// How the sprites are labelled, with the preset's defaults (`used`: whether the run
    /// labels them at all). A category option is an error where it cannot apply: without
    /// --data, in an unconditional run, or in a run whose config names its classes already.
    fn categories(&self, start: &common::Start, used: bool) -> aegan::Result<Categories> {
        if let Some((option, value)) = self.category_option_given() {
            let classes = class_names(start);
            let refusal = if self.data.is_none() {
                Some("needs --data: categories come from where the sprites lie".to_string())
            } else if !used {
                Some(
                    "the run is unconditional (its --config has no conditioning): categories are not used"
                        .into(),
                )
            } else if !classes.is_empty() {
                Some(format!(
                    "the --config or resumed checkpoint names its classes already ({}); leave the category options out",
                    classes.join(", ")
                ))
            } else {
                None
            };
            if let Some(reason) = refusal {
                return Err(aegan::AeganError::option(option, value, reason));
            }
        }
        Categories::new(
            self.category_depth.unwrap_or(DEFAULT_CATEGORY_DEPTH),
            self.category_min_images.unwrap_or(DEFAULT_CATEGORY_MIN_IMAGES),
        )
    }
}

/// The class names of a resumed or new run's config (empty when it is unconditional).
fn class_names(start: &common::Start) -> &[String] {
    match start {
        common::Start::Resume(trainer) => trainer.config().class_names(),
        common::Start::New(config) => config.class_names(),
    }
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
    // A new run from the preset is conditional by default where the sprites have categories.
    let by_default =
        matches!(start, common::Start::New(_)) && args.train.config.is_none() && !args.unconditional;
    let categories = args.categories(&start, conditional || by_default)?;
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
            (&data, common::DataSource::Synthetic),
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
    let wrapping = loaded.wrapping_folders(dir);
    if !wrapping.is_empty() {
        println!(
            "every sprite lies in {}/ under {}: that folder names no category, so categories start below it",
            wrapping.join("/"),
            dir.display()
        );
    }
    let labelled = match (conditional, class_names(&start)) {
        // A resumed run or a conditional --config names its classes: the sprites are labelled
        // by them, whatever depth they were made at.
        (true, classes) if !classes.is_empty() => {
            Some(loaded.to_labelled_set_as(dir, classes, description.clone())?)
        }
        (true, _) => Some(loaded.to_labelled_set(dir, categories, description.clone())?),
        (false, _) if by_default => loaded
            .to_labelled_set(dir, categories, description.clone())
            .ok()
            .filter(|set| set.class_names().len() >= 2),
        (false, _) => None,
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
        (&data, common::DataSource::Folder(dir.clone())),
        None,
        Augment::HorizontalFlip,
        "runs/sprites",
        DefaultLength::Epochs(50.0),
    )
}
