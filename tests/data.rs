//! The built-in synthetic sets and the batch sampler are deterministic and well formed.

use aegan::candle_core::Device;
use aegan::data::{synthetic, BatchSampler};

mod common;

#[test]
fn synthetic_sets_are_deterministic_from_their_seed() {
    for make in [synthetic::lesions, synthetic::sprites] {
        let a = make(6, 32, 1).to_tensor(&Device::Cpu).unwrap();
        let b = make(6, 32, 1).to_tensor(&Device::Cpu).unwrap();
        let c = make(6, 32, 2).to_tensor(&Device::Cpu).unwrap();
        assert_eq!(common::max_abs_diff(&a, &b), 0.0);
        assert!(common::max_abs_diff(&a, &c) > 0.1);
    }
}

#[test]
fn synthetic_sets_say_they_are_synthetic_and_have_the_asked_size() {
    for size in [16, 64, 256] {
        for set in [synthetic::lesions(3, size, 0), synthetic::sprites(3, size, 0)] {
            assert!(set.description().contains("synthetic"));
            assert_eq!((set.len(), set.image_size()), (3, size));
            let t = set.to_tensor(&Device::Cpu).unwrap();
            assert_eq!(t.dims(), &[3, 3, size, size]);
            let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
        }
    }
    // Size 0 draws empty images rather than dividing by zero.
    for set in [synthetic::lesions(2, 0, 0), synthetic::sprites(2, 0, 0)] {
        assert_eq!((set.len(), set.image_size()), (2, 0));
    }
}

#[test]
fn lesions_are_darker_in_the_middle_and_sprites_have_mirror_symmetry() {
    let lesions = synthetic::lesions(20, 32, 4).to_tensor(&Device::Cpu).unwrap();
    let centre = lesions
        .narrow(2, 12, 8)
        .unwrap()
        .narrow(3, 12, 8)
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let corner = lesions
        .narrow(2, 0, 6)
        .unwrap()
        .narrow(3, 0, 6)
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(centre < corner - 0.2, "centre {centre} corner {corner}");

    let sprites = synthetic::sprites(10, 32, 4).to_tensor(&Device::Cpu).unwrap();
    let mirrored = sprites.flip(&[3]).unwrap();
    assert_eq!(common::max_abs_diff(&sprites, &mirrored), 0.0);
    let std = sprites.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(std.iter().any(|v| *v < 0.0) && std.iter().any(|v| *v > 0.9));
}

#[test]
fn sampler_repeats_per_seed_covers_an_epoch_and_reshuffles_the_next() {
    let s = BatchSampler::new(10, 3, 7).unwrap();
    assert_eq!(s.batches_per_epoch(), 3);
    assert_eq!(s.batch(4), BatchSampler::new(10, 3, 7).unwrap().batch(4));
    let mut epoch0: Vec<usize> = (0..3).flat_map(|i| s.batch(i)).collect();
    epoch0.sort();
    epoch0.dedup();
    assert_eq!(epoch0.len(), 9, "no image twice within an epoch");
    let first: Vec<Vec<usize>> = (0..3).map(|i| s.batch(i)).collect();
    let second: Vec<Vec<usize>> = (3..6).map(|i| s.batch(i)).collect();
    assert_ne!(first, second);
    assert!(BatchSampler::new(2, 3, 0).is_err());
}

#[test]
fn a_set_carries_its_labels_through_selection_and_refuses_bad_ones() {
    let names = vec!["round".to_string(), "square".to_string()];
    let set = synthetic::lesions(4, 16, 0)
        .with_labels(vec![0, 1, 1, 0], names.clone())
        .unwrap();
    assert_eq!(set.labels(), Some(&[0, 1, 1, 0][..]));
    let picked = set.select(&[2, 3]).unwrap();
    assert_eq!(picked.labels(), Some(&[1, 0][..]));
    assert_eq!(picked.class_names(), names.as_slice());
    assert!(synthetic::lesions(4, 16, 0).labels().is_none());
    let err = |labels: Vec<usize>, names: Vec<&str>| {
        synthetic::lesions(4, 16, 0)
            .with_labels(labels, names.into_iter().map(String::from).collect())
            .unwrap_err()
            .to_string()
    };
    assert!(err(vec![0, 1], vec!["a", "b"]).contains("one label per image"));
    assert!(err(vec![0, 1, 2, 0], vec!["a", "b"]).contains("class names"));
    assert!(err(vec![0, 1, 1, 0], vec!["a", "a"]).contains("repeated"));
}

#[test]
fn the_class_balanced_sampler_draws_each_class_equally_often_and_repeats_for_a_step() {
    // 90 images of class 0, 10 of class 1, 5 of class 2.
    let labels: Vec<usize> = (0..105)
        .map(|i| {
            if i < 90 {
                0
            } else if i < 100 {
                1
            } else {
                2
            }
        })
        .collect();
    let sampler = aegan::data::ClassBalancedSampler::new(&labels, 30, 7).unwrap();
    let mut counts = [0usize; 3];
    for step in 0..400 {
        let batch = sampler.batch(step);
        assert_eq!(batch.len(), 30);
        for i in batch {
            counts[labels[i]] += 1;
        }
    }
    let total = counts.iter().sum::<usize>() as f64;
    for (class, &n) in counts.iter().enumerate() {
        let share = n as f64 / total;
        assert!(
            (share - 1.0 / 3.0).abs() < 0.02,
            "class {class}: {share:.3} of draws"
        );
    }
    assert_eq!(sampler.batch(17), sampler.batch(17));
    assert_ne!(sampler.batch(17), sampler.batch(18));
    let other_seed = aegan::data::ClassBalancedSampler::new(&labels, 30, 8).unwrap();
    assert_ne!(sampler.batch(17), other_seed.batch(17));
    assert!(aegan::data::ClassBalancedSampler::new(&[], 4, 0).is_err());
}

#[test]
fn a_labelled_set_drops_its_empty_classes_and_answers_labels_by_index() {
    use aegan::data::Dataset;
    let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    let set = synthetic::lesions(4, 16, 0)
        .with_labels(vec![3, 1, 3, 1], names)
        .unwrap()
        .without_empty_classes();
    assert_eq!(set.class_names(), ["b", "d"], "a and c had no image");
    assert_eq!(set.labels().unwrap(), [1, 0, 1, 0]);
    assert_eq!(Dataset::labels_of(&set, &[2, 1]).unwrap(), Some(vec![1, 0]));
    assert!(Dataset::labels_of(&set, &[4]).is_err(), "index out of range");
    let unlabelled = synthetic::lesions(4, 16, 0);
    assert_eq!(Dataset::labels_of(&unlabelled, &[0, 3]).unwrap(), None);
    assert!(Dataset::labels_of(&unlabelled, &[9]).is_err());
    assert!(Dataset::class_names(&unlabelled).is_empty());
}
