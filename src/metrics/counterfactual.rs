//! How well a class-conditional model redraws real images as another class
//! ([`crate::Model::counterfactual`]): whether a classifier trained on real images sees the
//! class asked for in the redrawn images, and how much of the source image survives.
//!
//! What survives is measured where the source is not the lesion: dermoscopy centres the
//! lesion, so the outer frame of the image (the pixels within an eighth of the side from the
//! border) is mostly the skin around it. There the redrawn image is compared with the
//! source's reconstruction as its own class (what the model keeps of the source at all), and,
//! for scale, two different sources' reconstructions are compared with each other: a change
//! near the first number and far below the second keeps the source's skin and framing.

use std::fmt;

use candle_core::{Device, Tensor};
use serde::Serialize;

use super::classifier::{recall_per_class, Classifier};
use super::evenly_spaced_indices;
use crate::data::ImageSet;
use crate::error::{AeganError, Result};
use crate::model::Model;

/// Images redrawn at a time.
const BATCH: usize = 64;

/// How one target class's counterfactuals came out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CounterfactualQuality {
    /// The class the images were redrawn as.
    pub class: String,
    /// Real images of other classes redrawn as this one.
    pub edited: usize,
    /// Share of the redrawn images that the classifier assigns to this class.
    pub assigned: f64,
    /// The classifier's recall on real images of this class (the same images' classes): what
    /// `assigned` compares with. `None` where no real image has this class.
    pub real_recall: Option<f64>,
    /// Mean |redrawn − reconstruction as its own class| in the outer frame, on the [−1, 1]
    /// scale: how much the edit changed the skin around the lesion.
    pub frame_change: f64,
    /// Mean |reconstruction of one source − reconstruction of another| in the outer frame:
    /// how much the skin differs from image to image, for scale.
    pub frame_between_sources: f64,
}

/// For every class of the conditional `model`: at most `per_class` of the labelled `images`
/// (held-out real images, evenly spaced) whose class is another, redrawn as this class,
/// classified by `classifier` (trained on real images of the same classes) and compared with
/// their reconstructions. Classes that differ between the model, the images and the
/// classifier are an error naming both; an unconditional model is refused.
pub fn counterfactual_quality(
    model: &Model,
    images: &ImageSet,
    classifier: &Classifier,
    per_class: usize,
) -> Result<Vec<CounterfactualQuality>> {
    let classes = model.class_names();
    let mismatch = |what: &str, names: &[String]| AeganError::ConditioningMismatch {
        first: "the model".into(),
        first_classes: AeganError::describe_classes(classes),
        second: what.into(),
        second_classes: AeganError::describe_classes(names),
    };
    if classes.is_empty() {
        return Err(AeganError::ClassLabels {
            reason: "counterfactuals redraw images as another class, and this model is unconditional".into(),
        });
    }
    if images.class_names() != classes {
        return Err(mismatch("the images", images.class_names()));
    }
    if classifier.classes() != classes {
        return Err(mismatch("the classifier", classifier.classes()));
    }
    let labels = images.labels().unwrap_or_default();
    let device = model.networks().device().clone();
    let all = images.to_tensor(&device)?;
    let recall = recall_per_class(&classifier.predict(&all)?, labels, classes.len())?;
    let mut out = Vec::with_capacity(classes.len());
    for (target, name) in classes.iter().enumerate() {
        let sources: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] != target).collect();
        let chosen: Vec<usize> = evenly_spaced_indices(sources.len(), per_class)
            .filter_map(|i| sources.get(i).copied())
            .collect();
        if chosen.is_empty() {
            continue;
        }
        let (mut assigned, mut change, mut between, mut pairs) = (0usize, 0f64, 0f64, 0usize);
        for batch in chosen.chunks(BATCH) {
            let x = images.batch(batch, &device)?;
            let own: Vec<usize> = batch.iter().map(|&i| labels[i]).collect();
            let edited = model.counterfactual(&x, name)?;
            let reconstructed = model.reconstruct_labelled(&x, &own)?;
            assigned += (classifier.predict(&edited)?.iter())
                .filter(|&&p| p == target)
                .count();
            change += frame_mean_abs_diff(&edited, &reconstructed)? * batch.len() as f64;
            if batch.len() >= 2 {
                // Each source against the next one's reconstruction (the last against the first).
                let n = batch.len();
                let rolled = Tensor::cat(
                    &[reconstructed.narrow(0, 1, n - 1)?, reconstructed.narrow(0, 0, 1)?],
                    0,
                )?;
                between += frame_mean_abs_diff(&reconstructed, &rolled)? * n as f64;
                pairs += n;
            }
        }
        out.push(CounterfactualQuality {
            class: name.clone(),
            edited: chosen.len(),
            assigned: assigned as f64 / chosen.len() as f64,
            real_recall: recall[target],
            frame_change: change / chosen.len() as f64,
            frame_between_sources: if pairs > 0 {
                between / pairs as f64
            } else {
                f64::NAN
            },
        });
    }
    Ok(out)
}

