//! On-disk cache of decoded, resized image sets, so that a second run starts in seconds.
//!
//! The key covers every file's path, size and modification time and every load option, so any
//! change to the folder or the options misses the cache. A damaged cache file is ignored.

use std::io::Read;
use std::path::{Path, PathBuf};

use image::RgbImage;

use super::loaded::{LoadOptions, LoadedImages, Skipped};
use crate::error::Result;
use crate::io::fnv1a;
use crate::io::write_atomic;

// Version 2 added the enlarged count and the smallest side, version 3 each image's file size
// in their place; a file of an older version misses.
const MAGIC: &[u8; 8] = b"AEGANIM3";

/// The cache key of loading `files` with `options`.
pub(crate) fn key(files: &[PathBuf], options: &LoadOptions) -> String {
    let mut text = format!(
        "v3|{}|{:?}|{:?}\n",
        options.size, options.background, options.resample
    );
    for f in files {
        let (len, modified) = match std::fs::metadata(f) {
            Ok(m) => (
                m.len(),
                m.modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            ),
            Err(_) => (u64::MAX, 0),
        };
        text.push_str(&format!("{}|{len}|{modified}\n", f.display()));
    }
    // Two independent 64-bit hashes make an accidental collision negligible.
    let reversed: Vec<u8> = text.bytes().rev().collect();
    format!("{:016x}{:016x}", fnv1a(text.as_bytes()), fnv1a(&reversed))
}

fn file_for(dir: &Path, key: &str, size: usize) -> PathBuf {
    dir.join(format!("images-{size}px-{key}.bin"))
}

/// The cached result for `key`, if a complete cache file exists.
pub(crate) fn read(dir: &Path, key: &str, size: usize) -> Option<LoadedImages> {
    let mut bytes = Vec::new();
    std::fs::File::open(file_for(dir, key, size))
        .ok()?
        .read_to_end(&mut bytes)
        .ok()?;
    let mut r = Reader { bytes: &bytes, at: 0 };
    if r.take(8)? != MAGIC || r.u64()? as usize != size {
        return None;
    }
    let count = r.u64()? as usize;
    // A damaged count must not allocate: no more images than the bytes left could hold.
    let image_bytes = size.checked_mul(size)?.checked_mul(3)?;
    let capacity = count.min(r.remaining() / (image_bytes + 8).max(1));
    let mut images = Vec::with_capacity(capacity);
    let mut paths = Vec::with_capacity(capacity);
    for _ in 0..count {
        paths.push(PathBuf::from(r.string()?));
        images.push(RgbImage::from_raw(
            size as u32,
            size as u32,
            r.take(image_bytes)?.to_vec(),
        )?);
    }
    let skipped_count = r.u64()? as usize;
    let mut skipped = Vec::with_capacity(skipped_count.min(r.remaining() / 16));
    for _ in 0..skipped_count {
        skipped.push(Skipped {
            path: PathBuf::from(r.string()?),
            reason: r.string()?,
        });
    }
    let mut file_sizes = Vec::with_capacity(images.len());
    for _ in 0..images.len() {
        file_sizes.push((r.u64()? as usize, r.u64()? as usize));
    }
    (r.at == bytes.len()).then_some(LoadedImages {
        images,
        paths,
        skipped,
        file_sizes,
        from_cache: true,
    })
}

/// Stores `loaded` under `key`, atomically. Nothing is stored when a path is not valid UTF-8:
/// the cache keeps paths as text, and one read back altered would no longer name its file.
pub(crate) fn write(dir: &Path, key: &str, loaded: &LoadedImages) -> Result<()> {
    let mut all_paths = loaded.paths.iter().chain(loaded.skipped.iter().map(|s| &s.path));
    if all_paths.any(|p| p.to_str().is_none()) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| crate::AeganError::io(dir, e))?;
    let size = loaded.images.first().map(|i| i.width() as usize).unwrap_or(0);
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(size as u64).to_le_bytes());
    out.extend_from_slice(&(loaded.images.len() as u64).to_le_bytes());
    let put_str = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    for (image, path) in loaded.images.iter().zip(&loaded.paths) {
        put_str(&mut out, &path.to_string_lossy());
        out.extend_from_slice(image.as_raw());
    }
    out.extend_from_slice(&(loaded.skipped.len() as u64).to_le_bytes());
    for s in &loaded.skipped {
        put_str(&mut out, &s.path.to_string_lossy());
        put_str(&mut out, &s.reason);
    }
    for &(width, height) in &loaded.file_sizes {
        out.extend_from_slice(&(width as u64).to_le_bytes());
        out.extend_from_slice(&(height as u64).to_le_bytes());
    }
    write_atomic(&file_for(dir, key, size), &out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.at)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<String> {
        let n = self.u64()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}
