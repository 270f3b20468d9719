//! Pictures: image grids written as PNG.

use std::io::Cursor;
use std::path::Path;

use candle_core::{DType, Tensor};
use image::{DynamicImage, ImageFormat, RgbImage};

use crate::error::{AeganError, Result};
use crate::io::write_atomic;

/// Converts a batch `(n, channels, h, w)` with values in [−1, 1] to 8-bit RGB images
/// (one channel is shown as grey; a fourth channel is dropped).
pub fn to_rgb_images(images: &Tensor) -> Result<Vec<RgbImage>> {
    let (n, c, h, w) = images.dims4()?;
    if c == 0 {
        return Err(AeganError::BadInput {
            what: "images",
            expected: "(n, channels >= 1, h, w)".into(),
            found: images.dims().to_vec(),
        });
    }
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

/// The most pixels [`grid`] lays out (2²⁸, 768 MiB as RGB): a larger grid is an error naming
/// its size, not an allocation the machine may not have.
pub const MAX_GRID_PIXELS: usize = 1 << 28;

/// Lays out `images` (values in [−1, 1]) in a grid `columns` wide with a 2-pixel grey border,
/// each image enlarged `zoom` times with nearest-neighbour pixels so small images stay readable.
/// A grid of more than [`MAX_GRID_PIXELS`] is an error.
pub fn grid(images: &Tensor, columns: usize, zoom: usize) -> Result<RgbImage> {
    let (n, _, h, w) = images.dims4()?;
    let columns = columns.clamp(1, n.max(1));
    let rows = n.div_ceil(columns);
    let (tw, th) = (w.saturating_mul(zoom.max(1)), h.saturating_mul(zoom.max(1)));
    let gap = 2;
    let side = |count: usize, tile: usize| count.saturating_mul(tile.saturating_add(gap)).saturating_add(gap);
    let (width, height) = (side(columns, tw), side(rows, th));
    if width.saturating_mul(height) > MAX_GRID_PIXELS {
        return Err(AeganError::BadInput {
            what: "image grid",
            expected: format!(
                "at most {MAX_GRID_PIXELS} pixels (fewer images, fewer per row or a smaller zoom than {zoom})"
            ),
            found: vec![width, height],
        });
    }
    let tiles = to_rgb_images(images)?;
    let mut out = RgbImage::from_pixel(width as u32, height as u32, image::Rgb([128, 128, 128]));
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

#[cfg(feature = "plots")]
/// Writes [`grid`] of `images` to `path` with a caption band above it reading `label` (e.g.
/// the resolution and step of a progressive run). Without a system font the caption is left
/// out and the grid is written alone.
pub fn save_labelled_grid(
    images: &Tensor,
    columns: usize,
    zoom: usize,
    label: &str,
    path: impl AsRef<Path>,
) -> Result<()> {
    let tiles = grid(images, columns, zoom)?;
    let band = 22u32;
    let (w, h) = tiles.dimensions();
    let canvas = (w.max(160), h + band);
    save_with_text(&tiles, canvas, (0, band), 15, &[(label, (4, 3))], path.as_ref())
}

#[cfg(feature = "plots")]
/// Writes [`grid`] of `images`, `columns` per row, with the name of each row's class in a
/// band on its left: `row_names[r]` labels row r (a class-conditional model's samples, one
/// row per class). Without a system font the names are left out and the grid goes alone.
/// Images that do not fill exactly one row of `columns` per name are an error: a label must
/// never stand beside another class's images.
pub fn save_class_rows(
    images: &Tensor,
    row_names: &[String],
    columns: usize,
    zoom: usize,
    path: impl AsRef<Path>,
) -> Result<()> {
    let count = images.dim(0)?;
    if columns == 0 || count != row_names.len() * columns {
        return Err(crate::AeganError::BadInput {
            what: "class rows (one row of `columns` images per class name)",
            expected: format!("{} × {columns} images", row_names.len()),
            found: images.dims().to_vec(),
        });
    }
    let tiles = grid(images, columns, zoom)?;
    let longest = row_names.iter().map(|n| n.chars().count()).max().unwrap_or(0) as u32;
    let band = 8 + 8 * longest;
    let (w, h) = tiles.dimensions();
    let rows = images.dim(0)?.div_ceil(columns.max(1)).max(1) as u32;
    let row_height = (h - 2) / rows;
    let texts: Vec<(&str, (i32, i32))> = (row_names.iter().enumerate().take(rows as usize))
        .map(|(r, name)| {
            let y = 2 + r as u32 * row_height + row_height / 2;
            (name.as_str(), (4, y.saturating_sub(7) as i32))
        })
        .collect();
    save_with_text(&tiles, (w + band, h), (band, 0), 13, &texts, path.as_ref())
}

#[cfg(feature = "plots")]
/// Writes [`grid`] of `images`, one column per name in `column_names`, with each column's name
/// in a band above it (for example an image, its reconstruction, then the image drawn as
/// each class). Without a system font the names are left out and the grid goes alone. Images
/// that do not fill whole rows of one image per name are an error.
pub fn save_column_labelled_grid(
    images: &Tensor,
    column_names: &[String],
    zoom: usize,
    path: impl AsRef<Path>,
) -> Result<()> {
    let count = images.dim(0)?;
    let columns = column_names.len();
    if columns == 0 || count == 0 || count % columns != 0 {
        return Err(crate::AeganError::BadInput {
            what: "labelled columns (whole rows of one image per column name)",
            expected: format!("a multiple of {columns} images"),
            found: images.dims().to_vec(),
        });
    }
    let tiles = grid(images, columns, zoom)?;
    let band = 20u32;
    let (w, h) = tiles.dimensions();
    let column_width = (w - 2) / columns as u32;
    let texts: Vec<(&str, (i32, i32))> = (column_names.iter().enumerate())
        .map(|(c, name)| (name.as_str(), ((2 + c as u32 * column_width) as i32, 3)))
        .collect();
    save_with_text(&tiles, (w, h + band), (0, band), 13, &texts, path.as_ref())
}

#[cfg(feature = "plots")]
/// Writes `tiles` at `tiles_at` on a white canvas of `canvas` pixels, with each text drawn at
/// its position in a sans-serif font of `font_size`. Without a system font (or with no text)
/// the tiles are written alone.
fn save_with_text(
    tiles: &RgbImage,
    canvas: (u32, u32),
    tiles_at: (u32, u32),
    font_size: u32,
    texts: &[(&str, (i32, i32))],
    path: &Path,
) -> Result<()> {
    use plotters::prelude::*;
    if !chart_font_available() || texts.is_empty() {
        return save_png(tiles, path);
    }
    let plot_error = |reason: String| AeganError::Plot {
        path: path.to_path_buf(),
        reason,
    };
    let mut buffer = vec![255u8; canvas.0 as usize * canvas.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, canvas).into_drawing_area();
        let font = ("sans-serif", font_size).into_font().color(&BLACK);
        for (text, at) in texts {
            root.draw_text(text, &font, *at)
                .map_err(|e| plot_error(e.to_string()))?;
        }
        root.present().map_err(|e| plot_error(e.to_string()))?;
    }
    let mut out = RgbImage::from_raw(canvas.0, canvas.1, buffer)
        .ok_or_else(|| plot_error("text buffer has the wrong size".into()))?;
    image::imageops::replace(&mut out, tiles, i64::from(tiles_at.0), i64::from(tiles_at.1));
    save_png(&out, path)
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

#[cfg(feature = "plots")]
/// One named series of (step, value) points for [`save_curves`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points, in step order.
    pub points: Vec<(f64, f64)>,
}

#[cfg(feature = "plots")]
/// A panel of [`save_curves`]: a title and its series.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Caption.
    pub title: String,
    /// Curves drawn in this panel.
    pub series: Vec<Series>,
}

