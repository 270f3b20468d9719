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

/// The default output folders of the example programs (`runs/<name>`), which a user's earlier
/// runs fill.
pub const DEFAULT_RUN_FOLDERS: [&str; 3] = ["runs/ham10000", "runs/sprites", "runs/generated"];

/// A command that runs example `name` as a user runs it after the README's first command: in
/// a working directory whose `runs/` holds a run in every example's default output folder
/// ([`users_folder`]), with the image cache inside `dir` (the test's own temporary
/// directory). A test that forgets `--out` is refused there instead of writing into the
/// project folder, and no test reads what a user left in the project's `runs/`.
pub fn example_command(name: &str, dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(example(name));
    command
        .current_dir(users_folder())
        .env("AEGAN_CACHE_DIR", dir.join("cache"));
    command
}

/// A folder like a user's copy of the project after running every example: each of
/// [`DEFAULT_RUN_FOLDERS`] holds a checkpoint and a loss log. Made once per test binary under
/// cargo's temporary folder for tests; every file is written to a temporary name and renamed,
/// so test processes that make it at the same time see whole files.
pub fn users_folder() -> &'static std::path::Path {
    static FOLDER: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    FOLDER.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("users-folder");
        for run in DEFAULT_RUN_FOLDERS {
            write_a_run(&root.join(run));
        }
        root
    })
}

/// Makes `out` an output folder that holds a training run: a checkpoint (the 0.1 fixture's,
/// two steps) and a loss log of two steps.
pub fn write_a_run(out: &std::path::Path) {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoint-0.1");
    copy_whole_files(&fixture, &out.join("checkpoint"));
    write_whole_file(
        &out.join("losses.jsonl"),
        b"{\"step\":1,\"d_image\":1.0}\n{\"step\":2,\"d_image\":1.0}\n",
    );
}

/// Copies the tree `from` into `to`, each file through [`write_whole_file`].
fn copy_whole_files(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_whole_files(&entry.path(), &target);
        } else {
            write_whole_file(&target, &std::fs::read(entry.path()).unwrap());
        }
    }
}

/// Writes `bytes` to `path` through a temporary file of this process and a rename.
fn write_whole_file(path: &std::path::Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, bytes).unwrap();
    std::fs::rename(&temporary, path).unwrap();
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

/// Overwrites the first value of tensor `name` in the safetensors file `path` with `value`,
/// byte by byte (aegan itself refuses to write a value that is not finite).
pub fn poison(path: &std::path::Path, name: &str, value: f32) {
    let mut bytes = std::fs::read(path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let start = header[name]["data_offsets"][0].as_u64().unwrap() as usize + 8 + header_len;
    bytes[start..start + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(path, bytes).unwrap();
}
