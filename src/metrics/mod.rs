//! Image-quality metrics: how close generated images are to real ones, and what is wrong
//! when they are not.
//!
//! | metric | module | what it sees | 0 / 1 means |
//! |---|---|---|---|
//! | FID, KID | [`fid`](mod@fid) (features from [`inception`]) | distance between Inception-v3 feature distributions | 0: same distribution |
//! | SWD | [`swd`](mod@swd) | local 7×7 patch statistics at every scale of a Laplacian pyramid | 0: same patches |
//! | checker ratio | [`checker`] | power at the Nyquist frequencies (checkerboard artefacts) | 1: like real data |
//! | ring power ratio | [`spectrum`] | power at every spatial frequency, ring by ring (blur, upsampling imprints) | 1 at every ring: like real data |
//! | precision, recall | [`precision_recall`](mod@precision_recall) | generated images inside the real images' k-nearest-neighbour manifold, and real ones inside the generated manifold (Inception features) | 1 and 1: every generated image plausible, every real image covered |
//! | near-duplicate fraction | [`diversity`] | generated images with a near copy among the others (mode collapse) | 0: none |
//! | pairwise distance ratio | [`diversity`] | spread of the generated set against the real one | 1: as varied as real data |
//! | layout distance ratio | [`diversity`] | the same on images averaged to 8×8: spread of silhouette, layout and colour, without per-pixel speckle | 1: as varied as real data |
//! | reconstruction | [`reconstruction_error`] | L1 and PSNR of x → E → G on held-out real images | 0 / high |
//! | per-class KID/FID, class fidelity | [`per_class`] | a conditional model's images of each class against that class's real images, and the share a classifier assigns to the class asked for | KID 0 / fidelity 1 |
//! | counterfactual class share, frame change | [`counterfactual`] | real images redrawn as another class: the share a classifier assigns to that class, and how much the skin around the lesion changed | share like the classifier's recall on real images; change far below that between sources |
//! | class fidelity, balanced accuracy | [`classifier`] | a small CNN trained on labelled real images: which class it sees in an image | 1: every image recognised |
//! | memorisation ratio, copy share | [`memorisation`](mod@memorisation) | nearest-training distance of generated images over that of held-out real ones, against every training image; the share of generated images whose nearest training image is far nearer than the second (NN1/NN2 < 1/3) | ratio ≥ 1, share as low as held-out images give: no copying |
//! | membership AUC | [`membership`] | telling training from held-out images by Dx's logit or by the reconstruction error | 0.5: the model gives away nothing about who was trained on |
//!
//! Images are tensors `(N, 3, H, W)`, f32, in [−1, 1], as [`crate::data::ImageSet::to_tensor`]
//! makes them; every function checks its input's shape and returns
//! [`crate::AeganError::BadInput`] rather than panicking.
//!
//! FID and KID need the FID Inception-v3 weights (the TF graph `inception-2015-12-05` as a
//! safetensors file): aegan never downloads them, the user points [`FidInception::load`] at the
//! file. Everything else runs without any file.
//!
//! ```
//! use aegan::candle_core::Device;
//! use aegan::data::synthetic;
//! # fn main() -> aegan::Result<()> {
//! let real = synthetic::lesions(16, 32, 1).to_tensor(&Device::Cpu)?;
//! let fake = synthetic::lesions(16, 32, 2).to_tensor(&Device::Cpu)?;
//! let report = aegan::metrics::evaluate(&real, &fake, None, 0)?; // no Inception: no FID/KID
//! assert!(report.fid.is_none());
//! println!("{report}");
//! # Ok(()) }
//! ```

pub mod checker;
pub mod classifier;
pub mod counterfactual;
pub mod diversity;
mod evaluator;
pub mod fid;
pub mod inception;
pub mod membership;
pub mod memorisation;
pub mod per_class;
pub mod precision_recall;
pub mod spectrum;
pub mod swd;

mod reconstruction;

pub use checker::{checker_ratio, checker_ratio_with_interval, checker_score};
pub use counterfactual::{counterfactual_quality, CounterfactualQuality, CounterfactualTable};
pub use diversity::{layout_distance_ratio, near_duplicate_fraction, pairwise_distance_ratio};
pub use evaluator::{
    cached_features, evenly_spaced, evenly_spaced_indices, evenly_spaced_labels, generate, Evaluator,
};
pub use fid::{fid, kid, FeatureStats, KidScore};
pub use inception::FidInception;
pub use membership::{membership_inference, roc_auc, MembershipInference};
pub use memorisation::{memorisation, memorisation_over, Memorisation};
pub use per_class::{per_class_quality, ClassQuality, ClassReference, PerClassTable};
pub use precision_recall::{precision_recall, PrecisionRecall};
pub use reconstruction::{reconstruction_error, Reconstruction};
pub use spectrum::{ring_power, ring_power_ratio};
pub use swd::{swd, SwdScore};

use std::fmt;

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use crate::error::{AeganError, Result};

