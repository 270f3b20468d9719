//! `--quiz`: a practice page of real and generated images, mixed.

use std::path::Path;

use aegan::candle_core::Device;
use aegan::data::ham10000::{self, Ham10000};
use aegan::data::{load_folder, ImageSet, LoadOptions};
use aegan::quiz::{write_quiz, Origin, QuizFiles, QuizItem, QuizPage};
use aegan::{viz, AeganError, Model};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Writes the quiz of `n` images (half real, drawn from `real`; half generated) into `out`.
/// A conditional model with real images that carry diagnoses (HAM10000 metadata beside
/// them) also asks "which diagnosis?": each generated image is drawn as the class of the real
/// image it pairs with, so the classes say nothing about which is which.
pub fn write(
    model: &Model,
    real: &Path,
    n: usize,
    seed: u64,
    out: &Path,
    device: &Device,
) -> aegan::Result<QuizFiles> {
    if n < 2 || !n.is_multiple_of(2) {
        return Err(AeganError::option(
            "--n",
            n,
            "a quiz needs an even number of images, at least 2 (half real, half generated)",
        ));
    }
    let mut options = LoadOptions::new(model.resolution());
    options.cache_dir = None;
    let conditional = !model.class_names().is_empty();
    let (set, paths): (ImageSet, Vec<String>) = if conditional && ham10000::find_metadata(real).is_ok() {
        let set = Ham10000::load(real, None, None, &options)?;
        let paths = set.records.iter().map(|r| r.image_id.clone()).collect();
        (set.labelled()?, paths)
    } else {
        let loaded = load_folder(real, &options)?;
        let paths = loaded.paths.iter().map(|p| p.display().to_string()).collect();
        (loaded.to_image_set(real.display().to_string())?, paths)
    };
    let half = n / 2;
    if set.len() < half {
        return Err(AeganError::option(
            "--real",
            real.display(),
            format!("holds {} images; a quiz of {n} needs {half} real ones", set.len()),
        ));
    }
    let chosen = sample(&mut ChaCha8Rng::seed_from_u64(seed), set.len(), half).into_vec();
    let real_images = viz::to_rgb_images(&set.batch(&chosen, device)?)?;
    let real_classes: Vec<Option<String>> = chosen
        .iter()
        .map(|&i| set.labels().map(|l| set.class_names()[l[i]].clone()))
        .collect();
    let latents = model.sample_latents(half, seed)?;
    let generated = match (conditional, real_classes.iter().all(Option::is_some)) {
        (true, true) => {
            let labels = real_classes
                .iter()
                .map(|c| model.networks().label_of(c.as_deref().unwrap_or_default()))
                .collect::<aegan::Result<Vec<_>>>()?;
            model.generate_labelled(&latents, &labels)?
        }
        (true, false) => {
            // No diagnoses to pair with: draw the classes in turn, and ask only real or generated.
            let labels: Vec<usize> = (0..half).map(|i| i % model.class_names().len()).collect();
            model.generate_labelled(&latents, &labels)?
        }
        (false, _) => model.generate(&latents)?,
    };
    let ask_class = conditional && real_classes.iter().all(Option::is_some);
    let mut items = Vec::with_capacity(n);
    for (k, image) in real_images.into_iter().enumerate() {
        items.push(QuizItem {
            image,
            origin: Origin::Real,
            class: real_classes[k].clone().filter(|_| ask_class),
            source: paths[chosen[k]].clone(),
        });
    }
    for (k, image) in viz::to_rgb_images(&generated)?.into_iter().enumerate() {
        items.push(QuizItem {
            image,
            origin: Origin::Generated,
            class: real_classes[k].clone().filter(|_| ask_class),
            source: format!("latent {k} of seed {seed}"),
        });
    }
    let mut page = QuizPage::new(if ask_class {
        "Real or generated? And which diagnosis?"
    } else {
        "Real or generated?"
    });
    if ask_class {
        page.classes = model.class_names().to_vec();
    }
    write_quiz(out, &items, &page, seed)
}
