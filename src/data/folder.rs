//! Loading a folder of images: recursive, every format the `image` crate reads, converted to
//! 8-bit RGB, centre-cropped to a square and resized to the model size. Unreadable files are
//! skipped with one warning each; decoding runs in parallel; results are cached on disk.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{DynamicImage, ImageReader, RgbImage, RgbaImage};
use rayon::prelude::*;

use super::cache;
use crate::error::{AeganError, Result};

pub use super::loaded::{default_cache_dir, LoadOptions, LoadedImages, Resample, Skipped};

/// Every regular file under `dir`, recursively, sorted by path (hidden entries skipped).
/// Symbolic links to folders are followed, each folder once, so a link loop ends.
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut visited = std::collections::HashSet::new();
    while let Some(d) = stack.pop() {
        let identity = std::fs::canonicalize(&d).map_err(|e| AeganError::io(&d, e))?;
        if !visited.insert(identity) {
            continue;
        }
        let entries = std::fs::read_dir(&d).map_err(|e| AeganError::io(&d, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| AeganError::io(&d, e))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let file_type = entry.file_type().map_err(|e| AeganError::io(&path, e))?;
            if file_type.is_dir() || (file_type.is_symlink() && path.is_dir()) {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Loads every image under `dir` (recursively). Files that are not images or cannot be
/// decoded are skipped; a folder with no usable image is an error.
pub fn load_folder(dir: &Path, options: &LoadOptions) -> Result<LoadedImages> {
    if !dir.is_dir() {
        return Err(AeganError::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a folder"),
        ));
    }
    let files = list_files(dir)?;
    let loaded = load_files(&files, options)?;
    if loaded.images.is_empty() {
        return Err(AeganError::NoImages {
            path: dir.to_path_buf(),
            skipped: loaded.skipped.len(),
            hint: if files.is_empty() {
                "; the folder is empty".into()
            } else {
                String::new()
            },
        });
    }
    Ok(loaded)
}

/// Loads the given files (in parallel, through the cache when one is configured), skipping
/// the ones that cannot be decoded.
pub fn load_files(files: &[PathBuf], options: &LoadOptions) -> Result<LoadedImages> {
    check_load_size(options)?;
    let key = options.cache_dir.as_ref().map(|_| cache::key(files, options));
    if let (Some(dir), Some(key)) = (&options.cache_dir, &key) {
        if let Some(hit) = cache::read(dir, key, options.size) {
            report(&hit, options);
            return Ok(hit);
        }
    }
    let results: Vec<std::result::Result<Squared, String>> = files
        .par_iter()
        .map(|path| load_square(path, options).map_err(|e| e.to_string()))
        .collect();
    let mut loaded = LoadedImages {
        images: Vec::with_capacity(files.len()),
        paths: Vec::with_capacity(files.len()),
        skipped: Vec::new(),
        file_sizes: Vec::with_capacity(files.len()),
        from_cache: false,
    };
    for (path, result) in files.iter().zip(results) {
        match result {
            Ok((image, file_size)) => {
                loaded.images.push(image);
                loaded.paths.push(path.clone());
                loaded.file_sizes.push(file_size);
            }
            Err(reason) => loaded.skipped.push(Skipped {
                path: path.clone(),
                reason,
            }),
        }
    }
    report(&loaded, options);
    if let (Some(dir), Some(key)) = (&options.cache_dir, &key) {
        if let Err(e) = cache::write(dir, key, &loaded) {
            if options.verbose {
                eprintln!("warning: could not write the image cache: {e}");
            }
        }
    }
    Ok(loaded)
}

fn report(loaded: &LoadedImages, options: &LoadOptions) {
    if !options.verbose {
        return;
    }
    for s in &loaded.skipped {
        eprintln!("warning: skipped {}: {}", s.path.display(), s.reason);
    }
    if !loaded.skipped.is_empty() {
        eprintln!(
            "skipped {} unreadable file(s); loaded {} image(s)",
            loaded.skipped.len(),
            loaded.images.len()
        );
    }
    if options.warn_enlarged {
        if let Some(warning) = enlargement_warning(loaded, options.size) {
            eprintln!("{warning}");
        }
    }
}

/// The warning for a set loaded at a size larger than some of its images, if it was: a model
/// trained at 128×128 on 32×32 files spends its hours learning the enlargement.
pub fn enlargement_warning(loaded: &LoadedImages, size: usize) -> Option<String> {
    let smallest = loaded.smallest_side()?;
    let enlarged = loaded.enlarged();
    (enlarged > 0).then(|| {
        format!(
            "warning: {} of {} images are smaller than {size}×{size} (the smallest {smallest}×{smallest}) \
             and were enlarged to it: a model trained on them learns the enlargement, not detail; \
             train at a size the images have, or give larger images",
            enlarged,
            loaded.images.len()
        )
    })
}

/// A load size of 0 is an error: nothing can be resized to it.
pub(crate) fn check_load_size(options: &LoadOptions) -> Result<()> {
    if options.size == 0 {
        return Err(AeganError::BadInput {
            what: "load size",
            expected: "at least 1 pixel".into(),
            found: vec![0],
        });
    }
    Ok(())
}

/// Decodes one file (format detected from its content), converts it to 8-bit RGB over the
/// background, centre-crops it to a square and resizes it.
pub fn load_image(path: &Path, options: &LoadOptions) -> Result<RgbImage> {
    load_square(path, options).map(|(image, _)| image)
}

/// An image cropped and resized to the load size, with its file's width and height.
type Squared = (RgbImage, (usize, usize));

/// [`load_image`], with the file's width and height before it was cropped and resized.
fn load_square(path: &Path, options: &LoadOptions) -> Result<Squared> {
    check_load_size(options)?;
    let image_error = |source| AeganError::Image {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(|e| AeganError::io(path, e))?;
    if let Some(reason) = truncation(&bytes) {
        return Err(AeganError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, reason),
        ));
    }
    let decoded = ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| AeganError::io(path, e))?
        .decode()
        .map_err(image_error)?;
    if decoded.width() == 0 || decoded.height() == 0 {
        return Err(AeganError::BadInput {
            what: "image",
            expected: "at least 1×1 pixels".into(),
            found: vec![decoded.width() as usize, decoded.height() as usize],
        });
    }
    let file_size = (decoded.width() as usize, decoded.height() as usize);
    let square = centre_crop(&composite(&decoded, options.background));
    Ok((resize_square(&square, options.size, options.resample), file_size))
}

