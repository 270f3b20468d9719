//! Grids lay out images as pictures.

use aegan::candle_core::{Device, Tensor};
use aegan::viz;

#[test]
fn grid_has_the_expected_size_and_pixels() {
    // Two 2×2 images: one all white (+1), one all black (−1).
    let images = Tensor::cat(
        &[
            Tensor::ones((1, 3, 2, 2), aegan::candle_core::DType::F32, &Device::Cpu).unwrap(),
            (Tensor::ones((1, 3, 2, 2), aegan::candle_core::DType::F32, &Device::Cpu).unwrap() * -1.0)
                .unwrap(),
        ],
        0,
    )
    .unwrap();
    let grid = viz::grid(&images, 2, 3).unwrap();
    // 2 columns of 6-pixel tiles with 2-pixel gaps: 2 + 2·(6 + 2) = 18 wide, 2 + 8 = 10 high.
    assert_eq!(grid.dimensions(), (18, 10));
    assert_eq!(grid.get_pixel(2, 2).0, [255, 255, 255]);
    assert_eq!(grid.get_pixel(10, 2).0, [0, 0, 0]);
    assert_eq!(grid.get_pixel(0, 0).0, [128, 128, 128]);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.png");
    viz::save_grid(&images, 2, 3, &path).unwrap();
    assert_eq!(image::open(&path).unwrap().to_rgb8(), grid);
}

#[cfg(feature = "plots")]
#[test]
fn class_rows_refuse_images_that_do_not_fill_one_row_per_class() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["pink".to_string(), "blue".to_string()];
    let images =
        |n: usize| Tensor::zeros((n, 3, 4, 4), aegan::candle_core::DType::F32, &Device::Cpu).unwrap();
    let path = dir.path().join("rows.png");
    // Six images of two classes in rows of four would put "blue" beside pink images.
    let err = viz::save_class_rows(&images(6), &names, 4, 1, &path).unwrap_err();
    assert!(err.to_string().contains("2 × 4 images"), "{err}");
    assert!(!path.exists());
    viz::save_class_rows(&images(6), &names, 3, 1, &path).unwrap();
    // Two rows of 4-pixel tiles with 2-pixel gaps: 2 + 2·(4 + 2) = 14 high.
    assert_eq!(image::open(&path).unwrap().height(), 14);
}

#[test]
fn a_grid_too_large_to_draw_is_an_error_naming_its_size() {
    let images = Tensor::zeros((3, 3, 32, 32), aegan::candle_core::DType::F32, &Device::Cpu).unwrap();
    let err = viz::grid(&images, 3, 1000).unwrap_err().to_string();
    assert!(err.contains("image grid") && err.contains("96008"), "{err}");
    assert!(viz::grid(&images, 3, 4).is_ok());
}
