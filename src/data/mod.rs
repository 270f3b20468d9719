//! Image data: the [`Dataset`] trait the training loop draws batches from, with [`ImageSet`]
//! (every image in memory, 8-bit) and [`FolderDataset`] (decoded when drawn, a bounded number
//! kept) as its implementations; loaders for image folders and HAM10000; augmentation; and
//! the built-in synthetic sets.
//!
//! candle-datasets is not used: its batcher is not seeded and cannot resume mid-epoch (the
//! [`BatchSampler`] here is a pure function of seed and step), and its hub download cannot run
//! offline, on CI or on air-gapped research machines.

mod augment;
mod cache;
mod categories;
mod dataset;
pub mod folder;
#[cfg(feature = "ham10000")]
pub mod ham10000;
mod loaded;
pub mod synthetic;

pub use augment::Augment;
pub use categories::Categories;
pub use dataset::{batch, batch_pixels, Dataset, FolderDataset};
pub use folder::{load_folder, LoadOptions, LoadedImages, Resample};
#[cfg(feature = "ham10000")]
pub use ham10000::Ham10000;

use candle_core::{Device, Tensor};
use image::RgbImage;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use dataset::check_index;

use crate::error::{AeganError, Result};

/// Square RGB images of one size, in memory: 8-bit, channel-first (a quarter of the memory of
/// f32; batches are converted to f32 in [−1, 1] when drawn).
#[derive(Debug, Clone)]
pub struct ImageSet {
    pixels: Vec<u8>,
    len: usize,
    size: usize,
    description: String,
    classes: Option<Classes>,
}

/// The class of each image of a set, and the classes' names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Classes {
    labels: Vec<usize>,
    names: Vec<String>,
}

impl ImageSet {
    /// Converts 8-bit RGB images, all `size`×`size`, into a set. `description` says where they
    /// came from and is shown wherever the set is reported.
    pub fn from_rgb(images: &[RgbImage], description: impl Into<String>) -> Result<Self> {
        let size = images.first().map(|im| im.width() as usize).unwrap_or(0);
        let mut pixels = Vec::with_capacity(images.len() * 3 * size * size);
        for (i, im) in images.iter().enumerate() {
            if im.width() as usize != size || im.height() as usize != size {
                return Err(AeganError::BadInput {
                    what: "image set",
                    expected: format!("every image {size}×{size} (image {i} differs)"),
                    found: vec![im.width() as usize, im.height() as usize],
                });
            }
            for c in 0..3 {
                pixels.extend(im.pixels().map(|p| p[c]));
            }
        }
        Ok(ImageSet {
            pixels,
            len: images.len(),
            size,
            description: description.into(),
            classes: None,
        })
    }

    /// The same set with a class for each image: `labels[i]` indexes `names`. A label list of
    /// another length than the set, a label without a name, or a repeated name is an error.
    pub fn with_labels(mut self, labels: Vec<usize>, names: Vec<String>) -> Result<Self> {
        if labels.len() != self.len {
            return Err(AeganError::BadInput {
                what: "image labels",
                expected: format!("one label per image ({})", self.len),
                found: vec![labels.len()],
            });
        }
        if let Some(&bad) = labels.iter().find(|&&l| l >= names.len()) {
            return Err(AeganError::BadInput {
                what: "image label",
                expected: format!("below the number of class names ({})", names.len()),
                found: vec![bad],
            });
        }
        let mut sorted = names.clone();
        sorted.sort();
        if let Some(pair) = sorted.windows(2).find(|p| p[0] == p[1]) {
            return Err(AeganError::BadInput {
                what: "class names",
                expected: format!("distinct names ({} is repeated)", pair[0]),
                found: vec![names.len()],
            });
        }
        self.classes = Some(Classes { labels, names });
        Ok(self)
    }

    /// The same set with only the classes that have an image, renumbered in their order (a
    /// set filtered to some diagnoses keeps only those names). Unlabelled sets are unchanged.
    pub fn without_empty_classes(mut self) -> Self {
        if let Some(c) = &mut self.classes {
            let mut new_label = vec![None; c.names.len()];
            let mut names = Vec::new();
            for (old, name) in c.names.iter().enumerate() {
                if c.labels.contains(&old) {
                    new_label[old] = Some(names.len());
                    names.push(name.clone());
                }
            }
            for label in &mut c.labels {
                *label = new_label[*label].unwrap_or(0);
            }
            c.names = names;
        }
        self
    }

    /// The class of each image, when the set has classes.
    pub fn labels(&self) -> Option<&[usize]> {
        self.classes.as_ref().map(|c| c.labels.as_slice())
    }

