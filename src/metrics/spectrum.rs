//! Power per frequency ring: at which spatial frequencies a generated set holds more or less
//! power than a real one.
//!
//! The checker ratio ([`super::checker`]) reads three bins at the Nyquist frequencies; this
//! reads them all. For each square image the grey image (mean of the channels, minus its mean)
//! is split into its periodic and smooth components (Moisan 2011, as in [`super::checker`], so
//! that the jump between opposite edges does not leak into every frequency), the periodic
//! component is transformed by a 2-D DFT, and its power is averaged over the bins of each ring
//! k = max(|f_y|, |f_x|) for k = 1 to H/2 (f in cycles per image, |f| ≤ H/2). A set's ring
//! power is the mean over its images; [`ring_power_ratio`] divides a generated set's by a real
//! one's (1 at every ring: the same spectrum). A generator whose upsampling passes some
//! frequencies at low gain shows dips at those rings (nearest-neighbour ×2 at each stage's
//! Nyquist frequency), a blurry one a ratio falling towards the outer rings, a checkerboard a
//! peak at ring H/2.

use std::f64::consts::PI;

use candle_core::Tensor;

use super::checker::grey_plane;
use super::{bad_input, image_dims, to_cpu_f32_vec};
use crate::error::Result;

/// Mean power of the periodic component in rings 1 to H/2 (index 0 is ring 1), averaged over
/// the images `(N, 3, H, H)` (square, H even).
pub fn ring_power(images: &Tensor) -> Result<Vec<f64>> {
    let (n, c, h, w) = image_dims("images", images)?;
    if h != w || h % 2 != 0 {
        return Err(bad_input(
            "images",
            "(N, 3, H, H) square images with H even",
            images.dims(),
        ));
    }
    let data = to_cpu_f32_vec(images)?;
    let dft = Dft::new(h);
    // The ring of each bin (0 for the constant bin, which the zero-mean plane leaves empty).
    let folded = |f: usize| f.min(h - f);
    let ring_of_bin: Vec<usize> = (0..h * h)
        .map(|bin| folded(bin / h).max(folded(bin % h)))
        .collect();
    let mut bins = vec![0usize; h / 2];
    for &ring in ring_of_bin.iter().filter(|&&ring| ring > 0) {
        bins[ring - 1] += 1;
    }
    let mut power = vec![0f64; h / 2];
    for i in 0..n {
        let grey = grey_plane(&data[i * c * h * w..(i + 1) * c * h * w], c, h * w);
        let periodic = dft.periodic_spectrum(&grey);
        for (&ring, &(re, im)) in ring_of_bin.iter().zip(&periodic) {
            if ring > 0 {
                power[ring - 1] += re * re + im * im;
            }
        }
    }
    for (p, &count) in power.iter_mut().zip(&bins) {
        *p /= (count * n) as f64;
    }
    Ok(power)
}

/// [`ring_power`] of `fake` over that of `real` (same square size), ring by ring: 1 where the
/// generated images hold as much power as real ones. A ring where the real images hold no
/// power scores 1 if the generated ones hold none either, infinity otherwise.
pub fn ring_power_ratio(fake: &Tensor, real: &Tensor) -> Result<Vec<f64>> {
    super::same_image_shape(real, fake)?;
    let fake_power = ring_power(fake)?;
    let real_power = ring_power(real)?;
    Ok(fake_power
        .iter()
        .zip(&real_power)
        .map(|(&f, &r)| super::checker::ratio(f, r))
        .collect())
}

/// A separable 2-D DFT of one square size, with its twiddle factors.
struct Dft {
    size: usize,
    /// `(cos, sin)` of 2π·j/size for j = 0..size.
    twiddles: Vec<(f64, f64)>,
}

impl Dft {
    fn new(size: usize) -> Self {
        let twiddles = (0..size)
            .map(|j| {
                let angle = 2.0 * PI * j as f64 / size as f64;
                (angle.cos(), angle.sin())
            })
            .collect();
        Dft { size, twiddles }
    }

    /// The 1-D transform of the `size` values `at(0..size)`.
    fn line(&self, at: impl Fn(usize) -> (f64, f64)) -> Vec<(f64, f64)> {
        let n = self.size;
        (0..n)
            .map(|k| {
                (0..n).fold((0f64, 0f64), |(re, im), j| {
                    let (a, b) = at(j);
                    let (cos, sin) = self.twiddles[(k * j) % n];
                    // (a + ib)(cos − i sin)
                    (re + a * cos + b * sin, im + b * cos - a * sin)
                })
            })
            .collect()
    }

    /// The transform of a real plane (row-major, size × size): rows first, then columns.
    fn transform(&self, plane: &[f64]) -> Vec<(f64, f64)> {
        let n = self.size;
        let rows: Vec<Vec<(f64, f64)>> = (0..n).map(|y| self.line(|x| (plane[y * n + x], 0.0))).collect();
        let mut out = vec![(0f64, 0f64); n * n];
        for kx in 0..n {
            for (ky, value) in self.line(|y| rows[y][kx]).into_iter().enumerate() {
                out[ky * n + kx] = value;
            }
        }
        out
    }

    /// The transform of the periodic component of `grey`: its own transform minus that of the
    /// smooth component, V / (2 cos 2πk/H + 2 cos 2πl/W − 4), V the transform of the boundary
    /// image (the jump between opposite edges, with opposite signs on the two edges).
    fn periodic_spectrum(&self, grey: &[f64]) -> Vec<(f64, f64)> {
        let n = self.size;
        let mut boundary = vec![0f64; n * n];
        for x in 0..n {
            let jump = grey[(n - 1) * n + x] - grey[x];
            boundary[x] += jump;
            boundary[(n - 1) * n + x] -= jump;
        }
        for y in 0..n {
            let jump = grey[y * n + n - 1] - grey[y * n];
            boundary[y * n] += jump;
            boundary[y * n + n - 1] -= jump;
        }
        let mut spectrum = self.transform(grey);
        let smooth = self.transform(&boundary);
        for ky in 0..n {
            for kx in 0..n {
                if ky == 0 && kx == 0 {
                    spectrum[0] = (0.0, 0.0);
                    continue;
                }
                let den = 2.0 * self.twiddles[ky].0 + 2.0 * self.twiddles[kx].0 - 4.0;
                let (re, im) = smooth[ky * n + kx];
                let s = &mut spectrum[ky * n + kx];
                s.0 -= re / den;
                s.1 -= im / den;
            }
        }
        spectrum
    }
}
