//! What loading a folder of images takes and gives: [`LoadOptions`] in, [`LoadedImages`] out
//! (shared by the folder loader and its on-disk cache).

use std::path::{Path, PathBuf};

use image::RgbImage;

use super::categories::{location_of, longest_class, no_category, wrapping_folders, Categories};
use super::ImageSet;
use crate::error::Result;

/// How images are resized to the model size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resample {
    /// Lanczos-3, antialiased when shrinking: for photographs such as dermoscopy.
    Lanczos,
    /// For pixel art: nearest neighbour when the size changes by an integer factor (so
    /// one-pixel outlines stay crisp), Lanczos-3 otherwise.
    PixelArt,
}

/// How to turn files into training images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Side of the square output images.
    pub size: usize,
    /// Colour that transparent pixels are composited onto.
    pub background: [u8; 3],
    /// Resize filter.
    pub resample: Resample,
    /// Where decoded, resized sets are cached (`None`: no cache). See [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// Print one line per skipped file and a summary to standard error.
    pub verbose: bool,
    /// With `verbose`, also warn when images were enlarged to `size` (a model trained on them
    /// learns the enlargement, not detail). Off for tools that report resizing in their own
    /// words, from [`LoadedImages::resized`].
    pub warn_enlarged: bool,
}

impl LoadOptions {
    /// Photographs at `size`, white background, cached in [`default_cache_dir`], verbose,
    /// warning about enlarged images.
    pub fn new(size: usize) -> Self {
        LoadOptions {
            size,
            background: [255, 255, 255],
            resample: Resample::Lanczos,
            cache_dir: default_cache_dir(),
            verbose: true,
            warn_enlarged: true,
        }
    }
}

/// `$AEGAN_CACHE_DIR`, else `$XDG_CACHE_HOME/aegan`, else `~/.cache/aegan`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("AEGAN_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("aegan"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("aegan"))
}

/// A file that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// The decoder's complaint.
    pub reason: String,
}

/// Images decoded from files, with the file each came from.
#[derive(Debug, Clone)]
pub struct LoadedImages {
    /// The images, `size`×`size` RGB.
    pub images: Vec<RgbImage>,
    /// The file of each image (same order).
    pub paths: Vec<PathBuf>,
    /// Files that could not be decoded.
    pub skipped: Vec<Skipped>,
    /// The width and height of each image's file before it was cropped and resized (same
    /// order as `images`): what [`LoadedImages::enlarged`], [`LoadedImages::resized`] and
    /// their companions count.
    pub file_sizes: Vec<(usize, usize)>,
    /// Whether the result came from the on-disk cache.
    pub from_cache: bool,
}

impl LoadedImages {
    /// The side the images were loaded at (`None` when none loaded).
    fn load_side(&self) -> Option<usize> {
        self.images.first().map(|image| image.width() as usize)
    }

    /// How many images were enlarged: their centre square was smaller than the load size, so
    /// the model sees the resampling's blocks or blur instead of detail the files never had.
    pub fn enlarged(&self) -> usize {
        let side = self.load_side().unwrap_or(0);
        self.file_sizes.iter().filter(|&&(w, h)| w.min(h) < side).count()
    }

    /// The side of the smallest image's centre square before resizing (`None` when no image
    /// loaded).
    pub fn smallest_side(&self) -> Option<usize> {
        self.file_sizes.iter().map(|&(w, h)| w.min(h)).min()
    }

    /// The files that were resized, in path order: not of the load size (cropped to their
    /// centre square, then enlarged or shrunk), enlarged ones included.
    fn resized_files(&self) -> impl Iterator<Item = &(usize, usize)> + '_ {
        let side = self.load_side().unwrap_or(0);
        self.file_sizes.iter().filter(move |&&size| size != (side, side))
    }

    /// How many images were resized: their file was not of the load size.
    pub fn resized(&self) -> usize {
        self.resized_files().count()
    }

    /// The width and height of the first resized file (in path order), if any was.
    pub fn resized_example(&self) -> Option<(usize, usize)> {
        self.resized_files().next().copied()
    }

    /// The images as an [`ImageSet`] described by `description`.
    pub fn to_image_set(&self, description: impl Into<String>) -> Result<ImageSet> {
        ImageSet::from_rgb(&self.images, description)
    }

    /// The images as an [`ImageSet`] labelled by category, for class-conditional training.
    /// The category of a file comes from where it lies below `root` (its folders, then the
    /// parts of its name before the last `__`), cut to `categories` (see [`Categories`]):
    /// with [`Categories::TOP`], `mon/orc.png` and `mon__orc.png` are both a `mon`. Class names
    /// are sorted. A file with no category is an error naming it. Folders that every file lies
    /// in ([`LoadedImages::wrapping_folders`]: `sprites/32/` when `root` is `sprites`) are
    /// skipped: they tell no file from another.
    pub fn to_labelled_set(
        &self,
        root: &Path,
        categories: Categories,
        description: impl Into<String>,
    ) -> Result<ImageSet> {
        let categories = categories.assign(&self.category_locations(root)?);
        let mut names = categories.clone();
        names.sort();
        names.dedup();
        let labels = categories
            .iter()
            .map(|c| names.binary_search(c).unwrap_or_default())
            .collect();
        ImageSet::from_rgb(&self.images, description)?.with_labels(labels, names)
    }

    /// The images labelled by a trained model's `classes` (names as
    /// [`LoadedImages::to_labelled_set`] made them): each file gets the longest class that
    /// begins its location, so files of a kind that joined its parent get the parent, at
    /// whatever depth the model was trained. A class may have no image here (a held-out
    /// folder); a file that fits no class is an error naming it and the classes.
    pub fn to_labelled_set_as(
        &self,
        root: &Path,
        classes: &[String],
        description: impl Into<String>,
    ) -> Result<ImageSet> {
        let locations = self.locations(root)?;
        let wrap = wrapping_folders(root, &self.paths, &locations).len();
        let labels = locations
            .iter()
            .zip(&self.paths)
            .map(|(location, path)| {
                // As the folder holds it, or without the folders that wrap the whole set (as
                // the model's classes were made from its training folder).
                longest_class(location, classes)
                    .or_else(|| longest_class(&location[wrap..], classes))
                    .ok_or_else(|| {
                        no_category(
                            path,
                            format!(
                                "its category {} is none of the model's classes ({})",
                                location.join("/"),
                                classes.join(", ")
                            ),
                        )
                    })
            })
            .collect::<Result<Vec<usize>>>()?;
        ImageSet::from_rgb(&self.images, description)?.with_labels(labels, classes.to_vec())
    }

    /// The folders below `root` that wrap every image and so name no category (`32` for a
    /// download whose sprites all lie in `32/`); [`LoadedImages::to_labelled_set`] skips them.
    /// Empty when some image has no category at all.
    pub fn wrapping_folders(&self, root: &Path) -> Vec<String> {
        match self.locations(root) {
            Ok(locations) => wrapping_folders(root, &self.paths, &locations),
            Err(_) => Vec::new(),
        }
    }

    fn locations(&self, root: &Path) -> Result<Vec<Vec<String>>> {
        self.paths.iter().map(|path| location_of(root, path)).collect()
    }

    /// The locations without the folders that wrap the whole set.
    fn category_locations(&self, root: &Path) -> Result<Vec<Vec<String>>> {
        let mut locations = self.locations(root)?;
        let wrap = wrapping_folders(root, &self.paths, &locations).len();
        for location in &mut locations {
            location.drain(..wrap);
        }
        Ok(locations)
    }
}