/// Every metric of one evaluation. FID and KID are present only when an Inception network was
/// given; `reconstruction` only when a checkpoint's encoder and generator were.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Number of real images.
    pub n_real: usize,
    /// Number of generated images.
    pub n_fake: usize,
    /// Fréchet Inception distance (0: same feature distribution).
    pub fid: Option<f64>,
    /// Kernel Inception distance, mean and standard deviation over subsets.
    pub kid: Option<KidScore>,
    /// Sliced Wasserstein distance (×10³) per pyramid level and on average.
    pub swd: SwdScore,
    /// Nyquist-power score of the generated set over the real set's (1: like real data).
    pub checker_ratio: f64,
    /// 95 % bootstrap interval of `checker_ratio` ([`checker::checker_ratio_with_interval`]).
    pub checker_ratio_interval: (f64, f64),
    /// Generated over real power in each frequency ring 1 to H/2 ([`spectrum`]; empty for
    /// images that are not square with an even side). 1 at every ring: like real data.
    pub ring_power_ratio: Vec<f64>,
    /// Fraction of generated images with a near copy among the other generated images.
    pub near_duplicate_fraction: f64,
    /// Mean pairwise pixel distance of the generated set over the real set's (1: as varied).
    pub pairwise_distance_ratio: f64,
    /// Improved precision and recall on Inception features, when Inception was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision_recall: Option<PrecisionRecall>,
    /// Reconstruction error of real images through x → E → G.
    pub reconstruction: Option<Reconstruction>,
    /// Memorisation check in pixel space, when held-out real images were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memorisation_pixels: Option<Memorisation>,
    /// Memorisation check on Inception features, when held-out images and Inception were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memorisation_features: Option<Memorisation>,
    /// Membership inference by Dx's logit and by the reconstruction error, when held-out real
    /// images and a checkpoint were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub membership: Option<MembershipInference>,
}

impl Report {
    /// Adds the scores of the Inception features of the real and the generated images: FID,
    /// KID (with [`fid::KID_SUBSETS`] subsets of at most [`fid::KID_SUBSET_SIZE`] images,
    /// drawn by `seed`) and improved precision and recall.
    pub fn add_feature_scores(
        &mut self,
        real_features: &Tensor,
        fake_features: &Tensor,
        seed: u64,
    ) -> Result<()> {
        self.fid = Some(fid(
            &FeatureStats::from_features(real_features)?,
            &FeatureStats::from_features(fake_features)?,
        )?);
        self.kid = Some(kid(
            real_features,
            fake_features,
            fid::KID_SUBSET_SIZE,
            fid::KID_SUBSETS,
            seed,
        )?);
        // Precision and recall need more points than the balls' neighbours.
        let enough = real_features.dim(0)?.min(fake_features.dim(0)?) > precision_recall::NEIGHBOURS;
        self.precision_recall = enough
            .then(|| precision_recall::precision_recall(real_features, fake_features))
            .transpose()?;
        Ok(())
    }

    /// The report as one line of JSON.
    pub fn to_json_line(&self) -> String {
        // Serialising plain numbers and strings cannot fail; non-finite numbers become null.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<28} {:>12}  better", "metric", "value")?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, value: String, better: &str| {
            writeln!(f, "{}", format!("{name:<28} {value:>12}  {better}").trim_end())
        };
        row(f, "real images", self.n_real.to_string(), "")?;
        row(f, "generated images", self.n_fake.to_string(), "")?;
        match self.fid {
            Some(v) => row(f, "FID", format!("{v:.3}"), "lower")?,
            None => row(f, "FID", "-".into(), "(needs --inception)")?,
        }
        match &self.kid {
            Some(k) => row(
                f,
                "KID (x1000)",
                format!("{:.3}", k.mean * 1e3),
                &format!("lower (std {:.3})", k.std * 1e3),
            )?,
            None => row(f, "KID (x1000)", "-".into(), "(needs --inception)")?,
        }
        row(f, "SWD (x1000), mean", format!("{:.3}", self.swd.mean), "lower")?;
        for (resolution, value) in &self.swd.per_level {
            row(
                f,
                &format!("  SWD at {resolution}x{resolution}"),
                format!("{value:.3}"),
                "lower",
            )?;
        }
        let (low, high) = self.checker_ratio_interval;
        row(
            f,
            "checkerboard ratio",
            format!("{:.3}", self.checker_ratio),
            &format!("1 = like real (95 % interval {low:.2} to {high:.2})"),
        )?;
        if !self.ring_power_ratio.is_empty() {
            let rings: Vec<String> = self.ring_power_ratio.iter().map(|r| format!("{r:.2}")).collect();
            writeln!(
                f,
                "power ratio by frequency ring 1 to {} (1 = like real): {}",
                rings.len(),
                rings.join(" ")
            )?;
        }
        row(
            f,
            "near-duplicate fraction",
            format!("{:.3}", self.near_duplicate_fraction),
            "lower",
        )?;
        row(
            f,
            "pairwise distance ratio",
            format!("{:.3}", self.pairwise_distance_ratio),
            "1 = as varied as real",
        )?;
        if let Some(pr) = &self.precision_recall {
            row(
                f,
                "precision (k = 3)",
                format!("{:.3}", pr.precision),
                "higher: generated images look real",
            )?;
            row(
                f,
                "recall (k = 3)",
                format!("{:.3}", pr.recall),
                "higher: real images are covered",
            )?;
        }
        for (name, m) in [
            ("memorisation ratio (pixels)", &self.memorisation_pixels),
            ("memorisation ratio (Incep.)", &self.memorisation_features),
        ] {
            if let Some(m) = m {
                row(
                    f,
                    name,
                    format!("{:.3}", m.ratio),
                    &format!("≥ 1 = no copying (all {} training images)", m.training_images),
                )?;
            }
        }
        for (name, m) in [
            ("copy share, NN1/NN2 (pixels)", &self.memorisation_pixels),
            ("copy share, NN1/NN2 (Incep.)", &self.memorisation_features),
        ] {
            if let Some(m) = m {
                row(
                    f,
                    name,
                    format!("{:.4}", m.generated_copy_share),
                    &format!("as held-out images: {:.4}", m.held_out_copy_share),
                )?;
            }
        }
        if let Some(m) = &self.membership {
            let leak = format!(
                "0.5 = no leak ({} training, {} held-out)",
                m.members, m.non_members
            );
            row(
                f,
                "membership AUC (Dx logit)",
                format!("{:.3}", m.discriminator_auc),
                &leak,
            )?;
            row(
                f,
                "membership AUC (reconstr.)",
                format!("{:.3}", m.reconstruction_auc),
                &leak,
            )?;
        }
        if let Some(r) = &self.reconstruction {
            row(
                f,
                "reconstruction L1",
                format!("{:.4}", r.l1),
                "lower ([-1, 1] scale)",
            )?;
            row(
                f,
                "reconstruction PSNR (dB)",
                format!("{:.2}", r.psnr_db),
                "higher",
            )?;
        }
        Ok(())
    }
}

