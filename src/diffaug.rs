//! Differentiable augmentation (DiffAugment, Zhao et al. 2020) of the images the image
//! discriminator sees.
//!
//! Every transform is built from candle operations with gradients (adds, multiplies, means,
//! zero padding and a gather), so G and E are trained through it. The random parameters come
//! from the trainer's seeded stream, so a resumed run draws the same ones. Each transform is
//! applied to each image with probability `p`; at `p = 0` the input comes back unchanged.
//!
//! Images are in [−1, 1]:
//! - **color**: brightness `x + (r − ½)`, saturation `(x − mean_c)·2r + mean_c` (mean over
//!   channels), contrast `(x − mean)·(r + ½) + mean` (mean over the image), r ~ U[0, 1) each;
//! - **translation**: a shift by integers in [−s, s] on each axis, s = round(side / 8), with
//!   zeros (mid-grey) shifted in;
//! - **cutout**: a square of side round(side / 2), centred at a uniform pixel, set to zero.

use candle_core::Tensor;

use crate::config::DiffAugmentConfig;
use crate::error::Result;
use crate::rng::TrainRng;

/// Augments a batch `(N, C, H, W)` with the transforms `config` turns on, each applied per
/// image with probability `p`, drawing from `rng`.
pub fn augment(x: &Tensor, config: &DiffAugmentConfig, p: f64, rng: &mut TrainRng) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let mut x = x.clone();
    if config.color {
        x = color(&x, p, rng)?;
    }
    if config.translation {
        x = translation(&x, p, rng)?;
    }
    if config.cutout {
        x = cutout(&x, p, rng)?;
    }
    Ok(x)
}

/// One value per image: `draw(u)` for an image chosen with probability `p`, else `identity`.
fn per_image(n: usize, p: f64, identity: f32, rng: &mut TrainRng, draw: impl Fn(f64) -> f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let (chosen, u) = (rng.uniform() < p, rng.uniform());
            if chosen {
                draw(u)
            } else {
                identity
            }
        })
        .collect()
}

/// A `(N, 1, 1, 1)` tensor of per-image values, for broadcasting.
fn column(values: Vec<f32>, like: &Tensor) -> Result<Tensor> {
    let n = values.len();
    Ok(Tensor::from_vec(values, (n, 1, 1, 1), like.device())?.to_dtype(like.dtype())?)
}

/// Random brightness, saturation and contrast.
pub fn color(x: &Tensor, p: f64, rng: &mut TrainRng) -> Result<Tensor> {
    let n = x.dim(0)?;
    let brightness = column(per_image(n, p, 0.0, rng, |u| (u - 0.5) as f32), x)?;
    let saturation = column(per_image(n, p, 1.0, rng, |u| (2.0 * u) as f32), x)?;
    let contrast = column(per_image(n, p, 1.0, rng, |u| (u + 0.5) as f32), x)?;
    let x = x.broadcast_add(&brightness)?;
    let channel_mean = x.mean_keepdim(1)?;
    let x = x
        .broadcast_sub(&channel_mean)?
        .broadcast_mul(&saturation)?
        .broadcast_add(&channel_mean)?;
    let image_mean = x.mean_keepdim(1)?.mean_keepdim(2)?.mean_keepdim(3)?;
    Ok(x.broadcast_sub(&image_mean)?
        .broadcast_mul(&contrast)?
        .broadcast_add(&image_mean)?)
}

/// Random integer shifts of up to round(side / 8) pixels on each axis, zero filled.
pub fn translation(x: &Tensor, p: f64, rng: &mut TrainRng) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (sh, sw) = (
        (h as f64 / 8.0).round() as usize,
        (w as f64 / 8.0).round() as usize,
    );
    if sh == 0 && sw == 0 {
        return Ok(x.clone());
    }
    let shift = |s: usize, u: f64| ((u * (2 * s + 1) as f64).floor() as i64).min(2 * s as i64) - s as i64;
    let dy = per_image(n, p, 0.0, rng, |u| shift(sh, u) as f32);
    let dx = per_image(n, p, 0.0, rng, |u| shift(sw, u) as f32);
    let (hp, wp) = (h + 2 * sh, w + 2 * sw);
    let padded = x
        .pad_with_zeros(2, sh, sh)?
        .pad_with_zeros(3, sw, sw)?
        .reshape((n, c, hp * wp))?;
    let mut index = Vec::with_capacity(n * c * h * w);
    for b in 0..n {
        let (oy, ox) = (
            (sh as i64 + dy[b] as i64) as usize,
            (sw as i64 + dx[b] as i64) as usize,
        );
        let plane: Vec<u32> = (0..h)
            .flat_map(|i| (0..w).map(move |j| ((i + oy) * wp + j + ox) as u32))
            .collect();
        for _ in 0..c {
            index.extend_from_slice(&plane);
        }
    }
    let index = Tensor::from_vec(index, (n, c, h * w), x.device())?;
    Ok(padded.contiguous()?.gather(&index, 2)?.reshape((n, c, h, w))?)
}

/// A zeroed square of side round(side / 2) centred at a uniform pixel.
pub fn cutout(x: &Tensor, p: f64, rng: &mut TrainRng) -> Result<Tensor> {
    let (n, _, h, w) = x.dims4()?;
    let (ch, cw) = (
        (h as f64 / 2.0).round() as usize,
        (w as f64 / 2.0).round() as usize,
    );
    let mut mask = vec![1f32; n * h * w];
    for b in 0..n {
        let (chosen, uy, ux) = (rng.uniform() < p, rng.uniform(), rng.uniform());
        if !chosen {
            continue;
        }
        let cy = ((uy * h as f64) as usize).min(h - 1);
        let cx = ((ux * w as f64) as usize).min(w - 1);
        let (y0, x0) = (cy.saturating_sub(ch / 2), cx.saturating_sub(cw / 2));
        let (y1, x1) = ((cy + ch - ch / 2).min(h), (cx + cw - cw / 2).min(w));
        for y in y0..y1 {
            mask[b * h * w + y * w + x0..b * h * w + y * w + x1].fill(0.0);
        }
    }
    let mask = Tensor::from_vec(mask, (n, 1, h, w), x.device())?.to_dtype(x.dtype())?;
    Ok(x.broadcast_mul(&mask)?)
}