    /// The classes' names (empty without classes).
    pub fn class_names(&self) -> &[String] {
        self.classes.as_ref().map_or(&[], |c| c.names.as_slice())
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Side of the images in pixels.
    pub fn image_size(&self) -> usize {
        self.size
    }

    /// Where the images came from (for example "synthetic lesions, not real data").
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The images at `indices` as a `(n, 3, size, size)` tensor on `device`; at least one.
    pub fn batch(&self, indices: &[usize], device: &Device) -> Result<Tensor> {
        batch(self, indices, Augment::None, 0, 0, device)
    }

    /// The images at `indices`, augmented: each image gets a transform drawn from a stream
    /// seeded by `seed` and `step`, so the same step always sees the same batch.
    pub fn batch_augmented(
        &self,
        indices: &[usize],
        augment: Augment,
        seed: u64,
        step: u64,
        device: &Device,
    ) -> Result<Tensor> {
        batch(self, indices, augment, seed, step, device)
    }

    /// A new set holding the images at `indices`.
    pub fn select(&self, indices: &[usize]) -> Result<ImageSet> {
        let per = 3 * self.size * self.size;
        let mut pixels = Vec::with_capacity(indices.len() * per);
        for &i in indices {
            check_index(i, self.len)?;
            pixels.extend_from_slice(&self.pixels[i * per..(i + 1) * per]);
        }
        Ok(ImageSet {
            pixels,
            len: indices.len(),
            size: self.size,
            description: self.description.clone(),
            classes: self.classes.as_ref().map(|c| Classes {
                labels: indices.iter().map(|&i| c.labels[i]).collect(),
                names: c.names.clone(),
            }),
        })
    }

    /// Every image as one `(len, 3, size, size)` tensor in [−1, 1].
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        let values: Vec<f32> = self.pixels.iter().map(|&p| f32::from(p) / 127.5 - 1.0).collect();
        Ok(Tensor::from_vec(
            values,
            (self.len, 3, self.size, self.size),
            device,
        )?)
    }
}

impl Dataset for ImageSet {
    fn len(&self) -> usize {
        self.len
    }

    fn image_size(&self) -> usize {
        self.size
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn pixels(&self, indices: &[usize]) -> Result<Vec<u8>> {
        Ok(self.select(indices)?.pixels)
    }

    fn class_names(&self) -> &[String] {
        ImageSet::class_names(self)
    }

    fn labels_of(&self, indices: &[usize]) -> Result<Option<Vec<usize>>> {
        for &i in indices {
            dataset::check_index(i, self.len)?;
        }
        Ok(self
            .labels()
            .map(|labels| indices.iter().map(|&i| labels[i]).collect()))
    }
}

/// Shuffled mini-batches, epoch after epoch, from a seeded stream: the order depends only on
/// the seed, the set size and the batch size, so a run can be repeated or resumed.
#[derive(Debug, Clone)]
pub struct BatchSampler {
    len: usize,
    batch_size: usize,
    seed: u64,
}

impl BatchSampler {
    /// Batches of `batch_size` from a set of `len` images; the last partial batch of each
    /// epoch is dropped so every batch has the same size.
    pub fn new(len: usize, batch_size: usize, seed: u64) -> Result<Self> {
        if batch_size == 0 || len < batch_size {
            return Err(AeganError::BadInput {
                what: "batch size",
                expected: format!("from 1 to the number of images ({len})"),
                found: vec![batch_size],
            });
        }
        Ok(BatchSampler {
            len,
            batch_size,
            seed,
        })
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.len / self.batch_size
    }

    /// The indices of global batch number `step` (0-based, counting across epochs).
    pub fn batch(&self, step: u64) -> Vec<usize> {
        let per_epoch = self.batches_per_epoch() as u64;
        let epoch = step / per_epoch;
        let within = (step % per_epoch) as usize;
        let mut order: Vec<usize> = (0..self.len).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            self.seed.wrapping_add(epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        ));
        order[within * self.batch_size..(within + 1) * self.batch_size].to_vec()
    }
}

/// Batches in which every class is equally likely, however rare (HAM10000 holds 58 naevi for
/// each dermatofibroma): each slot of a batch draws a class uniformly among those that have
/// images, then an image of it uniformly, with replacement. A pure function of the seed and
/// the step, like [`BatchSampler`], so a run can be repeated or resumed exactly.
#[derive(Debug, Clone)]
pub struct ClassBalancedSampler {
    by_class: Vec<Vec<usize>>,
    batch_size: usize,
    seed: u64,
}

impl ClassBalancedSampler {
    /// Batches of `batch_size` from images whose classes are `labels`. No image, or a batch
    /// size of 0, is an error.
    pub fn new(labels: &[usize], batch_size: usize, seed: u64) -> Result<Self> {
        if labels.is_empty() || batch_size == 0 {
            return Err(AeganError::BadInput {
                what: "class-balanced sampler",
                expected: "at least one labelled image and a batch size of at least 1".into(),
                found: vec![labels.len(), batch_size],
            });
        }
        let classes = labels.iter().max().map_or(0, |m| m + 1);
        let mut by_class = vec![Vec::new(); classes];
        for (i, &l) in labels.iter().enumerate() {
            by_class[l].push(i);
        }
        by_class.retain(|members| !members.is_empty());
        Ok(ClassBalancedSampler {
            by_class,
            batch_size,
            seed,
        })
    }

    /// The indices of batch number `step`.
    pub fn batch(&self, step: u64) -> Vec<usize> {
        use rand::Rng;
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.seed ^ step.wrapping_mul(0xA076_1D64_78BD_642F).rotate_left(29));
        (0..self.batch_size)
            .map(|_| {
                let members = &self.by_class[rng.random_range(0..self.by_class.len())];
                members[rng.random_range(0..members.len())]
            })
            .collect()
    }
}
