//! The image-quality metrics see what they are meant to see: SWD grows with blur and noise,
//! the checkerboard score flags a planted checkerboard, near duplicates are found, FID and
//! KID vanish for identical distributions, and the Inception network matches its reference.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use aegan::candle_core::{DType, Device, Tensor};
use aegan::data::synthetic;
use aegan::metrics::{self, checker, diversity, fid, inception, FeatureStats, FidInception};
use aegan::rng::TrainRng;
use aegan::{AeganError, Networks};

fn lesions(n: usize, size: usize, seed: u64) -> Tensor {
    synthetic::lesions(n, size, seed).to_tensor(&Device::Cpu).unwrap()
}

/// A 3×3 box blur (edges repeated).
fn blurred(images: &Tensor) -> Tensor {
    images
        .pad_with_same(2, 1, 1)
        .unwrap()
        .pad_with_same(3, 1, 1)
        .unwrap()
        .avg_pool2d_with_stride(3, 1)
        .unwrap()
}

/// Gaussian noise of standard deviation `sigma`, clamped back to [−1, 1].
fn noisy(images: &Tensor, sigma: f64, seed: u64) -> Tensor {
    let n = images.elem_count();
    let noise = TrainRng::new(seed)
        .normal((1, n), &Device::Cpu)
        .unwrap()
        .reshape(images.dims())
        .unwrap();
    (images + (noise * sigma).unwrap())
        .unwrap()
        .clamp(-1f32, 1f32)
        .unwrap()
}

/// Random features `(n, d)` from a standard normal, scaled and shifted.
fn features(n: usize, d: usize, seed: u64) -> Tensor {
    TrainRng::new(seed).normal((n, d), &Device::Cpu).unwrap()
}

#[test]
fn swd_of_a_set_with_itself_is_zero_and_exchanging_the_sets_changes_nothing() {
    let a = lesions(48, 32, 1);
    let b = lesions(48, 32, 2);
    let same = metrics::swd(&a, &a, 7).unwrap();
    assert_eq!(
        same.per_level.iter().map(|l| l.0).collect::<Vec<_>>(),
        vec![32, 16]
    );
    assert!(same.mean.abs() < 1e-9, "{same:?}");
    let ab = metrics::swd(&a, &b, 7).unwrap();
    let ba = metrics::swd(&b, &a, 7).unwrap();
    assert!(ab.mean > 0.0);
    assert!((ab.mean - ba.mean).abs() < 1e-9, "{ab:?} vs {ba:?}");
    assert_eq!(metrics::swd(&a, &b, 7).unwrap(), ab, "not deterministic");
}

#[test]
fn swd_grows_with_blur_and_with_noise() {
    let real = lesions(96, 32, 1);
    let other = lesions(96, 32, 2);
    let baseline = metrics::swd(&real, &other, 0).unwrap();
    let blur = metrics::swd(&real, &blurred(&other), 0).unwrap();
    let noise = metrics::swd(&real, &noisy(&other, 0.15, 3), 0).unwrap();
    eprintln!("swd: same distribution {baseline:?}\nblurred {blur:?}\nnoisy {noise:?}");
    // Blur and noise change textures: the finest level, far above two samples of one set.
    let finest = |s: &metrics::SwdScore| s.per_level[0].1;
    assert!(
        finest(&blur) > 2.0 * finest(&baseline),
        "blur {blur:?} vs {baseline:?}"
    );
    assert!(
        finest(&noise) > 2.0 * finest(&baseline),
        "noise {noise:?} vs {baseline:?}"
    );
    assert!(blur.mean > baseline.mean && noise.mean > baseline.mean);
}

#[test]
fn swd_of_sets_of_different_sizes_and_64_pixel_images() {
    let a = lesions(12, 64, 1);
    let b = lesions(20, 64, 2);
    let score = metrics::swd(&a, &b, 0).unwrap();
    assert_eq!(
        score.per_level.iter().map(|l| l.0).collect::<Vec<_>>(),
        vec![64, 32, 16]
    );
    assert!(score.per_level.iter().all(|l| l.1.is_finite() && l.1 > 0.0));
}

