//! Resampling by integer factors: area downsampling and nearest-neighbour upsampling, with
//! gradients that are broadcasts (progressive growing and its fades use them every step).

use candle_core::{Result, Tensor};

/// Area downsampling by an integer `factor`: the mean of each `factor`×`factor` block.
/// Written as a reshape and a mean (not candle's `avg_pool2d`) because its gradient is then a
/// broadcast, where `avg_pool2d`'s goes through the slow nearest-upsample kernel.
pub fn downsample_area(x: &Tensor, factor: usize) -> Result<Tensor> {
    if factor == 0 {
        candle_core::bail!("cannot downsample by a factor of 0")
    }
    if factor == 1 {
        return Ok(x.clone());
    }
    let (b, c, h, w) = x.dims4()?;
    if h % factor != 0 || w % factor != 0 {
        candle_core::bail!("cannot downsample {h}×{w} by {factor}: not a multiple")
    }
    x.reshape((b, c, h / factor, factor, w / factor, factor))?
        .mean(5)?
        .mean(3)
}

/// Square images `(B, C, H, W)` area-downsampled to `side`×`side` when they are larger and
/// `side` divides their side; any other images (no larger, not square, or of a side `side`
/// does not divide) come back as they are.
pub fn downsample_area_to(x: &Tensor, side: usize) -> Result<Tensor> {
    Ok(try_downsample_area_to(x, side)?.unwrap_or_else(|| x.clone()))
}

/// Images `(B, C, H, W)` brought to at most `side`×`side`: area-downsampled when they are
/// larger (square, of a side that `side` divides), as they are when no larger; `None` when
/// they are larger and cannot be (not square, or `side` does not divide their side).
pub fn try_downsample_area_to(x: &Tensor, side: usize) -> Result<Option<Tensor>> {
    let (_, _, h, w) = x.dims4()?;
    if h <= side && w <= side {
        Ok(Some(x.clone()))
    } else if side > 0 && w % side == 0 && h == w {
        downsample_area(x, w / side).map(Some)
    } else {
        Ok(None)
    }
}

/// Nearest-neighbour upsampling by an integer `factor`.
pub fn upsample_nearest(x: &Tensor, factor: usize) -> Result<Tensor> {
    if factor == 0 {
        candle_core::bail!("cannot upsample by a factor of 0")
    }
    if factor == 1 {
        return Ok(x.clone());
    }
    let (b, c, h, w) = x.dims4()?;
    x.reshape((b, c, h, 1, w, 1))?
        .broadcast_as((b, c, h, factor, w, factor))?
        .reshape((b, c, h * factor, w * factor))
}