/// Mean |a − b| over the outer frame of two image batches `(N, C, S, S)`: the pixels within
/// `max(S / 8, 1)` of the border.
pub fn frame_mean_abs_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    let (n, c, h, w) = a.dims4()?;
    if b.dims() != a.dims() || h != w || h < 3 {
        return Err(AeganError::BadInput {
            what: "image batches to compare in the frame",
            expected: format!(
                "two batches of one shape of square images of at least 3 pixels, {:?}",
                a.dims()
            ),
            found: b.dims().to_vec(),
        });
    }
    let border = (h / 8).max(1);
    let mut mask = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            let edge = y < border || x < border || y >= h - border || x >= w - border;
            mask[y * w + x] = f32::from(u8::from(edge));
        }
    }
    let frame_pixels = mask.iter().sum::<f32>() as f64;
    let mask = Tensor::from_vec(mask, (1, 1, h, w), &Device::Cpu)?;
    let diff = (a.to_device(&Device::Cpu)? - b.to_device(&Device::Cpu)?)?.abs()?;
    let sum = diff.broadcast_mul(&mask)?.sum_all()?.to_scalar::<f32>()? as f64;
    Ok(sum / (frame_pixels * (n * c) as f64))
}

/// The counterfactual table: one row per target class.
pub struct CounterfactualTable<'a>(pub &'a [CounterfactualQuality]);

impl fmt::Display for CounterfactualTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| redrawn as | images | assigned to it | classifier recall on real | frame change | between sources |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|")?;
        for q in self.0 {
            let recall = q.real_recall.map_or("—".into(), |r| format!("{r:.2}"));
            writeln!(
                f,
                "| {} | {} | {:.2} | {recall} | {:.3} | {:.3} |",
                q.class, q.edited, q.assigned, q.frame_change, q.frame_between_sources
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_difference_reads_only_the_border() {
        // 8×8 images: a border of 1 pixel, 28 pixels; the centre 6×6 differs by 2, the
        // border by 0.5.
        let a = Tensor::zeros((2, 3, 8, 8), candle_core::DType::F32, &Device::Cpu).unwrap();
        let mut values = vec![0.5f32; 64];
        for y in 1..7 {
            for x in 1..7 {
                values[y * 8 + x] = 2.0;
            }
        }
        let b = Tensor::from_vec(values, (1, 1, 8, 8), &Device::Cpu)
            .unwrap()
            .broadcast_as((2, 3, 8, 8))
            .unwrap()
            .contiguous()
            .unwrap();
        assert!((frame_mean_abs_diff(&a, &b).unwrap() - 0.5).abs() < 1e-9);
        assert!(frame_mean_abs_diff(&a, &a.narrow(0, 0, 1).unwrap()).is_err());
    }
}
