//! The HAM10000 dermoscopy dataset (Tschandl et al. 2018): metadata CSV, images found anywhere
//! under a folder, diagnosis filter, and a lesion-level train/held-out split.
//!
//! Works with the original download (`HAM10000_metadata.csv`, `HAM10000_images_part_1/`,
//! `HAM10000_images_part_2/`, JPEGs `ISIC_xxxxxxx.jpg`) and with any CSV that has `image_id`
//! and `dx` columns (`lesion_id` is optional; without it each image is its own lesion).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::folder::{list_files, load_files, LoadOptions};
use super::ImageSet;
use crate::error::{AeganError, Result};

/// The seven HAM10000 diagnoses and their meaning.
pub const DIAGNOSES: [(&str, &str); 7] = [
    ("akiec", "actinic keratoses / intraepithelial carcinoma"),
    ("bcc", "basal cell carcinoma"),
    ("bkl", "benign keratosis-like lesions"),
    ("df", "dermatofibroma"),
    ("mel", "melanoma"),
    ("nv", "melanocytic nevi"),
    ("vasc", "vascular lesions"),
];

/// One metadata row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LesionRecord {
    /// Image file stem, e.g. `ISIC_0027419`.
    pub image_id: String,
    /// Lesion identifier; several images can show one lesion.
    pub lesion_id: String,
    /// Diagnosis code (see [`DIAGNOSES`]).
    pub dx: String,
    /// 1-based line in the CSV (the header is line 1).
    pub line: u64,
}

/// Reads a metadata CSV with at least the columns `image_id` and `dx`.
pub fn read_metadata(path: &Path) -> Result<Vec<LesionRecord>> {
    let csv_error = |line: Option<u64>, reason: String| AeganError::Csv {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| AeganError::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(file);
    let headers = reader
        .headers()
        .map_err(|e| csv_error(Some(1), e.to_string()))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(image_col), Some(dx_col)) = (column("image_id"), column("dx")) else {
        return Err(csv_error(
            Some(1),
            format!(
                "needs columns `image_id` and `dx`; the header has: {}",
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    let lesion_col = column("lesion_id");
    let mut records = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| csv_error(e.position().map(|p| p.line()), e.to_string()))?;
        let line = row.position().map(|p| p.line()).unwrap_or(0);
        let field = |i: usize| row.get(i).map(str::trim).unwrap_or("").to_string();
        let image_id = field(image_col);
        if image_id.is_empty() {
            return Err(csv_error(Some(line), "empty image_id".into()));
        }
        records.push(LesionRecord {
            lesion_id: lesion_col
                .map(field)
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| image_id.clone()),
            dx: field(dx_col),
            image_id,
            line,
        });
    }
    if records.is_empty() {
        return Err(csv_error(None, "no rows".into()));
    }
    Ok(records)
}

/// Checks metadata rows for anomalies and returns the rows to use with one warning per
/// anomaly that is safe to pass:
/// - a diagnosis code outside [`DIAGNOSES`] warns (once per code, naming its first line and
///   count): a typo would otherwise become a class of its own;
/// - an `image_id` listed twice with the same lesion and diagnosis warns and is used once;
/// - an `image_id` listed twice with another lesion or diagnosis is an error naming both
///   lines: the image could land on both sides of the lesion-level split, or under two labels.
pub fn check_metadata(path: &Path, records: Vec<LesionRecord>) -> Result<(Vec<LesionRecord>, Vec<String>)> {
    let mut warnings = Vec::new();
    let mut first_row: HashMap<String, usize> = HashMap::new();
    let mut kept: Vec<LesionRecord> = Vec::with_capacity(records.len());
    for record in records {
        if let Some(&i) = first_row.get(&record.image_id) {
            let earlier = &kept[i];
            if earlier.lesion_id != record.lesion_id || earlier.dx != record.dx {
                return Err(AeganError::Csv {
                    path: path.to_path_buf(),
                    line: Some(record.line),
                    reason: format!(
                        "image_id `{}` is listed again with lesion `{}` and dx `{}`, but line {} gives lesion `{}` and dx `{}`; fix the CSV so each image has one row",
                        record.image_id, record.lesion_id, record.dx, earlier.line, earlier.lesion_id, earlier.dx
                    ),
                });
            }
            warnings.push(format!(
                "{}, line {}: repeats the row of line {} (image_id `{}`); using the image once",
                path.display(),
                record.line,
                earlier.line,
                record.image_id
            ));
            continue;
        }
        first_row.insert(record.image_id.clone(), kept.len());
        kept.push(record);
    }
    let mut unknown: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    for r in kept
        .iter()
        .filter(|r| !DIAGNOSES.iter().any(|(code, _)| *code == r.dx))
    {
        unknown.entry(r.dx.as_str()).or_insert((r.line, 0)).1 += 1;
    }
    let known: Vec<&str> = DIAGNOSES.iter().map(|(code, _)| *code).collect();
    for (dx, (line, count)) in unknown {
        warnings.push(format!(
            "{}, line {line}: diagnosis `{dx}` is not a HAM10000 code ({}); {count} row(s) have it and form a class of their own",
            path.display(),
            known.join(", ")
        ));
    }
    Ok((kept, warnings))
}

fn has_metadata_columns(path: &Path) -> bool {
    csv::Reader::from_path(path)
        .and_then(|mut r| r.headers().cloned())
        .map(|h| h.iter().any(|c| c.trim() == "image_id") && h.iter().any(|c| c.trim() == "dx"))
        .unwrap_or(false)
}

/// The metadata CSV for `data_dir`: `HAM10000_metadata.csv`, else any CSV with `image_id` and
/// `dx` columns, in the folder or else in its parent.
pub fn find_metadata(data_dir: &Path) -> Result<PathBuf> {
    for dir in [Some(data_dir), data_dir.parent()].into_iter().flatten() {
        let named = dir.join("HAM10000_metadata.csv");
        if named.is_file() {
            return Ok(named);
        }
        let mut csvs: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        csvs.sort();
        if let Some(found) = csvs
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) && has_metadata_columns(p))
        {
            return Ok(found);
        }
    }
    Err(AeganError::Csv {
        path: data_dir.to_path_buf(),
        line: None,
        reason: "no metadata CSV here or in the parent folder (HAM10000_metadata.csv, or a CSV with image_id and dx columns); pass its path with --meta".into(),
    })
}

