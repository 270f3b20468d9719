//! A small image classifier: the judge of class fidelity (does an image generated for a
//! diagnosis look like that diagnosis?) and the model of the downstream test (does adding
//! generated images of rare diagnoses help a classifier trained on real ones?).
//!
//! Three stride-2 convolutions with leaky ReLU, global average pooling and a linear layer to
//! one logit per class; trained with softmax cross-entropy and Adam on class-balanced batches
//! ([`crate::data::ClassBalancedSampler`]), so a diagnosis with 92 images counts as much as
//! one with 5,364, with the flips and quarter turns of [`crate::data::Augment::Dihedral`].
//! Deterministic from its seed on the CPU.

use candle_core::{Device, Tensor, D};

use crate::data::{Augment, ClassBalancedSampler, ImageSet};
use crate::error::{AeganError, Result};
use crate::nets::layers::Conv;
use crate::optim::Adam;
use crate::params::ParamStore;

/// How a [`Classifier`] is built and trained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassifierConfig {
    /// Channels of the three convolutions.
    pub widths: [usize; 3],
    /// Training steps.
    pub steps: u64,
    /// Images per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Seed of the weights and the batches.
    pub seed: u64,
}

impl Default for ClassifierConfig {
    /// Widths 16, 32, 64; 600 steps of 64 images; learning rate 2e-3; seed 0.
    fn default() -> Self {
        ClassifierConfig {
            widths: [16, 32, 64],
            steps: 600,
            batch_size: 64,
            learning_rate: 2e-3,
            seed: 0,
        }
    }
}

/// A trained classifier over the classes of the set it was trained on.
pub struct Classifier {
    convs: Vec<Conv>,
    out: candle_nn::Linear,
    classes: Vec<String>,
    store: ParamStore,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("classes", &self.classes)
            .field("convolutions", &self.convs.len())
            .finish_non_exhaustive()
    }
}

const SLOPE: f64 = 0.2;

impl Classifier {
    /// An untrained classifier for `classes` (at least two) of `channels`-channel images.
    pub fn new(
        classes: Vec<String>,
        channels: usize,
        config: &ClassifierConfig,
        device: &Device,
    ) -> Result<Self> {
        if classes.len() < 2 {
            return Err(AeganError::BadInput {
                what: "classifier classes",
                expected: "at least two".into(),
                found: vec![classes.len()],
            });
        }
        let store = ParamStore::new(config.seed);
        let vb = store.var_builder(device);
        let mut convs = Vec::new();
        let mut c_in = channels;
        for (i, &width) in config.widths.iter().enumerate() {
            convs.push(Conv::new(vb.pp(format!("conv.{i}")), c_in, width, 3, 2, true)?);
            c_in = width;
        }
        let out = candle_nn::linear(c_in, classes.len(), vb.pp("out"))?;
        Ok(Classifier {
            convs,
            out,
            classes,
            store,
        })
    }

    /// Trains a classifier on the labelled set `set` (see [`ImageSet::with_labels`]) on
    /// class-balanced, augmented batches. A set without labels is an error.
    pub fn train(set: &ImageSet, config: &ClassifierConfig, device: &Device) -> Result<Self> {
        let labels = set.labels().ok_or_else(|| AeganError::BadInput {
            what: "classifier training set",
            expected: "a class per image (ImageSet::with_labels)".into(),
            found: vec![0],
        })?;
        let classifier = Classifier::new(set.class_names().to_vec(), 3, config, device)?;
        let sampler = ClassBalancedSampler::new(labels, config.batch_size, config.seed)?;
        let mut adam = Adam::new(
            classifier.store.trainable(),
            config.learning_rate,
            (0.9, 0.999),
            1e-8,
        )?;
        for step in 0..config.steps {
            let indices = sampler.batch(step);
            let x = set.batch_augmented(&indices, Augment::Dihedral, config.seed, step, device)?;
            let y: Vec<u32> = indices.iter().map(|&i| labels[i] as u32).collect();
            let y = Tensor::new(y.as_slice(), device)?;
            let loss = candle_nn::loss::cross_entropy(&classifier.logits(&x)?, &y)?;
            adam.step(&loss.backward()?)?;
        }
        Ok(classifier)
    }

    /// The class names, in the order of the logits.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Logits `(N, classes)` for images `(N, 3, H, W)` in [−1, 1].
    pub fn logits(&self, images: &Tensor) -> Result<Tensor> {
        let mut x = images.clone();
        for conv in &self.convs {
            x = conv.forward_leaky(&x, SLOPE)?;
        }
        let pooled = x.mean(D::Minus1)?.mean(D::Minus1)?;
        Ok(candle_core::Module::forward(&self.out, &pooled)?)
    }

    /// The most likely class of each image, 256 images at a time.
    pub fn predict(&self, images: &Tensor) -> Result<Vec<usize>> {
        let n = images.dim(0)?;
        let mut out = Vec::with_capacity(n);
        for start in (0..n).step_by(256) {
            let chunk = images.narrow(0, start, 256.min(n - start))?;
            let best = self.logits(&chunk)?.detach().argmax(D::Minus1)?;
            out.extend(best.to_vec1::<u32>()?.into_iter().map(|c| c as usize));
        }
        Ok(out)
    }
}

/// For each of `classes` classes, the fraction of the images of that class (by `truth`)
/// predicted as it; `None` for a class with no image. `predicted` and `truth` must be as long
/// as each other.
pub fn recall_per_class(predicted: &[usize], truth: &[usize], classes: usize) -> Result<Vec<Option<f64>>> {
    if predicted.len() != truth.len() {
        return Err(AeganError::BadInput {
            what: "predicted classes",
            expected: format!("one per true class ({})", truth.len()),
            found: vec![predicted.len()],
        });
    }
    Ok((0..classes)
        .map(|c| {
            let members: Vec<usize> = (0..truth.len()).filter(|&i| truth[i] == c).collect();
            (!members.is_empty())
                .then(|| members.iter().filter(|&&i| predicted[i] == c).count() as f64 / members.len() as f64)
        })
        .collect())
}

/// The mean of the per-class recalls over the classes that have images: accuracy that a
/// classifier cannot raise by always answering the commonest class.
pub fn balanced_accuracy(predicted: &[usize], truth: &[usize], classes: usize) -> Result<f64> {
    let recalls: Vec<f64> = recall_per_class(predicted, truth, classes)?
        .into_iter()
        .flatten()
        .collect();
    Ok(recalls.iter().sum::<f64>() / recalls.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_accuracy_is_the_mean_recall_of_the_classes_present() {
        // Class 0: 3 of 4 right; class 1: 1 of 2; class 2: no image.
        let truth = [0, 0, 0, 0, 1, 1];
        let predicted = [0, 0, 0, 1, 1, 0];
        let recalls = recall_per_class(&predicted, &truth, 3).unwrap();
        assert_eq!(recalls, vec![Some(0.75), Some(0.5), None]);
        assert!((balanced_accuracy(&predicted, &truth, 3).unwrap() - 0.625).abs() < 1e-12);
        // Always answering the commonest class scores 1/2, not 4/6.
        assert!((balanced_accuracy(&[0; 6], &truth, 3).unwrap() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn predictions_of_another_length_than_the_truth_are_an_error() {
        let err = recall_per_class(&[0, 1], &[0, 1, 1], 2).unwrap_err().to_string();
        assert!(err.contains("predicted classes") && err.contains("[2]"), "{err}");
        assert!(balanced_accuracy(&[0; 4], &[0; 3], 1).is_err());
    }
}
