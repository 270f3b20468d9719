//! How good a class-conditional model's images are, class by class: KID (and FID where a class
//! has enough real images) against that class's real images, class fidelity (the share of its
//! images that a classifier trained on real images assigns to the class asked for),
//! within-class diversity (pixel by pixel and of the layout at 8×8), and precision and recall.

use std::fmt;
use std::path::Path;

use candle_core::Device;
use serde::Serialize;

use super::classifier::{recall_per_class, Classifier};
use super::diversity::{layout_distance_ratio, pairwise_distance_ratio};
use super::fid::{fid, kid, FeatureStats, KidScore, KID_SUBSETS, KID_SUBSET_SIZE};
use super::precision_recall::{precision_recall, PrecisionRecall, NEIGHBOURS};
use super::{cached_features, evenly_spaced_indices, FidInception};
use crate::data::ImageSet;
use crate::error::{AeganError, Result};
use crate::model::Model;

/// Fewest real images of a class for its FID to be reported: below this FID mostly measures
/// the sample size.
pub const PER_CLASS_FID_MIN_IMAGES: usize = 500;

/// The quality of one class's generated images.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassQuality {
    /// The class name.
    pub class: String,
    /// Real images of the class compared with (at most the `max_real` asked for).
    pub real_images: usize,
    /// Images generated of the class.
    pub generated: usize,
    /// KID against the class's real images (with an Inception network).
    pub kid: Option<KidScore>,
    /// FID against the class's real images, when it has at least
    /// [`PER_CLASS_FID_MIN_IMAGES`] (with an Inception network).
    pub fid: Option<f64>,
    /// Share of the generated images that the classifier labels as this class.
    pub fidelity: Option<f64>,
    /// The classifier's recall on held-out real images of this class: what `fidelity` is
    /// compared with.
    pub held_out_recall: Option<f64>,
    /// Within-class diversity: the mean pairwise pixel distance among the generated images
    /// over the same among the class's real images (1: as varied as the real ones; near 0:
    /// one image for every latent). `None` for a class of fewer than two different real images.
    pub diversity: Option<f64>,
    /// Within-class diversity of the layout: the same ratio on the images averaged to 8×8
    /// ([`layout_distance_ratio`]). Speckle that differs between images keeps `diversity`
    /// up for a class drawn as one silhouette; this figure stays well below it.
    pub layout_diversity: Option<f64>,
    /// Improved precision and recall against the class's real images (Inception features,
    /// k = 3), when the class has more than three of them.
    pub precision_recall: Option<PrecisionRecall>,
}

/// What [`per_class_quality`] compares with.
pub struct ClassReference<'a> {
    /// Real training images with the model's classes as labels.
    pub real: &'a ImageSet,
    /// Held-out real images with the same labels (for the classifier's recall), if any.
    pub held_out: Option<&'a ImageSet>,
    /// The Inception network for KID and FID (none: no KID or FID).
    pub inception: Option<&'a FidInception>,
    /// A classifier of the same classes trained on real images (none: no fidelity).
    pub classifier: Option<&'a Classifier>,
    /// Where the real images' Inception features are cached.
    pub cache_dir: Option<&'a Path>,
}