#[test]
fn checker_score_flags_a_planted_checkerboard_and_not_clean_images() {
    let real = lesions(64, 32, 1);
    let clean = lesions(64, 32, 2);
    // ±8 grey levels alternating from pixel to pixel.
    let pattern: Vec<f32> = (0..32 * 32)
        .map(|p| {
            if (p / 32 + p % 32) % 2 == 0 {
                8.0 / 127.5
            } else {
                -8.0 / 127.5
            }
        })
        .collect();
    let pattern = Tensor::from_vec(pattern, (1, 1, 32, 32), &Device::Cpu).unwrap();
    let checkered = clean.broadcast_add(&pattern).unwrap().clamp(-1f32, 1f32).unwrap();
    let flagged = checker::checker_ratio(&checkered, &real).unwrap();
    let normal = checker::checker_ratio(&clean, &real).unwrap();
    eprintln!("checker ratio: planted {flagged:.2}, clean {normal:.3}");
    assert!(flagged > 5.0, "planted checkerboard ratio {flagged}");
    assert!((0.5..2.0).contains(&normal), "clean ratio {normal}");
    // A pure checkerboard puts all its power at (H/2, W/2); the smooth component that carries
    // the jumps across the image's edges takes a share of (H + W)/(2HW) of its amplitude.
    let pure = pattern
        .broadcast_as((1, 3, 32, 32))
        .unwrap()
        .contiguous()
        .unwrap();
    let kept = (1.0 - 64.0 / (2.0 * 32.0 * 32.0)) * (1.0 - 64.0 / (2.0 * 32.0 * 32.0));
    assert!((checker::checker_score(&pure).unwrap() - kept).abs() < 1e-9);
}

#[test]
fn the_checker_ratio_comes_with_a_repeatable_bootstrap_interval_around_it() {
    let real = lesions(300, 32, 1);
    let fake = lesions(300, 32, 2);
    let interval = |fake: &Tensor, real: &Tensor, seed: u64| {
        checker::checker_ratio_with_interval(fake, real, seed).unwrap().1
    };
    let (ratio, (low, high)) = checker::checker_ratio_with_interval(&fake, &real, 5).unwrap();
    assert_eq!(ratio, checker::checker_ratio(&fake, &real).unwrap());
    eprintln!("ratio {ratio:.3}, interval {low:.3} to {high:.3}");
    assert!(low < ratio && ratio < high, "{low} {ratio} {high}");
    assert_eq!((low, high), interval(&fake, &real, 5));
    assert_ne!((low, high), interval(&fake, &real, 6));
    // A set against itself: the interval holds 1.
    let (low, high) = interval(&real, &real, 5);
    assert!(low < 1.0 && 1.0 < high, "{low} {high}");
    // Fewer images, a wider interval.
    let few = |t: &Tensor| t.narrow(0, 0, 30).unwrap();
    let (few_low, few_high) = interval(&few(&fake), &few(&real), 5);
    let (low, high) = interval(&fake, &real, 5);
    assert!(
        few_high - few_low > high - low,
        "{few_low}-{few_high} against {low}-{high}"
    );
}

/// One grey image `(1, 3, h, w)` with the value `f(y, x)` in every channel.
fn grey_image(h: usize, w: usize, f: impl Fn(usize, usize) -> f32) -> Tensor {
    let plane: Vec<f32> = (0..h * w).map(|p| f(p / w, p % w)).collect();
    Tensor::from_vec(plane, (1, 1, h, w), &Device::Cpu)
        .unwrap()
        .broadcast_as((1, 3, h, w))
        .unwrap()
        .contiguous()
        .unwrap()
}

#[test]
fn smooth_gradients_across_the_image_are_not_checkerboards() {
    // Skin darkening from top to bottom, or from one corner to the other: nothing alternates
    // from pixel to pixel, but the jump between the last and the first row (the DFT wraps
    // around) put 3/H² of a linear ramp's power at the Nyquist bins before the periodic
    // component was taken: 0.0029 at 32×32, where real 64×64 lesions have 5e-5.
    let vertical = grey_image(32, 32, |y, _| -0.8 + 0.05 * y as f32);
    let diagonal = grey_image(32, 48, |y, x| -0.5 + 0.02 * y as f32 + 0.015 * x as f32);
    let curved = grey_image(64, 64, |y, x| {
        let (dy, dx) = (y as f32 - 20.0, x as f32 - 40.0);
        (-(dy * dy + dx * dx) / 600.0).exp() - 0.5
    });
    // What remains of a linear ramp over H rows is 3/(H²(H² − 1)).
    let score = checker::checker_score(&vertical).unwrap();
    let exact = 3.0 / (1024.0 * 1023.0);
    assert!(
        (score / exact - 1.0).abs() < 1e-4,
        "vertical ramp scores {score}, not {exact}"
    );
    for (name, image) in [("diagonal", diagonal), ("off-centre blob", curved)] {
        let score = checker::checker_score(&image).unwrap();
        assert!(score < 1e-5, "{name} gradient scores {score}");
    }
    // Stripes of whole rows do count: they keep ((H − 1)/H)² of their power.
    let stripes = grey_image(32, 32, |y, _| if y % 2 == 0 { 0.1 } else { -0.1 });
    let score = checker::checker_score(&stripes).unwrap();
    assert!(
        (score - (31.0f64 / 32.0).powi(2)).abs() < 1e-9,
        "row stripes score {score}"
    );
    // And they still show on top of a gradient.
    let striped_ramp = grey_image(32, 32, |y, _| {
        -0.8 + 0.05 * y as f32 + if y % 2 == 0 { 0.02 } else { -0.02 }
    });
    assert!(checker::checker_score(&striped_ramp).unwrap() > 1e-3);
}

