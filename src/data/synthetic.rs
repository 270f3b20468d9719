//! Built-in **synthetic** image sets, deterministic from a seed, so that the library, its tests
//! and its examples run without any download. They are drawn by simple procedures: they are
//! not medical images and say so in their description.

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::ImageSet;

/// `n` synthetic lesion-like images of `size`×`size`: an irregular pigmented blob with a darker
/// core on a textured, vignetted skin-toned background, sometimes crossed by a hair.
pub fn lesions(n: usize, size: usize, seed: u64) -> ImageSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let images: Vec<RgbImage> = (0..n).map(|_| lesion(size, &mut rng)).collect();
    ImageSet::from_rgb(
        &images,
        "synthetic lesions (procedurally drawn, not real dermoscopy)",
    )
    .unwrap_or_else(|_| unreachable!("all synthetic images have the same size"))
}

/// `n` synthetic sprite-like images of `size`×`size`: a left-right symmetric pixel figure with
/// a dark outline, in two or three colours, on a flat light background.
pub fn sprites(n: usize, size: usize, seed: u64) -> ImageSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let images: Vec<RgbImage> = (0..n).map(|_| sprite(size, &mut rng)).collect();
    ImageSet::from_rgb(
        &images,
        "synthetic sprites (procedurally drawn, not real game art)",
    )
    .unwrap_or_else(|_| unreachable!("all synthetic images have the same size"))
}

/// Smooth random texture: bilinear interpolation of a random `cells`×`cells` grid.
struct ValueNoise {
    cells: usize,
    values: Vec<f32>,
}

impl ValueNoise {
    fn new(cells: usize, rng: &mut ChaCha8Rng) -> Self {
        let values = (0..(cells + 1) * (cells + 1))
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        ValueNoise { cells, values }
    }