/// For each class of the conditional `model`: `n` images generated of that class (latents
/// from `seed`, the same for every class), compared with at most `max_real` real images of
/// the class. A reference whose classes (or classifier's) differ from the model's is an
/// error naming both.
pub fn per_class_quality(
    model: &Model,
    reference: &ClassReference,
    n: usize,
    max_real: usize,
    seed: u64,
) -> Result<Vec<ClassQuality>> {
    let classes = model.class_names();
    let mismatch = |what: &str, names: &[String]| AeganError::ConditioningMismatch {
        first: "the model".into(),
        first_classes: AeganError::describe_classes(classes),
        second: what.into(),
        second_classes: match names {
            [] => "unlabelled".into(),
            names => AeganError::describe_classes(names),
        },
    };
    if classes.is_empty() || reference.real.class_names() != classes {
        return Err(mismatch("the real images", reference.real.class_names()));
    }
    if let Some(held) = reference.held_out.filter(|h| h.class_names() != classes) {
        return Err(mismatch("the held-out images", held.class_names()));
    }
    if let Some(c) = reference.classifier.filter(|c| c.classes() != classes) {
        return Err(mismatch("the classifier", c.classes()));
    }
    if n < 2 {
        return Err(AeganError::BadInput {
            what: "generated images per class",
            expected: "at least 2".into(),
            found: vec![n],
        });
    }
    let held_out_recall = match (reference.classifier, reference.held_out) {
        (Some(classifier), Some(held)) => {
            let predicted = classifier.predict(&held.to_tensor(model.networks().device())?)?;
            recall_per_class(&predicted, held.labels().unwrap_or_default(), classes.len())?
        }
        _ => vec![None; classes.len()],
    };
    let labels = reference.real.labels().unwrap_or_default();
    let mut out = Vec::with_capacity(classes.len());
    for (class, name) in classes.iter().enumerate() {
        let members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        let chosen: Vec<usize> = evenly_spaced_indices(members.len(), max_real)
            .filter_map(|i| members.get(i).copied())
            .collect();
        let generated = model.sample_class(n, name, seed)?;
        let mut quality = ClassQuality {
            class: name.clone(),
            real_images: chosen.len(),
            generated: n,
            kid: None,
            fid: None,
            fidelity: None,
            held_out_recall: held_out_recall[class],
            diversity: None,
            layout_diversity: None,
            precision_recall: None,
        };
        let real = match chosen.len() {
            0 => None,
            _ => Some(reference.real.batch(&chosen, &Device::Cpu)?),
        };
        let generated_here = generated.to_device(&Device::Cpu)?;
        if let Some(real) = real.as_ref().filter(|_| chosen.len() >= 2) {
            // All-identical real images have no spread to compare with: no figure.
            quality.diversity = pairwise_distance_ratio(&generated_here, real).ok();
            quality.layout_diversity = layout_distance_ratio(&generated_here, real).ok();
        }
        if let Some(classifier) = reference.classifier {
            let predicted = classifier.predict(&generated)?;
            quality.fidelity = Some(predicted.iter().filter(|&&p| p == class).count() as f64 / n as f64);
        }
        if let (Some(net), Some(real), true) = (reference.inception, &real, chosen.len() >= 2) {
            let real_features = cached_features(net, real, reference.cache_dir)?;
            let fake_features = net.features(&generated_here)?;
            if chosen.len().min(n) > NEIGHBOURS {
                quality.precision_recall = Some(precision_recall(&real_features, &fake_features)?);
            }
            quality.kid = Some(kid(
                &real_features,
                &fake_features,
                KID_SUBSET_SIZE,
                KID_SUBSETS,
                seed,
            )?);
            if chosen.len() >= PER_CLASS_FID_MIN_IMAGES {
                quality.fid = Some(fid(
                    &FeatureStats::from_features(&real_features)?,
                    &FeatureStats::from_features(&fake_features)?,
                )?);
            }
        }
        out.push(quality);
    }
    Ok(out)
}

/// The per-class results as a Markdown table.
pub struct PerClassTable<'a>(pub &'a [ClassQuality]);

impl fmt::Display for PerClassTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| class | real images | KID ×10³ | FID | class fidelity | classifier recall (held-out real) | fidelity / recall | diversity | layout diversity (8×8) | precision | recall |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|---|---|---|")?;
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "—".into());
        for q in self.0 {
            let ratio = match (q.fidelity, q.held_out_recall) {
                (Some(fidelity), Some(recall)) if recall > 0.0 => Some(format!("{:.2}", fidelity / recall)),
                _ => None,
            };
            writeln!(
                f,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                q.class,
                q.real_images,
                or_dash(q.kid.map(|k| format!("{:.1} ± {:.1}", 1e3 * k.mean, 1e3 * k.std))),
                or_dash(q.fid.map(|v| format!("{v:.1}"))),
                or_dash(q.fidelity.map(|v| format!("{v:.3}"))),
                or_dash(q.held_out_recall.map(|v| format!("{v:.3}"))),
                or_dash(ratio),
                or_dash(q.diversity.map(|v| format!("{v:.2}"))),
                or_dash(q.layout_diversity.map(|v| format!("{v:.2}"))),
                or_dash(q.precision_recall.map(|p| format!("{:.2}", p.precision))),
                or_dash(q.precision_recall.map(|p| format!("{:.2}", p.recall))),
            )?;
        }
        Ok(())
    }
}