/// The Nyquist share of a grey plane's periodic component by Moisan's general formula: the
/// boundary image's transform divided by 2 cos(2πk/H) + 2 cos(2πl/W) − 4, evaluated at the
/// three bins by plain sums (their exponentials are ±1).
fn periodic_nyquist_share(grey: &[f64], h: usize, w: usize) -> f64 {
    let mean = grey.iter().sum::<f64>() / (h * w) as f64;
    let g = |y: usize, x: usize| grey[y * w + x] - mean;
    let mut boundary = vec![0f64; h * w];
    for x in 0..w {
        boundary[x] += g(h - 1, x) - g(0, x);
        boundary[(h - 1) * w + x] += g(0, x) - g(h - 1, x);
    }
    for y in 0..h {
        boundary[y * w] += g(y, w - 1) - g(y, 0);
        boundary[y * w + w - 1] += g(y, 0) - g(y, w - 1);
    }
    let mut power = 0.0;
    for (k, l) in [(h / 2, w / 2), (h / 2, 0), (0, w / 2)] {
        let phase = |y: usize, x: usize| {
            if (k * y / (h / 2) + l * x / (w / 2)).is_multiple_of(2) {
                1.0
            } else {
                -1.0
            }
        };
        let (mut image, mut edges) = (0.0, 0.0);
        for y in 0..h {
            for x in 0..w {
                image += g(y, x) * phase(y, x);
                edges += boundary[y * w + x] * phase(y, x);
            }
        }
        let denominator = 2.0 * (std::f64::consts::TAU * k as f64 / h as f64).cos()
            + 2.0 * (std::f64::consts::TAU * l as f64 / w as f64).cos()
            - 4.0;
        power += (image - edges / denominator).powi(2);
    }
    let energy: f64 = (0..h * w).map(|p| g(p / w, p % w).powi(2)).sum();
    power / ((h * w) as f64 * energy)
}

#[test]
fn the_checker_score_is_the_nyquist_share_of_the_periodic_component() {
    for (h, w) in [(8, 8), (6, 10), (32, 16)] {
        // Irregular texture on a slope, so that opposite edges differ.
        let grey: Vec<f64> = (0..h * w)
            .map(|p| 0.3 * ((p * 7919 % 1013) as f64).sin() + 0.04 * (p / w) as f64 - 0.03 * (p % w) as f64)
            .collect();
        let image = grey_image(h, w, |y, x| grey[y * w + x] as f32);
        let as_stored: Vec<f64> = grey.iter().map(|&v| v as f32 as f64).collect();
        let expected = periodic_nyquist_share(&as_stored, h, w);
        let score = checker::checker_score(&image).unwrap();
        assert!(
            (score - expected).abs() < 1e-9,
            "{h}×{w}: {score} against {expected}"
        );
    }
}

#[test]
fn near_duplicates_are_found_in_a_repeated_set_and_not_in_distinct_images() {
    let real = lesions(200, 16, 4);
    let index: Vec<u32> = (0..2000).map(|i| i % 20).collect();
    let repeated = lesions(20, 16, 3)
        .index_select(&Tensor::new(index.as_slice(), &Device::Cpu).unwrap(), 0)
        .unwrap();
    let distinct = lesions(200, 16, 5);
    let collapsed = diversity::near_duplicate_fraction(&repeated, &real).unwrap();
    let varied = diversity::near_duplicate_fraction(&distinct, &real).unwrap();
    eprintln!("near-duplicate fraction: repeated {collapsed}, distinct {varied}");
    assert!(collapsed > 0.99, "{collapsed}");
    assert!(varied < 0.02, "{varied}");

    let spread = diversity::pairwise_distance_ratio(&distinct, &real).unwrap();
    let narrow = diversity::pairwise_distance_ratio(
        &noisy(
            &repeated.narrow(0, 0, 1).unwrap().repeat((50, 1, 1, 1)).unwrap(),
            0.01,
            1,
        ),
        &real,
    )
    .unwrap();
    eprintln!("pairwise distance ratio: distinct {spread:.3}, one image + noise {narrow:.3}");
    assert!((0.8..1.25).contains(&spread), "{spread}");
    assert!(narrow < 0.2, "{narrow}");

    // At 32×32, one image with strong per-pixel speckle: as varied as real images pixel by
    // pixel, one layout once averaged over 4×4 blocks to 8×8.
    let real = lesions(200, 32, 4);
    let speckled = noisy(&lesions(1, 32, 3).repeat((50, 1, 1, 1)).unwrap(), 0.3, 2);
    let pixels = diversity::pairwise_distance_ratio(&speckled, &real).unwrap();
    let layout = diversity::layout_distance_ratio(&speckled, &real).unwrap();
    let layout_spread = diversity::layout_distance_ratio(&lesions(200, 32, 5), &real).unwrap();
    eprintln!("one image + speckle: pixel ratio {pixels:.3}, layout ratio {layout:.3}; distinct layout {layout_spread:.3}");
    assert!(pixels > 0.8, "{pixels}");
    assert!(layout < 0.5, "{layout} against {pixels}");
    assert!((0.8..1.25).contains(&layout_spread), "{layout_spread}");
}

