//! [`Dataset`]: what the training loop draws batches from. [`crate::data::ImageSet`] holds every
//! image in memory (8-bit, a quarter of f32's size); [`FolderDataset`] decodes images from a
//! folder when they are drawn, keeping a bounded number of them, for sets larger than memory.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::folder::{list_files, load_image};
use super::{Augment, LoadOptions};
use crate::error::{AeganError, Result};

/// Square RGB images of one size, addressed by index.
pub trait Dataset: Send + Sync {
    /// Number of images.
    fn len(&self) -> usize;

    /// Whether the set holds no image.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Side of the images in pixels.
    fn image_size(&self) -> usize;

    /// Where the images came from (for example "synthetic lesions, not real data").
    fn description(&self) -> &str;

    /// The images at `indices`, 8-bit and channel-first: `indices.len() · 3 · size · size`
    /// values. An index out of range is an error.
    fn pixels(&self, indices: &[usize]) -> Result<Vec<u8>>;

    /// The class names of a labelled set, in label order; empty (the default) when the
    /// images carry no class.
    fn class_names(&self) -> &[String] {
        &[]
    }

    /// The class of each image at `indices` (an index into [`Dataset::class_names`]), or
    /// `None` (the default) when the images carry no class. An index out of range is an error.
    fn labels_of(&self, indices: &[usize]) -> Result<Option<Vec<usize>>> {
        for &i in indices {
            check_index(i, self.len())?;
        }
        Ok(None)
    }
}

/// The images at `indices` as f32 in [−1, 1], channel-first, each augmented by a transform
/// drawn from a stream seeded by `seed` and `step` (the same step always sees the same
/// batch). At least one index.
pub fn batch_pixels(
    data: &dyn Dataset,
    indices: &[usize],
    augment: Augment,
    seed: u64,
    step: u64,
) -> Result<Vec<f32>> {
    if indices.is_empty() {
        return Err(AeganError::BadInput {
            what: "image indices",
            expected: "at least one index".into(),
            found: vec![0],
        });
    }
    let size = data.image_size();
    let mut pixels = data.pixels(indices)?;
    if augment != Augment::None {
        let mut rng =
            ChaCha8Rng::seed_from_u64(seed ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03).rotate_left(17));
        for image in pixels.chunks_mut(3 * size * size) {
            augment.apply(image, size, &mut rng);
        }
    }
    Ok(pixels.into_iter().map(|p| f32::from(p) / 127.5 - 1.0).collect())
}

/// [`batch_pixels`] as a `(n, 3, size, size)` tensor on `device`.
pub fn batch(
    data: &dyn Dataset,
    indices: &[usize],
    augment: Augment,
    seed: u64,
    step: u64,
    device: &Device,
) -> Result<Tensor> {
    let size = data.image_size();
    let pixels = batch_pixels(data, indices, augment, seed, step)?;
    Ok(Tensor::from_vec(pixels, (indices.len(), 3, size, size), device)?)
}

/// An index out of range as an error.
pub(crate) fn check_index(index: usize, len: usize) -> Result<()> {
    if index >= len {
        return Err(AeganError::BadInput {
            what: "image index",
            expected: format!("below {len}"),
            found: vec![index],
        });
    }
    Ok(())
}

/// The images of a folder (searched recursively), decoded, cropped and resized when they are
/// drawn, as [`crate::data::load_folder`] does for a whole folder at once. At most `capacity`
/// decoded images are kept; the oldest kept is dropped first. Memory stays bounded whatever
/// the folder's size, at the price of decoding again what was dropped.
///
/// The file list is read once, at [`FolderDataset::open`]. A file that cannot be decoded is
/// an error naming it when it is first drawn (`load_folder` skips such files up front instead).
#[derive(Debug)]
pub struct FolderDataset {
    files: Vec<PathBuf>,
    options: LoadOptions,
    description: String,
    kept: Mutex<Kept>,
}

/// Decoded images by index, with their order of arrival.
#[derive(Debug)]
struct Kept {
    images: HashMap<usize, Arc<Vec<u8>>>,
    arrival: VecDeque<usize>,
    capacity: usize,
}

impl Kept {
    fn get(&self, index: usize) -> Option<Arc<Vec<u8>>> {
        self.images.get(&index).cloned()
    }

    fn insert(&mut self, index: usize, image: Arc<Vec<u8>>) {
        if self.capacity == 0 || self.images.contains_key(&index) {
            return;
        }
        while self.images.len() >= self.capacity {
            match self.arrival.pop_front() {
                Some(oldest) => {
                    self.images.remove(&oldest);
                }
                None => break,
            }
        }
        self.images.insert(index, image);
        self.arrival.push_back(index);
    }
}

impl FolderDataset {
    /// The image files under `dir`, to be loaded with `options` (its size, background and
    /// filter; its cache and verbosity do not apply), keeping at most `capacity` decoded
    /// images. A folder without files is an error naming it.
    pub fn open(dir: &Path, options: &LoadOptions, capacity: usize) -> Result<Self> {
        super::folder::check_load_size(options)?;
        let files = list_files(dir)?;
        if files.is_empty() {
            return Err(AeganError::NoImages {
                path: dir.to_path_buf(),
                skipped: 0,
                hint: String::new(),
            });
        }
        Ok(FolderDataset {
            files,
            options: options.clone(),
            description: format!("images from {}, decoded as drawn", dir.display()),
            kept: Mutex::new(Kept {
                images: HashMap::new(),
                arrival: VecDeque::new(),
                capacity,
            }),
        })
    }

    /// The file of image `index`.
    pub fn file(&self, index: usize) -> Option<&Path> {
        self.files.get(index).map(PathBuf::as_path)
    }

    /// Decoded images kept now (at most the capacity).
    pub fn kept(&self) -> usize {
        self.lock().images.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // A panic while holding the lock leaves a consistent map: keep using it.
        self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn decode(&self, index: usize) -> Result<Arc<Vec<u8>>> {
        if let Some(image) = self.lock().get(index) {
            return Ok(image);
        }
        let rgb = load_image(&self.files[index], &self.options)?;
        let plane = rgb.as_raw().len() / 3;
        let mut channel_first = vec![0u8; 3 * plane];
        for (i, p) in rgb.pixels().enumerate() {
            for c in 0..3 {
                channel_first[c * plane + i] = p[c];
            }
        }
        let image = Arc::new(channel_first);
        self.lock().insert(index, image.clone());
        Ok(image)
    }
}

impl Dataset for FolderDataset {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn image_size(&self) -> usize {
        self.options.size
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn pixels(&self, indices: &[usize]) -> Result<Vec<u8>> {
        for &i in indices {
            check_index(i, self.files.len())?;
        }
        let images = indices
            .par_iter()
            .map(|&i| self.decode(i))
            .collect::<Result<Vec<_>>>()?;
        Ok(images.iter().flat_map(|im| im.iter().copied()).collect())
    }
}
