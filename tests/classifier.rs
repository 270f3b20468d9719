//! The class-fidelity classifier learns two synthetic classes and says which is which on
//! images it never saw, balanced over an uneven training set.

use aegan::candle_core::{Device, Tensor};
use aegan::data::{synthetic, ImageSet};
use aegan::metrics::classifier::{balanced_accuracy, Classifier, ClassifierConfig};

/// `lesions` synthetic lesions (class 0) and `sprites` synthetic sprites (class 1), 16×16.
fn two_classes(lesions: usize, sprites: usize, seed: u64) -> (Tensor, Vec<usize>) {
    let device = Device::Cpu;
    let a = synthetic::lesions(lesions, 16, seed).to_tensor(&device).unwrap();
    let b = synthetic::sprites(sprites, 16, seed).to_tensor(&device).unwrap();
    let images = Tensor::cat(&[&a, &b], 0).unwrap();
    let labels = (0..lesions + sprites)
        .map(|i| usize::from(i >= lesions))
        .collect();
    (images, labels)
}

#[test]
fn the_classifier_tells_two_classes_apart_on_new_images_though_one_is_rare() {
    let (train, labels) = two_classes(120, 12, 1);
    let rgb = aegan::viz::to_rgb_images(&train).unwrap();
    let set = ImageSet::from_rgb(&rgb, "two synthetic classes")
        .unwrap()
        .with_labels(labels, vec!["lesion".into(), "sprite".into()])
        .unwrap();
    let config = ClassifierConfig {
        steps: 60,
        batch_size: 16,
        ..ClassifierConfig::default()
    };
    let classifier = Classifier::train(&set, &config, &Device::Cpu).unwrap();
    assert_eq!(classifier.classes(), ["lesion", "sprite"]);
    let (test, truth) = two_classes(40, 40, 2);
    let predicted = classifier.predict(&test).unwrap();
    let score = balanced_accuracy(&predicted, &truth, 2).unwrap();
    assert!(score >= 0.9, "balanced accuracy {score} on new images");
    // An unlabelled set cannot train a classifier.
    let err = Classifier::train(&synthetic::lesions(4, 16, 0), &config, &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("class per image"), "{err}");
}