#[test]
fn fid_is_zero_for_identical_statistics_and_matches_closed_forms() {
    let d = 48;
    for n in [400, 20] {
        // n = 20 < d: singular covariances take the eigendecomposition path.
        let a = features(n, d, 1);
        let sa = FeatureStats::from_features(&a).unwrap();
        let trace: f64 = (0..d).map(|i| sa.cov[i * d + i]).sum();
        let same = fid::fid(&sa, &sa).unwrap();
        assert!(same.abs() < 1e-8 * trace, "n = {n}: FID(a, a) = {same}");
        // Shift by 0.5 in every coordinate: only the mean term, d / 4.
        let shifted = FeatureStats::from_features(&(&a + 0.5).unwrap()).unwrap();
        let f = fid::fid(&sa, &shifted).unwrap();
        assert!((f - d as f64 / 4.0).abs() < 1e-6 * d as f64, "n = {n}: {f}");
        // Scale by 2: μ₂ = 2μ, Σ₂ = 4Σ, (Σ₁Σ₂)^½ = 2Σ, so FID = |μ|² + Tr Σ.
        let scaled = FeatureStats::from_features(&(&a * 2.0).unwrap()).unwrap();
        let mean_sq: f64 = sa.mean.iter().map(|m| m * m).sum();
        let f = fid::fid(&sa, &scaled).unwrap();
        assert!(
            (f - (mean_sq + trace)).abs() < 1e-6 * trace,
            "n = {n}: {f} vs {}",
            mean_sq + trace
        );
    }
    // Two independent samples of one distribution: small against a real difference.
    let s1 = FeatureStats::from_features(&features(2000, 16, 1)).unwrap();
    let s2 = FeatureStats::from_features(&features(2000, 16, 2)).unwrap();
    let s3 = FeatureStats::from_features(&(features(2000, 16, 3) * 1.5).unwrap()).unwrap();
    let near = fid::fid(&s1, &s2).unwrap();
    let far = fid::fid(&s1, &s3).unwrap();
    assert!(near > 0.0 && near < 0.1 * far, "{near} vs {far}");
}

#[test]
fn fid_rejects_mismatched_or_broken_statistics() {
    let a = FeatureStats::from_features(&features(10, 4, 1)).unwrap();
    let b = FeatureStats::from_features(&features(10, 5, 1)).unwrap();
    assert!(matches!(fid::fid(&a, &b), Err(AeganError::BadInput { .. })));
    let mut broken = a.clone();
    broken.cov[3] = f64::NAN;
    assert!(matches!(fid::fid(&a, &broken), Err(AeganError::BadInput { .. })));
    assert!(FeatureStats::from_features(&features(1, 4, 1)).is_err());
}

#[test]
fn feature_stats_survive_a_round_trip_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("real-stats.safetensors");
    let stats = FeatureStats::from_features(&features(30, 8, 1)).unwrap();
    stats.save(&path).unwrap();
    assert_eq!(FeatureStats::load(&path).unwrap(), stats);
    std::fs::write(&path, b"not a safetensors file").unwrap();
    assert!(matches!(
        FeatureStats::load(&path),
        Err(AeganError::CorruptCheckpoint { .. })
    ));
    assert!(matches!(
        FeatureStats::load(&dir.path().join("missing")),
        Err(AeganError::Io { .. })
    ));
}

