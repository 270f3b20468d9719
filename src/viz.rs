//! Pictures: image grids written as PNG.

use std::io::Cursor;
use std::path::Path;

use candle_core::{DType, Tensor};
use image::{DynamicImage, ImageFormat, RgbImage};

use crate::checkpoint::write_atomic;
use crate::error::{AeganError, Result};

/// Converts a batch `(n, channels, h, w)` with values in [−1, 1] to 8-bit RGB images
/// (one channel is shown as grey; a fourth channel is dropped).
pub fn to_rgb_images(images: &Tensor) -> Result<Vec<RgbImage>> {
    let (n, c, h, w) = images.dims4()?;
    let data = images.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let to_u8 = |v: f32| (((v + 1.0) * 127.5).round().clamp(0.0, 255.0)) as u8;
    Ok((0..n)
        .map(|i| {
            let base = i * c * h * w;
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let at = |ch: usize| data[base + ch.min(c - 1) * h * w + y as usize * w + x as usize];
                image::Rgb([to_u8(at(0)), to_u8(at(1)), to_u8(at(2))])
            })
        })
        .collect())
}

/// Lays out `images` (values in [−1, 1]) in a grid `columns` wide with a 2-pixel grey border,
/// each image enlarged `zoom` times with nearest-neighbour pixels so small images stay readable.
pub fn grid(images: &Tensor, columns: usize, zoom: usize) -> Result<RgbImage> {
    let tiles = to_rgb_images(images)?;
    let columns = columns.clamp(1, tiles.len().max(1));
    let rows = tiles.len().div_ceil(columns);
    let (_, _, h, w) = images.dims4()?;
    let (tw, th) = (w * zoom.max(1), h * zoom.max(1));
    let gap = 2;
    let mut out = RgbImage::from_pixel(
        (columns * (tw + gap) + gap) as u32,
        (rows * (th + gap) + gap) as u32,
        image::Rgb([128, 128, 128]),
    );
    for (i, tile) in tiles.iter().enumerate() {
        let (ox, oy) = (gap + (i % columns) * (tw + gap), gap + (i / columns) * (th + gap));
        for y in 0..th {
            for x in 0..tw {
                let p = *tile.get_pixel((x / zoom.max(1)) as u32, (y / zoom.max(1)) as u32);
                out.put_pixel((ox + x) as u32, (oy + y) as u32, p);
            }
        }
    }
    Ok(out)
}

/// Writes [`grid`] of `images` to `path` as PNG, atomically.
pub fn save_grid(images: &Tensor, columns: usize, zoom: usize, path: impl AsRef<Path>) -> Result<()> {
    save_png(&grid(images, columns, zoom)?, path)
}

/// Writes an RGB image to `path` as PNG, atomically (a kill never leaves half a file).
pub fn save_png(image: &RgbImage, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let mut bytes = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image.clone())
        .write_to(&mut bytes, ImageFormat::Png)
        .map_err(|source| AeganError::Image {
            path: path.to_path_buf(),
            source,
        })?;
    write_atomic(path, bytes.get_ref())
}
