//! Data beyond memory: the `Dataset` trait, 8-bit image sets, a folder decoded as drawn with a
//! bounded store, and a training loop that gives the same run from either.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use aegan::candle_core::Device;
use aegan::data::{load_folder, synthetic, Augment, Dataset, FolderDataset, ImageSet, LoadOptions};
use aegan::{AeganTrainer, LoopOptions, TrainingLoop};

fn options(size: usize) -> LoadOptions {
    let mut o = LoadOptions::new(size);
    o.cache_dir = None;
    o.verbose = false;
    o
}

/// `n` synthetic lesions written as PNG files into `dir`.
fn lesion_folder(dir: &Path, n: usize, size: usize) {
    let set = synthetic::lesions(n, size, 4);
    let images = aegan::viz::to_rgb_images(&set.to_tensor(&Device::Cpu).unwrap()).unwrap();
    for (i, im) in images.iter().enumerate() {
        im.save(dir.join(format!("lesion-{i:03}.png"))).unwrap();
    }
}

#[test]
fn an_image_set_keeps_one_byte_per_value_and_converts_batches_exactly() {
    let set = synthetic::lesions(5, 16, 0);
    let bytes = Dataset::pixels(&set, &[0, 1, 2, 3, 4]).unwrap();
    assert_eq!(bytes.len(), 5 * 3 * 16 * 16);
    let floats = set
        .batch(&[3], &Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let third = &bytes[3 * 768..4 * 768];
    for (f, b) in floats.iter().zip(third) {
        assert_eq!(*f, f32::from(*b) / 127.5 - 1.0);
    }
}

#[test]
fn a_folder_decoded_as_drawn_gives_the_images_of_the_loaded_folder_and_keeps_at_most_its_capacity() {
    let dir = tempfile::tempdir().unwrap();
    lesion_folder(dir.path(), 7, 16);
    let loaded = load_folder(dir.path(), &options(16))
        .unwrap()
        .to_image_set("loaded")
        .unwrap();
    let lazy = FolderDataset::open(dir.path(), &options(16), 3).unwrap();
    assert_eq!(lazy.len(), 7);
    assert_eq!(lazy.image_size(), 16);
    let all: Vec<usize> = (0..7).collect();
    assert_eq!(
        lazy.pixels(&all).unwrap(),
        Dataset::pixels(&loaded, &all).unwrap()
    );
    assert!(
        lazy.kept() <= 3,
        "kept {} images with a capacity of 3",
        lazy.kept()
    );
    // Drawn again (some kept, some decoded anew): the same bytes.
    assert_eq!(
        lazy.pixels(&[6, 0, 6]).unwrap(),
        Dataset::pixels(&loaded, &[6, 0, 6]).unwrap()
    );
    let augmented =
        |data: &dyn Dataset| aegan::data::batch_pixels(data, &[1, 5], Augment::Dihedral, 3, 9).unwrap();
    assert_eq!(augmented(&lazy), augmented(&loaded));
}

#[test]
fn a_folder_file_that_cannot_be_decoded_is_named_when_drawn_and_an_index_out_of_range_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    lesion_folder(dir.path(), 2, 16);
    std::fs::write(dir.path().join("lesion-002.png"), b"not a png").unwrap();
    let lazy = FolderDataset::open(dir.path(), &options(16), 8).unwrap();
    assert_eq!(lazy.len(), 3);
    assert!(lazy.pixels(&[0, 1]).is_ok());
    let message = lazy.pixels(&[2]).unwrap_err().to_string();
    assert!(message.contains("lesion-002.png"), "{message}");
    let message = lazy.pixels(&[3]).unwrap_err().to_string();
    assert!(message.contains("image index"), "{message}");
    let empty = tempfile::tempdir().unwrap();
    assert!(FolderDataset::open(empty.path(), &options(16), 8).is_err());
}

/// Every step's losses of a 4-step loop over `data`.
fn losses_of_a_run(data: &dyn Dataset) -> Vec<String> {
    let out = tempfile::tempdir().unwrap();
    let mut trainer = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    let mut options = LoopOptions::new(out.path(), 4);
    options.progress = false;
    options.save_every = 100;
    options.augment = Augment::Dihedral;
    TrainingLoop::new(options, Arc::new(AtomicBool::new(false)))
        .run(&mut trainer, data)
        .unwrap();
    std::fs::read_to_string(out.path().join("losses.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn training_from_a_folder_decoded_as_drawn_is_training_from_the_loaded_set() {
    let dir = tempfile::tempdir().unwrap();
    lesion_folder(dir.path(), 12, 16);
    let loaded: ImageSet = load_folder(dir.path(), &options(16))
        .unwrap()
        .to_image_set("loaded")
        .unwrap();
    let lazy = FolderDataset::open(dir.path(), &options(16), 4).unwrap();
    let (a, b) = (losses_of_a_run(&loaded), losses_of_a_run(&lazy));
    assert_eq!(a.len(), 4);
    assert_eq!(a, b);
}

#[test]
fn the_loop_with_its_prefetched_batches_trains_exactly_as_steps_by_hand() {
    // The loop prepares each batch on another thread one step ahead; the same steps taken by
    // hand on the batches the sampler names must give the same losses.
    let data = synthetic::lesions(12, 16, 2);
    let by_loop = losses_of_a_run(&data);
    let config = common::tiny(16);
    let sampler = aegan::data::BatchSampler::new(data.len(), config.batch_size, config.seed).unwrap();
    let mut trainer = AeganTrainer::new(config.clone(), &Device::Cpu).unwrap();
    for (step, line) in by_loop.iter().enumerate() {
        let step = step as u64;
        let batch = data
            .batch_augmented(
                &sampler.batch(step),
                Augment::Dihedral,
                config.seed,
                step,
                &Device::Cpu,
            )
            .unwrap();
        let losses = trainer.step(&batch).unwrap();
        assert_eq!(&serde_json::to_string(&losses).unwrap(), line, "step {step}");
    }
}