#[test]
fn kid_is_near_zero_for_one_distribution_and_not_for_two() {
    let a = features(300, 32, 1);
    let b = features(300, 32, 2);
    let c = (features(300, 32, 3) + 0.5).unwrap();
    let same = fid::kid(&a, &b, 100, 20, 0).unwrap();
    let different = fid::kid(&a, &c, 100, 20, 0).unwrap();
    eprintln!("kid: same {same:?}, shifted {different:?}");
    assert!(
        same.mean.abs() < 0.05 * different.mean,
        "{same:?} vs {different:?}"
    );
    assert!(same.mean.abs() < 3.0 * same.std + 1e-3, "{same:?}");
    assert!(different.mean > 5.0 * different.std, "{different:?}");
    assert_eq!(
        fid::kid(&a, &c, 100, 20, 0).unwrap(),
        different,
        "not deterministic"
    );
    // Large subsets use whole Gram matrices; the result is the same estimator.
    let whole = fid::kid(&a, &c, 300, 3, 5).unwrap();
    assert!(whole.mean > 5.0 * same.mean.abs());
    assert!(fid::kid(&a, &c, 1, 5, 0).is_err());
}

#[test]
fn reconstruction_error_is_finite_and_consistent() {
    let config = common::tiny(16);
    let nets = Networks::new(&config, &Device::Cpu).unwrap();
    let r = metrics::reconstruction_error(&nets, &lesions(10, 16, 1), None).unwrap();
    assert!(r.l1 > 0.0 && r.l1 < 2.0, "{r:?}");
    // MSE ≥ (mean |e|)², so PSNR ≤ −20·log10(L1 / 2).
    assert!(
        r.psnr_db.is_finite() && r.psnr_db <= -20.0 * (r.l1 / 2.0).log10() + 1e-9,
        "{r:?}"
    );
    assert!(metrics::reconstruction_error(&nets, &lesions(2, 32, 1), None).is_err());
}

#[test]
fn evaluate_reports_every_metric_without_an_inception_network() {
    let real = lesions(24, 32, 1);
    let fake = lesions(16, 32, 2);
    let report = metrics::evaluate(&real, &fake, None, 0).unwrap();
    assert_eq!((report.n_real, report.n_fake), (24, 16));
    assert!(report.fid.is_none() && report.kid.is_none() && report.reconstruction.is_none());
    assert!(report.swd.mean > 0.0 && report.checker_ratio > 0.0);
    assert!(report.near_duplicate_fraction < 0.2);
    let json: serde_json::Value = serde_json::from_str(&report.to_json_line()).unwrap();
    assert_eq!(json["n_fake"], 16);
    assert!(json["fid"].is_null());
    assert_eq!(report.ring_power_ratio.len(), 16);
    assert_eq!(json["ring_power_ratio"].as_array().unwrap().len(), 16);
    assert_eq!(
        report.ring_power_ratio,
        metrics::ring_power_ratio(&fake, &real).unwrap()
    );
    let table = report.to_string();
    assert!(
        table.contains("SWD at 16x16")
            && table.contains("checkerboard")
            && table.contains("frequency ring 1 to 16"),
        "{table}"
    );
}

#[test]
fn metrics_reject_malformed_images_instead_of_panicking() {
    let grey = Tensor::zeros((4, 1, 32, 32), DType::F32, &Device::Cpu).unwrap();
    let good = lesions(4, 32, 1);
    let small = lesions(4, 8, 1);
    let odd = Tensor::zeros((4, 3, 17, 17), DType::F32, &Device::Cpu).unwrap();
    let is_bad_input = |r: aegan::Result<f64>| matches!(r, Err(AeganError::BadInput { .. }));
    assert!(matches!(
        metrics::swd(&grey, &good, 0),
        Err(AeganError::BadInput { .. })
    ));
    assert!(matches!(
        metrics::swd(&small, &small, 0),
        Err(AeganError::BadInput { .. })
    ));
    assert!(matches!(
        metrics::swd(&good, &lesions(4, 16, 1), 0),
        Err(AeganError::BadInput { .. })
    ));
    assert!(is_bad_input(checker::checker_score(&odd)));
    assert!(is_bad_input(checker::checker_ratio(&good, &small)));
    assert!(is_bad_input(diversity::near_duplicate_fraction(
        &good.narrow(0, 0, 1).unwrap(),
        &good
    )));
    assert!(is_bad_input(diversity::pairwise_distance_ratio(&good, &grey)));
    assert!(metrics::evaluate(&good, &small, None, 0).is_err());
}

// ---- Inception parity (needs the weights in ../shared/models) ----

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models")
}

