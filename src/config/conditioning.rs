//! Class conditioning: which classes a model is conditional on, and how the condition enters.

use serde::{Deserialize, Serialize};

use crate::error::{AeganError, Result};

/// A class-conditional AEGAN (the `conditioning` field of [`super::AeganConfig`]).
///
/// - G(z, y) joins a learned label embedding e(y) to z before its linear stem. The stem is
///   linear, so the concatenation `[z, e(y)]` amounts to a class-dependent bias of the first
///   4×4 feature map; it needs no change to the rest of G and works at every resolution of a
///   progressive run.
/// - Dx(x, y) = ψ(φ(x)) + ⟨w(y), φ(x)⟩, a projection discriminator (Miyato & Koyama 2018): φ
///   is Dx's flattened last feature map, ψ its output layer and w(y) a learned vector per class.
/// - E and Dz are unconditional: E(x) → z as before, and the latent prior does not depend on y.
///   A reconstruction G(E(x), y) uses the image's own label; generated images are made with
///   the labels of the real batch beside them, so their classes follow the training batches.
///
/// With [`ConditioningConfig::class_loss_weight`] > 0, Dx also has an auxiliary classifier
/// C(φ(x)) (a linear layer to one logit per class, Odena et al. 2017) trained on the real
/// images' labels, and G and E are rewarded when C gives their images the class they were
/// made for; the projection term only tells Dx whether an image fits its label, the classifier
/// term tells G which class an image looks like.
///
/// With a [`ConditioningTransition`] the label terms are multiplied by a strength λ that
/// rises from 0 to 1 (Shahbazi et al. 2022): the model first learns the images of all classes
/// together, which keeps classes of ~100 images from collapsing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditioningConfig {
    /// The class names; label i means `classes[i]`. At least two, distinct and non-empty.
    /// Checkpoints keep them, so a model is asked for a class by name.
    pub classes: Vec<String>,
    /// Size of G's label embedding e(y), joined to z.
    #[serde(default = "default_embedding_dim")]
    pub embedding_dim: usize,
    /// Draw training batches class-balanced ([`crate::data::ClassBalancedSampler`]: each slot
    /// picks a class uniformly, then an image of it) instead of shuffled epochs.
    #[serde(default)]
    pub balanced_batches: bool,
    /// An unconditional-to-conditional transition; `None` conditions fully from the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<ConditioningTransition>,
    /// Weight of the auxiliary classifier's cross-entropy in both steps (0: no classifier;
    /// [`ConditioningConfig::new`] sets [`ConditioningConfig::DEFAULT_CLASS_LOSS_WEIGHT`], a
    /// JSON config without the field has none, as configs saved before it existed):
    /// L_Dx gains `w·CE(C(x), y)` on real images, L_GE gains `w·λ·½[CE(C(x̂), y) + CE(C(x̃), y)]`
    /// (see [`crate::objective`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub class_loss_weight: f64,
    /// The label also enters after every upsampling stage of G, not only at the 4×4 stem: a
    /// per-channel shift λ·W_i·e(y) of stage i's features, W_i a linear map of the label
    /// embedding that starts at zero (the shift of BigGAN's class-conditional batch norm), so
    /// that every resolution is told the class directly. Off unless set.
    #[serde(default, skip_serializing_if = "is_false")]
    pub every_stage: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(weight: &f64) -> bool {
    *weight == 0.0
}

fn default_embedding_dim() -> usize {
    16
}

/// When the condition's strength λ rises from 0 to 1, in images shown (step × batch size):
/// λ = clamp((images − start_images) / length_images, 0, 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditioningTransition {
    /// Images shown before the condition starts to enter.
    pub start_images: u64,
    /// Images over which λ rises linearly to 1 (at least 1).
    pub length_images: u64,
}

impl ConditioningConfig {
    /// The auxiliary classifier's weight that [`ConditioningConfig::new`] sets. On HAM10000
    /// 32×32 (15 minutes, per-class evaluation in `docs/quality.md`) it lifted the class
    /// fidelity of every diagnosis to at least 0.96 of the classifier's recall on real lesions,
    /// where 0 left naevi, keratoses and basal cell carcinomas at half of it.
    pub const DEFAULT_CLASS_LOSS_WEIGHT: f64 = 0.5;

    /// Conditioning on `classes` with the defaults: a 16-value embedding, shuffled epochs, no
    /// transition, an auxiliary classifier of weight
    /// [`ConditioningConfig::DEFAULT_CLASS_LOSS_WEIGHT`].
    pub fn new(classes: Vec<String>) -> Self {
        ConditioningConfig {
            classes,
            embedding_dim: default_embedding_dim(),
            balanced_batches: false,
            transition: None,
            class_loss_weight: Self::DEFAULT_CLASS_LOSS_WEIGHT,
            every_stage: false,
        }
    }

    /// Number of classes.
    pub fn class_count(&self) -> usize {
        self.classes.len()
    }

    /// The label of class `name`, if it is one of [`ConditioningConfig::classes`].
    pub fn label_of(&self, name: &str) -> Option<usize> {
        self.classes.iter().position(|c| c == name)
    }

    /// Checks every field; the error names the first bad one (as in the config's JSON).
    pub fn validate(&self) -> Result<()> {
        if self.classes.len() < 2 {
            return Err(AeganError::config(
                "conditioning.classes",
                &self.classes,
                "must name at least two classes",
            ));
        }
        for (i, name) in self.classes.iter().enumerate() {
            if name.trim().is_empty() || self.classes[..i].contains(name) {
                return Err(AeganError::config(
                    "conditioning.classes",
                    &self.classes,
                    "names must be non-empty and distinct",
                ));
            }
        }
        if self.embedding_dim == 0 {
            return Err(AeganError::config(
                "conditioning.embedding_dim",
                self.embedding_dim,
                "must be at least 1",
            ));
        }
        if !(self.class_loss_weight.is_finite() && self.class_loss_weight >= 0.0) {
            return Err(AeganError::config(
                "conditioning.class_loss_weight",
                self.class_loss_weight,
                "must be a finite number ≥ 0",
            ));
        }
        if let Some(t) = self.transition {
            if t.length_images == 0 {
                return Err(AeganError::config(
                    "conditioning.transition.length_images",
                    t.length_images,
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }
}
