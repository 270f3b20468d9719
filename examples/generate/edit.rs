//! `--edit` and `--class-path`: real images drawn as other classes, and the morph from one
//! class to another, for a class-conditional checkpoint.

use std::path::{Path, PathBuf};

use aegan::candle_core::{Device, Tensor};
use aegan::data::folder::load_image;
use aegan::data::ham10000::{self, Ham10000};
use aegan::data::{load_folder, LoadOptions};
use aegan::{viz, AeganError, Model};

/// Images per `--edit` run (the grid holds one row per image).
pub const MAX_EDITED: usize = 16;

/// Real images to edit, each with the class it is (from HAM10000 metadata beside them, or
/// `--from`), and the file each came from.
pub struct Inputs {
    pub images: Tensor,
    pub labels: Vec<usize>,
    pub paths: Vec<PathBuf>,
}

/// Reads `--edit` (a folder or one image) at the model's resolution: at most
/// [`MAX_EDITED`] images, in file order. Each image's class is its diagnosis where the
/// folder has HAM10000 metadata, else `from` (which must then be given). With `holdout` (a
/// HAM10000 folder only), the images are the lesions the examples' split of that fraction
/// keeps out of training, one diagnosis after another.
pub fn read_inputs(
    model: &Model,
    edit: &Path,
    from: Option<&str>,
    holdout: Option<f64>,
    device: &Device,
) -> aegan::Result<Inputs> {
    let mut options = LoadOptions::new(model.resolution());
    options.cache_dir = None;
    let from_label = match from {
        Some(class) => Some(
            model
                .networks()
                .label_of(class)
                .map_err(|e| AeganError::option("--from", class, e.to_string()))?,
        ),
        None => None,
    };
    // Looked up once: it decides both whether --ham-holdout applies and how the images are read.
    let ham_folder = edit.is_dir() && ham10000::find_metadata(edit).is_ok();
    if let Some(fraction) = holdout {
        let refusal = if from.is_some() {
            Some("picks lesions by their own diagnoses, and --from gives every image one class: use one of the two".to_string())
        } else if !ham_folder {
            Some(format!(
                "picks held-out lesions by their HAM10000 metadata, and {} is not a folder with it",
                edit.display()
            ))
        } else {
            None
        };
        if let Some(reason) = refusal {
            return Err(AeganError::option("--ham-holdout", fraction, reason));
        }
    }
    if edit.is_file() {
        let image = load_image(edit, &options)?;
        let label = from_label.ok_or_else(|| missing_from(edit))?;
        let images = aegan::data::ImageSet::from_rgb(&[image], edit.display().to_string())?;
        return Ok(Inputs {
            images: images.to_tensor(device)?,
            labels: vec![label],
            paths: vec![edit.to_path_buf()],
        });
    }
    if from_label.is_none() && ham_folder {
        let set = Ham10000::load(edit, None, None, &options)?;
        let chosen = match holdout {
            Some(fraction) => set.held_out_by_diagnosis(fraction, ham10000::SPLIT_SEED, MAX_EDITED),
            None => (0..set.images.len().min(MAX_EDITED)).collect(),
        };
        let first = set.subset(&chosen)?;
        let labelled = first.labelled()?;
        let labels = (labelled.labels().unwrap_or_default().iter())
            .map(|&l| {
                let name = &labelled.class_names()[l];
                model
                    .networks()
                    .label_of(name)
                    .map_err(|e| AeganError::option("--edit", edit.display(), e.to_string()))
            })
            .collect::<aegan::Result<Vec<_>>>()?;
        let paths = (first.records.iter()).map(|r| edit.join(&r.image_id)).collect();
        return Ok(Inputs {
            images: labelled.to_tensor(device)?,
            labels,
            paths,
        });
    }
    let label = from_label.ok_or_else(|| missing_from(edit))?;
    let loaded = load_folder(edit, &options)?;
    let count = loaded.images.len().min(MAX_EDITED);
    let images = aegan::data::ImageSet::from_rgb(&loaded.images[..count], edit.display().to_string())?;
    Ok(Inputs {
        images: images.to_tensor(device)?,
        labels: vec![label; count],
        paths: loaded.paths[..count].to_vec(),
    })
}

fn missing_from(edit: &Path) -> AeganError {
    AeganError::option(
        "--edit",
        edit.display(),
        "these images carry no diagnosis (no HAM10000 metadata beside them): say which class they are with --from <class>",
    )
}

/// The classes `--to` names (every class when `None`), as labels.
pub fn target_labels(model: &Model, to: Option<&str>) -> aegan::Result<Vec<usize>> {
    match to {
        None => Ok((0..model.class_names().len()).collect()),
        Some(list) => list
            .split(',')
            .map(|class| {
                model
                    .networks()
                    .label_of(class.trim())
                    .map_err(|e| AeganError::option("--to", list, e.to_string()))
            })
            .collect(),
    }
}

/// Writes `edits.png` (one row per input: the input, its reconstruction as its own class,
/// then the input drawn as each target class, columns labelled) and every image alone under
/// `edits/<n>-<input name>/`.
pub fn write_edits(model: &Model, inputs: &Inputs, targets: &[usize], out: &Path) -> aegan::Result<PathBuf> {
    let names = model.class_names();
    let reconstructions = model.reconstruct_labelled(&inputs.images, &inputs.labels)?;
    let mut columns = vec![inputs.images.clone(), reconstructions];
    for &target in targets {
        columns.push(model.counterfactual(&inputs.images, &names[target])?);
    }
    let mut headers = vec!["input".to_string(), "reconstr.".to_string()];
    headers.extend(targets.iter().map(|&t| format!("as {}", names[t])));
    // Row i holds column j's image i: stack along a new axis 1, then flatten rows.
    let rows = Tensor::stack(&columns, 1)?.flatten_to(1)?;
    let grid = out.join("edits.png");
    viz::save_column_labelled_grid(&rows, &headers, 3, &grid)?;
    for (i, path) in inputs.paths.iter().enumerate() {
        let stem = path
            .file_stem()
            .map_or("image".into(), |s| s.to_string_lossy().into_owned());
        let dir = out.join("edits").join(format!("{i:02}-{stem}"));
        std::fs::create_dir_all(&dir).map_err(|e| AeganError::io(&dir, e))?;
        let own = &names[inputs.labels[i]];
        let mut files = vec!["input.png".to_string(), format!("reconstruction-as-{own}.png")];
        files.extend(targets.iter().map(|&t| format!("as-{}.png", names[t])));
        for (column, file) in columns.iter().zip(&files) {
            let image = viz::to_rgb_images(&column.narrow(0, i, 1)?)?;
            viz::save_png(&image[0], dir.join(file))?;
        }
    }
    Ok(grid)
}

/// Writes `class-path.png`: one row per latent in `latents` (real images' codes, or samples),
/// `steps` images from `from` to `to`, the end columns labelled.
pub fn write_class_path(
    model: &Model,
    latents: &Tensor,
    (from, to): (&str, &str),
    steps: usize,
    out: &Path,
) -> aegan::Result<PathBuf> {
    let mut rows = Vec::new();
    for i in 0..latents.dim(0)? {
        rows.push(model.class_path(&latents.get(i)?, from, to, steps)?);
    }
    let mut headers = vec![String::new(); steps];
    headers[0] = from.to_string();
    headers[steps - 1] = to.to_string();
    let path = out.join("class-path.png");
    viz::save_column_labelled_grid(&Tensor::cat(&rows, 0)?, &headers, 3, &path)?;
    Ok(path)
}