/// The seed of the lesion-level split that the examples use for training and evaluation, so
/// that `evaluate --ham-holdout` holds out the same lesions as `ham10000 --holdout`.
pub const SPLIT_SEED: u64 = 20240601;

/// HAM10000 images with their metadata, aligned index by index.
#[derive(Debug, Clone)]
pub struct Ham10000 {
    /// The images.
    pub images: ImageSet,
    /// One record per image.
    pub records: Vec<LesionRecord>,
    /// The metadata CSV used.
    pub metadata: PathBuf,
    /// The lesion of every row of the metadata, before any diagnosis filter: the split is
    /// made over these, so that `--dx` and a full load hold out the same lesions.
    metadata_lesions: Vec<String>,
}

impl Ham10000 {
    /// Loads the images listed in the metadata (`meta`, or found by [`find_metadata`]) from
    /// anywhere under `data_dir`, keeping only diagnoses in `dx` when given. A listed image
    /// with no file is an error naming the CSV line; a file that cannot be decoded is skipped
    /// with a warning.
    pub fn load(
        data_dir: &Path,
        meta: Option<&Path>,
        dx: Option<&[String]>,
        options: &LoadOptions,
    ) -> Result<Self> {
        let metadata = match meta {
            Some(m) => m.to_path_buf(),
            None => find_metadata(data_dir)?,
        };
        let (mut records, warnings) = check_metadata(&metadata, read_metadata(&metadata)?)?;
        if options.verbose {
            for warning in &warnings {
                eprintln!("warning: {warning}");
            }
        }
        let metadata_lesions: Vec<String> = records.iter().map(|r| r.lesion_id.clone()).collect();
        if let Some(wanted) = dx {
            let known: Vec<&str> = {
                let mut k: Vec<&str> = records.iter().map(|r| r.dx.as_str()).collect();
                k.sort();
                k.dedup();
                k
            };
            if let Some(unknown) = wanted.iter().find(|w| !known.contains(&w.as_str())) {
                return Err(AeganError::Csv {
                    path: metadata,
                    line: None,
                    reason: format!(
                        "diagnosis `{unknown}` does not occur; the file has: {}",
                        known.join(", ")
                    ),
                });
            }
            records.retain(|r| wanted.contains(&r.dx));
        }

        let by_stem = index_images(data_dir, options.size)?;
        let mut files = Vec::with_capacity(records.len());
        for r in &records {
            let path = by_stem.get(&r.image_id).ok_or_else(|| AeganError::MissingImage {
                csv: metadata.clone(),
                line: r.line,
                image_id: r.image_id.clone(),
                folder: data_dir.to_path_buf(),
            })?;
            files.push(path.clone());
        }
        let loaded = load_files(&files, options)?;
        let file_to_record: HashMap<&PathBuf, &LesionRecord> = files.iter().zip(&records).collect();
        let kept: Vec<LesionRecord> = loaded
            .paths
            .iter()
            .map(|p| {
                file_to_record.get(p).map(|r| (*r).clone()).ok_or_else(|| {
                    AeganError::io(
                        p,
                        std::io::Error::other("loaded, but not among the metadata's files"),
                    )
                })
            })
            .collect::<Result<_>>()?;
        if kept.is_empty() {
            return Err(AeganError::NoImages {
                path: data_dir.to_path_buf(),
                skipped: loaded.skipped.len(),
                hint: "; every listed image failed to decode".into(),
            });
        }
        let images = loaded.to_image_set(format!(
            "HAM10000 ({} images from {})",
            kept.len(),
            data_dir.display()
        ))?;
        Ok(Ham10000 {
            images,
            records: kept,
            metadata,
            metadata_lesions,
        })
    }