/// Computes every metric that needs no checkpoint: SWD, checkerboard ratio, near duplicates,
/// pairwise distance ratio, and, when `inception` is given, FID and KID (KID with
/// [`fid::KID_SUBSETS`] subsets of at most [`fid::KID_SUBSET_SIZE`] images). `seed` fixes
/// every random choice, so a report can be repeated exactly.
pub fn evaluate(real: &Tensor, fake: &Tensor, inception: Option<&FidInception>, seed: u64) -> Result<Report> {
    let (n_real, _, h, w) = image_dims("real", real)?;
    let (n_fake, ..) = image_dims("fake", fake)?;
    same_image_shape(real, fake)?;
    let (checker_ratio, checker_ratio_interval) = checker_ratio_with_interval(fake, real, seed)?;
    let ring_power_ratio = match h == w && h % 2 == 0 {
        true => ring_power_ratio(fake, real)?,
        false => Vec::new(),
    };
    let mut report = Report {
        n_real,
        n_fake,
        fid: None,
        kid: None,
        swd: swd(real, fake, seed)?,
        checker_ratio,
        checker_ratio_interval,
        ring_power_ratio,
        near_duplicate_fraction: near_duplicate_fraction(fake, real)?,
        pairwise_distance_ratio: pairwise_distance_ratio(fake, real)?,
        precision_recall: None,
        reconstruction: None,
        memorisation_pixels: None,
        memorisation_features: None,
        membership: None,
    };
    if let Some(net) = inception {
        report.add_feature_scores(&net.features(real)?, &net.features(fake)?, seed)?;
    }
    Ok(report)
}

/// `(N, C, H, W)` of an image tensor, checked to be 4-D with 3 channels and at least one image.
pub(crate) fn image_dims(what: &'static str, images: &Tensor) -> Result<(usize, usize, usize, usize)> {
    match *images.dims() {
        [n, 3, h, w] if n > 0 && h > 0 && w > 0 => Ok((n, 3, h, w)),
        _ => Err(bad_input(what, "(N ≥ 1, 3, H, W) images", images.dims())),
    }
}

/// Checks that two image sets hold images of the same channels, height and width.
pub(crate) fn same_image_shape(real: &Tensor, fake: &Tensor) -> Result<()> {
    let per_image = real.dims().get(1..).unwrap_or_default();
    if fake.dims().get(1..).unwrap_or_default() != per_image {
        return Err(bad_input(
            "fake",
            &format!("images of the real images' shape (N, {per_image:?})"),
            fake.dims(),
        ));
    }
    Ok(())
}

/// The values of a tensor as one contiguous f32 vector on the CPU.
pub(crate) fn to_cpu_f32_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_device(&Device::Cpu)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// An [`AeganError::BadInput`].
pub(crate) fn bad_input(what: &'static str, expected: &str, found: &[usize]) -> AeganError {
    AeganError::BadInput {
        what,
        expected: expected.to_string(),
        found: found.to_vec(),
    }
}