    /// Value at (u, v) in [0, 1]².
    fn at(&self, u: f32, v: f32) -> f32 {
        let (x, y) = (u * self.cells as f32, v * self.cells as f32);
        let (x0, y0) = ((x as usize).min(self.cells - 1), (y as usize).min(self.cells - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let w = self.cells + 1;
        let g = |i: usize, j: usize| self.values[j * w + i];
        let top = g(x0, y0) * (1.0 - fx) + g(x0 + 1, y0) * fx;
        let bottom = g(x0, y0 + 1) * (1.0 - fx) + g(x0 + 1, y0 + 1) * fx;
        top * (1.0 - fy) + bottom * fy
    }
}

fn smoothstep(edge0: f32, edge1: f32, x: f32) -> f32 {
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn lesion(size: usize, rng: &mut ChaCha8Rng) -> RgbImage {
    let r: f32 = rng.random_range(0.72..0.95);
    let skin = [
        r,
        r * rng.random_range(0.62..0.8),
        r * rng.random_range(0.5..0.68),
    ];
    let brown = [
        rng.random_range(0.28..0.55),
        rng.random_range(0.15..0.32),
        rng.random_range(0.08..0.22),
    ];
    let core = brown.map(|c| c * rng.random_range(0.4..0.75));
    let coarse = ValueNoise::new(4, rng);
    let fine = ValueNoise::new(12, rng);
    let pigment = ValueNoise::new(6, rng);
    let vignette: f32 = rng.random_range(0.0..0.35);

    let (cx, cy) = (rng.random_range(0.4..0.6), rng.random_range(0.4..0.6));
    let radius: f32 = rng.random_range(0.14..0.34);
    let harmonics: Vec<(f32, f32, f32)> = (2..=6)
        .map(|k| {
            (
                k as f32,
                rng.random_range(0.0..0.12),
                rng.random_range(0.0..std::f32::consts::TAU),
            )
        })
        .collect();
    let softness: f32 = rng.random_range(0.01..0.05);
    let hair = rng.random_bool(0.3).then(|| {
        let angle: f32 = rng.random_range(0.0..std::f32::consts::PI);
        let offset: f32 = rng.random_range(-0.4..0.4);
        (angle.cos(), angle.sin(), offset)
    });

    RgbImage::from_fn(size as u32, size as u32, |px, py| {
        let u = (px as f32 + 0.5) / size as f32;
        let v = (py as f32 + 0.5) / size as f32;
        let texture = 1.0 + 0.06 * coarse.at(u, v) + 0.03 * fine.at(u, v);
        let edge_dist = ((u - 0.5).powi(2) + (v - 0.5).powi(2)).sqrt();
        let shade = texture * (1.0 - vignette * smoothstep(0.35, 0.75, edge_dist));

        let (dx, dy) = (u - cx, v - cy);
        let d = (dx * dx + dy * dy).sqrt();
        let theta = dy.atan2(dx);
        let boundary = radius
            * (1.0
                + harmonics
                    .iter()
                    .map(|(k, a, p)| a * (k * theta + p).sin())
                    .sum::<f32>());
        let inside = 1.0 - smoothstep(boundary - softness, boundary + softness, d);
        let depth = (1.0 - d / boundary.max(1e-3)).clamp(0.0, 1.0) * (0.7 + 0.3 * pigment.at(u, v));

        let mut rgb = [0f32; 3];
        for c in 0..3 {
            let lesion_colour = brown[c] * (1.0 - depth) + core[c] * depth;
            rgb[c] = (skin[c] * (1.0 - inside) + lesion_colour * inside) * shade;
        }
        if let Some((nx, ny, offset)) = hair {
            let dist = ((u - 0.5) * -ny + (v - 0.5) * nx - offset).abs();
            let hair_weight = 1.0 - smoothstep(0.0, 1.2 / size as f32, dist);
            rgb = rgb.map(|c| c * (1.0 - 0.8 * hair_weight));
        }
        Rgb(rgb.map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8))
    })
}

fn sprite(size: usize, rng: &mut ChaCha8Rng) -> RgbImage {
    if size == 0 {
        return RgbImage::new(0, 0);
    }
    let cells = size.min(16);
    let scale = size / cells;
    let half = cells.div_ceil(2);
    let random_colour = |rng: &mut ChaCha8Rng| -> [u8; 3] {
        [
            rng.random_range(30..230),
            rng.random_range(30..230),
            rng.random_range(30..230),
        ]
    };
    let palette = [random_colour(rng), random_colour(rng), random_colour(rng)];
    let background: [u8; 3] = if rng.random_bool(0.5) {
        [255, 255, 255]
    } else {
        let g = rng.random_range(200..250);
        [g, g, rng.random_range(200..250)]
    };

    // Cell grid: 0 empty, 1..=3 palette colours. The left half is random (denser towards the
    // centre) and mirrored to the right.
    let margin = (cells / 8).max(1);
    let mut grid = vec![0u8; cells * cells];
    for y in margin..cells - margin {
        for x in margin..half {
            let centre_dist = ((x as f32 + 0.5 - cells as f32 / 2.0).abs()
                + (y as f32 + 0.5 - cells as f32 / 2.0).abs())
                / cells as f32;
            if rng.random_bool(f64::from((0.85 - centre_dist * 1.2).clamp(0.05, 0.9))) {
                let colour = rng.random_range(1..=3u8);
                grid[y * cells + x] = colour;
                grid[y * cells + (cells - 1 - x)] = colour;
            }
        }
    }
    let filled = |x: isize, y: isize| {
        x >= 0
            && y >= 0
            && (x as usize) < cells
            && (y as usize) < cells
            && grid[y as usize * cells + x as usize] != 0
    };
    RgbImage::from_fn(size as u32, size as u32, |px, py| {
        let (x, y) = (
            (px as usize / scale).min(cells - 1),
            (py as usize / scale).min(cells - 1),
        );
        let cell = grid[y * cells + x];
        if cell != 0 {
            return Rgb(palette[usize::from(cell) - 1]);
        }
        let (xi, yi) = (x as isize, y as isize);
        let outline = [(-1, 0), (1, 0), (0, -1), (0, 1)]
            .iter()
            .any(|(ox, oy)| filled(xi + ox, yi + oy));
        Rgb(if outline { [20, 16, 24] } else { background })
    })
}