    /// Images per diagnosis.
    pub fn counts_by_dx(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in &self.records {
            *counts.entry(r.dx.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Splits image indices into (train, held out) so that no lesion is on both sides. The
    /// split is made over every row of the metadata (lesions shuffled with `seed` and moved
    /// to the held-out side until it holds at least `holdout_fraction` of the rows), whatever
    /// diagnoses were loaded: a model trained on one diagnosis (`--dx df`) never sees a lesion
    /// that a full load holds out, so its images can be tested against the same held-out set.
    pub fn split_by_lesion(&self, holdout_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
        let rows: Vec<&str> = self.metadata_lesions.iter().map(String::as_str).collect();
        let (_, held_rows) = split_by_group(&rows, holdout_fraction, seed);
        let held: std::collections::HashSet<&str> = held_rows.iter().map(|&i| rows[i]).collect();
        (0..self.records.len()).partition(|&i| !held.contains(self.records[i].lesion_id.as_str()))
    }

    /// At most `max` of the images that [`Ham10000::split_by_lesion`] holds out, taken one
    /// diagnosis after another (diagnoses in order of their first held-out image, images in
    /// file order): a few rows that show every diagnosis the held-out side has, for pictures
    /// of lesions a model was not trained on.
    pub fn held_out_by_diagnosis(&self, holdout_fraction: f64, seed: u64, max: usize) -> Vec<usize> {
        let (_, held) = self.split_by_lesion(holdout_fraction, seed);
        let mut queues: Vec<(&str, std::collections::VecDeque<usize>)> = Vec::new();
        for i in held {
            let dx = self.records[i].dx.as_str();
            match queues.iter_mut().find(|(d, _)| *d == dx) {
                Some((_, queue)) => queue.push_back(i),
                None => queues.push((dx, std::collections::VecDeque::from([i]))),
            }
        }
        let mut chosen = Vec::with_capacity(max.min(self.records.len()));
        while chosen.len() < max && queues.iter().any(|(_, q)| !q.is_empty()) {
            for (_, queue) in &mut queues {
                if chosen.len() < max {
                    chosen.extend(queue.pop_front());
                }
            }
        }
        chosen
    }

    /// The images labelled with their diagnoses: the classes are the codes of [`DIAGNOSES`]
    /// (all seven, in that order, whether present or not) followed by any other code met.
    pub fn labelled(&self) -> Result<ImageSet> {
        let mut names: Vec<String> = DIAGNOSES.iter().map(|(code, _)| code.to_string()).collect();
        let mut labels = Vec::with_capacity(self.records.len());
        for record in &self.records {
            let class = match names.iter().position(|n| *n == record.dx) {
                Some(class) => class,
                None => {
                    names.push(record.dx.clone());
                    names.len() - 1
                }
            };
            labels.push(class);
        }
        self.images.clone().with_labels(labels, names)
    }

    /// The images and records at `indices`.
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        Ok(Ham10000 {
            images: self.images.select(indices)?,
            records: indices.iter().map(|&i| self.records[i].clone()).collect(),
            metadata: self.metadata.clone(),
            metadata_lesions: self.metadata_lesions.clone(),
        })
    }
}

/// (train, held out) index lists such that all items of a group are on the same side.
pub fn split_by_group(groups: &[&str], holdout_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        members.entry(g).or_default().push(i);
    }
    let mut order: Vec<&str> = members.keys().copied().collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let target = (holdout_fraction.clamp(0.0, 1.0) * groups.len() as f64).ceil() as usize;
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for g in order {
        if held.len() < target {
            held.extend(&members[g]);
        } else {
            train.extend(&members[g]);
        }
    }
    train.sort_unstable();
    held.sort_unstable();
    (train, held)
}

/// Maps file stems to image files (.jpg, .jpeg, .png) under `dir`. When a stem occurs more
/// than once (e.g. the same image at several resolutions), the smallest file at least `size`
/// pixels on its short side wins, else the largest.
fn index_images(dir: &Path, size: usize) -> Result<HashMap<String, PathBuf>> {
    let mut candidates: HashMap<String, Vec<PathBuf>> = HashMap::new();
    for path in list_files(dir)? {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if matches!(ext.as_str(), "jpg" | "jpeg" | "png") {
            if let Some(stem) = path.file_stem() {
                candidates
                    .entry(stem.to_string_lossy().into_owned())
                    .or_default()
                    .push(path);
            }
        }
    }
    Ok(candidates
        .into_iter()
        .map(|(stem, mut paths)| {
            if paths.len() > 1 {
                let short_side = |p: &PathBuf| {
                    image::image_dimensions(p)
                        .map(|(w, h)| w.min(h) as usize)
                        .unwrap_or(0)
                };
                paths.sort_by_key(|p| {
                    let s = short_side(p);
                    if s >= size {
                        (0, s)
                    } else {
                        (1, usize::MAX - s)
                    }
                });
            }
            (stem, paths.swap_remove(0))
        })
        .collect())
}