fn reference() -> std::collections::HashMap<String, Tensor> {
    let path = models_dir().join("inception-fid-reference.safetensors");
    aegan::candle_core::safetensors::load(&path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

#[test]
#[ignore = "needs ../shared/models (FID Inception weights); run with --ignored"]
fn inception_input_matches_the_reference_resize() {
    let reference = reference();
    let rows = inception::bilinear_resize_matrix(299, 32, &Device::Cpu).unwrap();
    let cols = inception::bilinear_resize_matrix(299, 32, &Device::Cpu)
        .unwrap()
        .t()
        .unwrap();
    let rows_err = max_abs(&(&rows - &reference["resize_rows_299x32"]).unwrap());
    let cols_err = max_abs(&(&cols - &reference["resize_cols_32x299"]).unwrap());
    let pixels = reference["images_u8_nhwc"]
        .to_dtype(DType::F32)
        .unwrap()
        .permute((0, 3, 1, 2))
        .unwrap();
    let input = inception::network_input(&pixels).unwrap();
    let expected = &reference["input_nchw_299"];
    let input_err = max_abs(&(&input - expected).unwrap());
    let rel = input_err / max_abs(expected);
    eprintln!("resize parity: R max abs {rows_err:e}, C max abs {cols_err:e}, input max abs {input_err:e} (relative {rel:e})");
    assert!(rows_err < 1e-6 && cols_err < 1e-6);
    assert!(input_err < 1e-5, "{input_err}");
    // The [-1, 1] path quantises back to the same pixels.
    let images = ((pixels / 127.5).unwrap() - 1.0).unwrap();
    let requantised = inception::quantise(&images).unwrap();
    assert_eq!(
        max_abs(
            &(requantised
                - &reference["images_u8_nhwc"]
                    .to_dtype(DType::F32)
                    .unwrap()
                    .permute((0, 3, 1, 2))
                    .unwrap())
                .unwrap()
        ),
        0.0
    );
}

#[test]
#[ignore = "needs ../shared/models (FID Inception weights); run with --ignored"]
fn inception_features_match_the_reference_pool3() {
    let reference = reference();
    let net = FidInception::load(
        &models_dir().join("inception-2015-12-05-fid.safetensors"),
        &Device::Cpu,
    )
    .unwrap()
    .with_batch_size(8);
    let start = Instant::now();
    let features = net.features_u8_nhwc(&reference["images_u8_nhwc"]).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let expected = &reference["pool3_features"];
    assert_eq!(features.dims(), &[8, 2048]);
    let diff = (&features - expected).unwrap();
    let abs_err = max_abs(&diff);
    let rel_err = abs_err / max_abs(expected);
    let row_rel = |i: usize| {
        let d = diff
            .get(i)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            .sqrt();
        let e = expected
            .get(i)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            .sqrt();
        d / e
    };
    let worst_row = (0..8).map(row_rel).fold(0f32, f32::max);
    eprintln!(
        "pool3 parity: max abs {abs_err:e}, max abs / max |ref| {rel_err:e}, worst row relative L2 {worst_row:e}; {:.2} s per image",
        seconds / 8.0
    );
    // The README's claim: features within 1e-5 of the reference, relative (2.5e-6 measured).
    assert!(rel_err < 1e-5, "{rel_err}");
    assert!(worst_row < 1e-5, "{worst_row}");
    // The [-1, 1] image path gives the same features.
    let images = ((reference["images_u8_nhwc"]
        .narrow(0, 0, 2)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .permute((0, 3, 1, 2))
        .unwrap()
        / 127.5)
        .unwrap()
        - 1.0)
        .unwrap();
    let via_images = net.features(&images).unwrap();
    assert!(max_abs(&(via_images - features.narrow(0, 0, 2).unwrap()).unwrap()) < 1e-5);
    // A file that is not these weights is refused, naming the problem.
    let wrong = FidInception::load(
        &models_dir().join("inception-fid-reference.safetensors"),
        &Device::Cpu,
    );
    assert!(wrong.is_err());
}

#[test]
fn evenly_spaced_takes_n_images_spread_over_the_set() {
    let set = synthetic::sprites(10, 8, 0);
    let all = set.to_tensor(&Device::Cpu).unwrap();
    let some = metrics::evenly_spaced(&set, 5).unwrap();
    assert_eq!(some.dims(), &[5, 3, 8, 8]);
    for (i, source) in [0usize, 2, 4, 6, 8].into_iter().enumerate() {
        let d = common::max_abs_diff(&some.get(i).unwrap(), &all.get(source).unwrap());
        assert_eq!(d, 0.0, "image {i} should be image {source}");
    }
    assert_eq!(metrics::evenly_spaced(&set, 50).unwrap().dims()[0], 10);
    // At least one index from a set that has images, none from an empty one.
    assert_eq!(metrics::evenly_spaced_indices(10, 0).collect::<Vec<_>>(), [0]);
    assert_eq!(metrics::evenly_spaced_indices(0, 5).count(), 0);
}

#[test]
fn memorisation_flags_planted_copies_and_passes_fresh_samples() {
    use aegan::metrics::memorisation;
    let lesions = |n, seed| synthetic::lesions(n, 32, seed).to_tensor(&Device::Cpu).unwrap();
    let train = lesions(96, 1);
    let held_out = lesions(64, 2);
    let fresh = lesions(64, 3);
    let honest = memorisation(&train, &fresh, &held_out).unwrap();
    assert!(
        (0.8..1.25).contains(&honest.ratio),
        "new samples of the same distribution: ratio {}",
        honest.ratio
    );

    // Half the generated set are copies of training images 10..42.
    let copies = train.narrow(0, 10, 32).unwrap();
    let planted = Tensor::cat(&[&copies, &fresh.narrow(0, 0, 32).unwrap()], 0).unwrap();
    let check = memorisation(&train, &planted, &held_out).unwrap();
    assert!(
        check.ratio < 0.5 * honest.ratio,
        "copies went unnoticed: {}",
        check.ratio
    );
    assert!(check.closer_than_held_out_1st_percentile >= 0.5, "{check:?}");
    let (generated, nearest, distance) = check.closest[0];
    assert!(
        generated < 32 && nearest == generated + 10 && distance < 1e-3,
        "{check:?}"
    );
    // The copy test: each copy's nearest training image is far nearer than its second.
    assert_eq!(check.generated_copy_share, 0.5, "{check:?}");
    assert!(honest.generated_copy_share < 0.05, "{honest:?}");
    assert!(check.held_out_copy_share < 0.05, "{check:?}");
    let (generated, nearest, ratio) = check.most_copy_like[0];
    assert!(
        generated < 32 && nearest == generated + 10 && ratio < 1e-3,
        "{check:?}"
    );
}

#[test]
fn memorisation_searches_every_training_chunk_and_finds_a_copy_in_the_last() {
    use aegan::metrics::{memorisation, memorisation_over};
    let lesions = |n, seed| synthetic::lesions(n, 16, seed).to_tensor(&Device::Cpu).unwrap();
    let train = lesions(50, 1);
    let held_out = lesions(20, 2);
    // Generated: fresh images and one copy of training image 47, which sits in the last of
    // the chunks below and outside any evenly spaced subset of 10 (0, 5, 10, ..., 45).
    let generated = Tensor::cat(&[&lesions(9, 3), &train.narrow(0, 47, 1).unwrap()], 0).unwrap();
    let chunks = (0..50)
        .step_by(16)
        .map(|start| Ok(train.narrow(0, start, 16.min(50 - start))?));
    let chunked = memorisation_over(chunks, &generated, &held_out).unwrap();
    assert_eq!(chunked.training_images, 50);
    assert_eq!(chunked.closest[0].0, 9);
    assert_eq!(chunked.closest[0].1, 47);
    assert!(chunked.closest[0].2 < 1e-3, "{chunked:?}");
    assert_eq!(chunked.most_copy_like[0].1, 47);
    assert!((chunked.generated_copy_share - 0.1).abs() < 1e-12, "{chunked:?}");
    // One chunk or many: the same answer.
    let whole = memorisation(&train, &generated, &held_out).unwrap();
    assert_eq!(whole.closest, chunked.closest);
    assert_eq!(whole.ratio, chunked.ratio);
}

#[test]
fn the_membership_auc_is_one_for_a_score_that_separates_and_a_half_for_a_random_one() {
    use aegan::metrics::roc_auc;
    let mut rng = TrainRng::new(7);
    let draw = |rng: &mut TrainRng, n: usize| -> Vec<f64> { (0..n).map(|_| rng.uniform()).collect() };
    let members = draw(&mut rng, 1000);
    let non_members = draw(&mut rng, 1000);
    let random = roc_auc(&members, &non_members).unwrap();
    assert!((random - 0.5).abs() < 0.04, "a random score: AUC {random}");
    let planted: Vec<f64> = members.iter().map(|s| s + 1.0).collect();
    assert_eq!(roc_auc(&planted, &non_members), Some(1.0));
    // A score that separates a tenth of the members: AUC about 0.5 + 0.1 / 2.
    let some: Vec<f64> = members
        .iter()
        .enumerate()
        .map(|(i, s)| if i % 10 == 0 { s + 1.0 } else { *s })
        .collect();
    let partial = roc_auc(&some, &non_members).unwrap();
    assert!((partial - 0.55).abs() < 0.04, "{partial}");
}

#[test]
fn ring_power_puts_a_wave_in_its_ring_and_a_checkerboard_in_the_last() {
    // A wave of 3 cycles down and 1 across: its power lies in ring max(3, 1) = 3.
    let wave = grey_image(16, 16, |y, x| {
        (2.0 * std::f32::consts::PI * (3.0 * y as f32 + x as f32) / 16.0).cos() * 0.5
    });
    let rings = metrics::ring_power(&wave).unwrap();
    assert_eq!(rings.len(), 8);
    let total: f64 = rings.iter().sum();
    assert!(rings[2] > 0.9 * total, "ring 3 holds {} of {total}", rings[2]);
    // A pure checkerboard: only ring H/2 holds power.
    let board = grey_image(16, 16, |y, x| if (x + y) % 2 == 0 { 0.1 } else { -0.1 });
    let rings = metrics::ring_power(&board).unwrap();
    assert!(rings[7] > 0.0);
    assert!(rings[..7].iter().all(|&p| p < 1e-3 * rings[7]), "{rings:?}");
}

#[test]
fn the_ring_power_ratio_is_one_for_a_set_against_itself_and_sees_blur_and_checkerboards() {
    let real = lesions(32, 32, 1);
    let itself = metrics::ring_power_ratio(&real, &real).unwrap();
    assert_eq!(itself.len(), 16);
    assert!(itself.iter().all(|&r| (r - 1.0).abs() < 1e-12), "{itself:?}");

    // A 3×3 box blur keeps the low rings and takes most of the high ones.
    let soft = metrics::ring_power_ratio(&blurred(&real), &real).unwrap();
    assert!(soft[0] > 0.8, "ring 1 {:.3}", soft[0]);
    assert!(soft[15] < 0.2, "ring 16 {:.3}", soft[15]);
    assert!(soft.windows(2).skip(2).all(|w| w[1] <= w[0] + 0.05), "{soft:?}");

    // A planted checkerboard raises ring 16 alone.
    let pattern = grey_image(32, 32, |y, x| if (x + y) % 2 == 0 { 0.06 } else { -0.06 });
    let checkered = real.broadcast_add(&pattern).unwrap();
    let planted = metrics::ring_power_ratio(&checkered, &real).unwrap();
    assert!(planted[15] > 5.0, "ring 16 {:.2}", planted[15]);
    assert!(
        planted[..15].iter().all(|&r| (r - 1.0).abs() < 0.05),
        "{planted:?}"
    );

    // Shapes that have no rings are errors, not panics.
    assert!(metrics::ring_power(&lesions(2, 32, 1).narrow(3, 0, 30).unwrap()).is_err());
    assert!(metrics::ring_power_ratio(&real, &lesions(2, 16, 1)).is_err());
}

#[test]
fn precision_and_recall_are_one_for_identical_sets_and_recall_falls_for_a_collapsed_one() {
    use aegan::metrics::precision_recall;
    let mut rng = TrainRng::new(11);
    let real = rng.normal((200, 16), &Device::Cpu).unwrap();
    let same = precision_recall(&real, &real).unwrap();
    assert_eq!((same.precision, same.recall), (1.0, 1.0));
    // New points of the same distribution: most inside each other's manifold.
    let fresh = rng.normal((200, 16), &Device::Cpu).unwrap();
    let honest = precision_recall(&real, &fresh).unwrap();
    assert!(honest.precision > 0.5 && honest.recall > 0.5, "{honest:?}");
    // Collapse: a hundred copies of one real point (and a little noise). Each copy lies in
    // that point's ball, so precision stays high; the copies' balls are tiny, so almost no
    // real point is covered.
    let one = real.narrow(0, 7, 1).unwrap().broadcast_as((100, 16)).unwrap();
    let jitter = (rng.normal((100, 16), &Device::Cpu).unwrap() * 1e-3).unwrap();
    let collapsed = (one + jitter).unwrap();
    let check = precision_recall(&real, &collapsed).unwrap();
    assert!(check.precision > 0.9, "{check:?}");
    assert!(check.recall < 0.05, "{check:?}");
    // Points far from the real ones: precision 0.
    let far = (fresh + 100.0).unwrap();
    assert_eq!(precision_recall(&real, &far).unwrap().precision, 0.0);
    assert!(precision_recall(&real, &real.narrow(0, 0, 3).unwrap()).is_err());
}

#[test]
fn within_class_diversity_is_one_for_a_class_drawn_from_its_own_images_and_near_zero_for_one_image() {
    use aegan::metrics::pairwise_distance_ratio;
    let class = synthetic::lesions(40, 16, 3).to_tensor(&Device::Cpu).unwrap();
    assert!((pairwise_distance_ratio(&class, &class).unwrap() - 1.0).abs() < 1e-9);
    let other_half = class.narrow(0, 20, 20).unwrap();
    let half = class.narrow(0, 0, 20).unwrap();
    let ratio = pairwise_distance_ratio(&half, &other_half).unwrap();
    assert!((0.8..1.25).contains(&ratio), "two draws of one class: {ratio}");
    let one = class
        .narrow(0, 0, 1)
        .unwrap()
        .broadcast_as((20, 3, 16, 16))
        .unwrap()
        .contiguous()
        .unwrap();
    assert!(pairwise_distance_ratio(&one, &class).unwrap() < 1e-3);
}