#[cfg(feature = "plots")]
/// Registers a system sans-serif font for chart text once; false if none was found (charts are
/// then drawn without text).
fn chart_font_available() -> bool {
    static FONT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FONT.get_or_init(|| {
        let candidates = [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/Library/Fonts/Arial.ttf",
            "/System/Library/Fonts/Supplemental/Arial.ttf",
            "C:\\Windows\\Fonts\\arial.ttf",
        ];
        candidates.iter().any(|path| match std::fs::read(path) {
            Ok(bytes) => {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes)
                    .is_ok()
            }
            Err(_) => false,
        })
    })
}

#[cfg(feature = "plots")]
/// Draws panels of line charts side by side (x: training step) and writes them as a PNG.
pub fn save_curves(panels: &[Panel], path: impl AsRef<Path>) -> Result<()> {
    use plotters::prelude::*;
    let path = path.as_ref();
    let (panel_w, h) = (480u32, 360u32);
    let w = panel_w * panels.len().max(1) as u32;
    let mut buffer = vec![255u8; (w * h * 3) as usize];
    let text = chart_font_available();
    let plot_error = |reason: String| AeganError::Plot {
        path: path.to_path_buf(),
        reason,
    };
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        let areas = root.split_evenly((1, panels.len().max(1)));
        let palette = [
            RGBColor(31, 119, 180),
            RGBColor(255, 127, 14),
            RGBColor(44, 160, 44),
            RGBColor(214, 39, 40),
            RGBColor(148, 103, 189),
            RGBColor(140, 86, 75),
        ];
        for (panel, area) in panels.iter().zip(areas.iter()) {
            let all = panel.series.iter().flat_map(|s| s.points.iter());
            let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
            for &(x, y) in all.filter(|(_, y)| y.is_finite()) {
                (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
            }
            if x0 > x1 {
                continue;
            }
            if x1 <= x0 {
                x1 = x0 + 1.0;
            }
            let pad = ((y1 - y0) * 0.05).max(1e-6);
            let mut builder = ChartBuilder::on(area);
            builder.margin(10);
            if text {
                builder
                    .caption(&panel.title, ("sans-serif", 18))
                    .x_label_area_size(30)
                    .y_label_area_size(45);
            }
            let mut chart = builder
                .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
                .map_err(|e| plot_error(e.to_string()))?;
            if text {
                chart
                    .configure_mesh()
                    .x_desc("step")
                    .label_style(("sans-serif", 12))
                    .draw()
                    .map_err(|e| plot_error(e.to_string()))?;
            }
            for (i, series) in panel.series.iter().enumerate() {
                let colour = palette[i % palette.len()];
                let drawn = chart
                    .draw_series(LineSeries::new(
                        series.points.iter().copied().filter(|(_, y)| y.is_finite()),
                        colour.stroke_width(2),
                    ))
                    .map_err(|e| plot_error(e.to_string()))?;
                if text {
                    drawn.label(series.name.as_str()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                    });
                }
            }
            if text {
                chart
                    .configure_series_labels()
                    .label_font(("sans-serif", 12))
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| plot_error(e.to_string()))?;
            }
        }
        root.present().map_err(|e| plot_error(e.to_string()))?;
    }
    let image = RgbImage::from_raw(w, h, buffer).ok_or_else(|| plot_error("buffer size".into()))?;
    save_png(&image, path)
}