/// Why a JPEG or PNG file is cut short, when it is: decoders fill the missing part of a
/// truncated JPEG with grey and return it without an error, so the end marker is checked
/// here. A JPEG must hold an end-of-image marker (FF D9) after its last start-of-scan (FF DA);
/// entropy-coded data can hold neither, as every FF byte in it is followed by 00 or a restart
/// code. A PNG must hold its IEND chunk. Other formats are left to their decoders.
pub fn truncation(bytes: &[u8]) -> Option<&'static str> {
    let last = |marker: &[u8]| bytes.windows(marker.len()).rposition(|w| w == marker);
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let scan = last(&[0xFF, 0xDA]);
        let end = last(&[0xFF, 0xD9]);
        return match (scan, end) {
            (Some(s), Some(e)) if e > s => None,
            _ => Some("truncated JPEG: no end-of-image marker after the image data"),
        };
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") && last(b"IEND").is_none() {
        return Some("truncated PNG: no IEND chunk");
    }
    None
}

/// Any colour type (grey, 16-bit, palette, alpha) to 8-bit RGB, alpha blended over `background`.
pub fn composite(image: &DynamicImage, background: [u8; 3]) -> RgbImage {
    let rgba: RgbaImage = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u16::from(p[3]);
        let blend = |c: u8, bg: u8| ((u16::from(c) * a + u16::from(bg) * (255 - a) + 127) / 255) as u8;
        image::Rgb([
            blend(p[0], background[0]),
            blend(p[1], background[1]),
            blend(p[2], background[2]),
        ])
    })
}

/// The largest centred square.
pub fn centre_crop(image: &RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    let side = w.min(h);
    image::imageops::crop_imm(image, (w - side) / 2, (h - side) / 2, side, side).to_image()
}

/// Resizes a square image to `size`×`size`.
pub fn resize_square(image: &RgbImage, size: usize, resample: Resample) -> RgbImage {
    let side = image.width() as usize;
    let size32 = size as u32;
    if side == size {
        return image.clone();
    }
    let integer_factor = side.is_multiple_of(size) || size.is_multiple_of(side);
    let filter = match resample {
        Resample::PixelArt if integer_factor => FilterType::Nearest,
        _ => FilterType::Lanczos3,
    };
    if filter == FilterType::Nearest && side > size {
        // Take the pixel at each block's centre: image's Nearest picks a block corner.
        let factor = side / size;
        return RgbImage::from_fn(size32, size32, |x, y| {
            *image.get_pixel(
                x * factor as u32 + factor as u32 / 2,
                y * factor as u32 + factor as u32 / 2,
            )
        });
    }
    image::imageops::resize(image, size32, size32, filter)
}
