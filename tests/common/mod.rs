//! Helpers shared by the integration tests.
#![allow(dead_code)]

use aegan::config::{ConvLayer, WidthSchedule};
use aegan::AeganConfig;

/// A config with tiny widths so tests run in seconds on two cores.
pub fn tiny(size: usize) -> AeganConfig {
    let mut c = AeganConfig::lean(size);
    c.latent_dim = 8;
    c.generator.widths = WidthSchedule {
        at_32: 8,
        min: 4,
        max: 16,
    };
    c.encoder.widths = WidthSchedule {
        at_32: 8,
        min: 4,
        max: 16,
    };
    c.encoder.hidden = vec![16];
    c.image_discriminator.widths = WidthSchedule {
        at_32: 4,
        min: 4,
        max: 16,
    };
    c.latent_discriminator.hidden = vec![16];
    c.batch_size = 4;
    c
}

/// Like [`tiny`] but with a head and a neck, so every kind of layer is exercised.
pub fn tiny_full(size: usize) -> AeganConfig {
    let mut c = tiny(size);
    c.generator.head = vec![ConvLayer { width: 6, kernel: 4 }];
    c.encoder.neck = vec![ConvLayer { width: 6, kernel: 3 }];
    c
}

/// Largest absolute difference between two tensors of the same shape.
pub fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    max_abs(&(a - b).unwrap())
}

/// Largest absolute value of a tensor's elements.
pub fn max_abs(t: &candle_core::Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Every parameter of every network, flattened, keyed "network/tensor".
pub fn snapshot(networks: &aegan::Networks) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    for (stem, store) in networks.saved_stores() {
        for (name, var) in store.trainable() {
            out.push((
                format!("{stem}/{name}"),
                var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            ));
        }
    }
    out
}

/// Largest absolute difference between two [`snapshot`]s of the same networks.
pub fn max_weight_diff(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> f32 {
    assert_eq!(a.len(), b.len(), "snapshots of different networks");
    a.iter()
        .zip(b)
        .flat_map(|((_, x), (_, y))| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0f32, f32::max)
}

/// An example binary that `cargo test` builds beside the test binaries.
pub fn example(name: &str) -> std::path::PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let path = deps.parent().unwrap().join("examples").join(name);
    assert!(
        path.exists(),
        "{} not built; run through `cargo test`",
        path.display()
    );
    path
}

/// `n` synthetic lesion images of `size` pixels as JPEG files in `dir`.
pub fn write_images(dir: &std::path::Path, n: usize, size: usize) -> Vec<std::path::PathBuf> {
    let images = aegan::viz::to_rgb_images(
        &aegan::data::synthetic::lesions(n, size, 2)
            .to_tensor(&aegan::candle_core::Device::Cpu)
            .unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    images
        .iter()
        .enumerate()
        .map(|(i, im)| {
            let path = dir.join(format!("ISIC_{i:07}.jpg"));
            im.save(&path).unwrap();
            path
        })
        .collect()
}

/// A HAM10000-shaped folder: `n` images, two per lesion, a third of them melanomas.
pub fn ham_folder(dir: &std::path::Path, n: usize) {
    write_images(&dir.join("HAM10000_images_part_1"), n, 24);
    let mut csv = String::from("lesion_id,image_id,dx\n");
    for i in 0..n {
        let dx = if i % 3 == 0 { "mel" } else { "nv" };
        csv.push_str(&format!("HAM_{},ISIC_{i:07},{dx}\n", i / 2));
    }
    std::fs::write(dir.join("HAM10000_metadata.csv"), csv).unwrap();
}
