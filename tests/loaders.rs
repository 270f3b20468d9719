//! Image folders load as a researcher's files come: odd formats converted, bad files skipped
//! by name, damaged caches ignored.

use std::fs;
use std::path::Path;

use aegan::candle_core::Device;
use aegan::data::folder::enlargement_warning;
use aegan::data::{load_folder, synthetic, Augment, LoadOptions, Resample};
use aegan::AeganError;
use image::{ImageBuffer, Luma, Rgb, RgbImage, Rgba};

fn options(size: usize) -> LoadOptions {
    let mut o = LoadOptions::new(size);
    o.cache_dir = None;
    o.verbose = false;
    o
}

/// A folder with one good image of each awkward kind and four bad files.
fn awkward_folder(dir: &Path) {
    fs::create_dir_all(dir.join("nested/deeper")).unwrap();
    ImageBuffer::from_pixel(8, 8, Luma([100u8]))
        .save(dir.join("gray.png"))
        .unwrap();
    let mut rgba = ImageBuffer::from_pixel(8, 8, Rgba([0u8, 0, 255, 255]));
    rgba.put_pixel(0, 0, Rgba([0, 0, 0, 0])); // fully transparent corner
    rgba.save(dir.join("nested/alpha.png")).unwrap();
    ImageBuffer::from_pixel(8, 8, Rgb([65535u16, 0, 32768]))
        .save(dir.join("nested/deeper/sixteen.png"))
        .unwrap();
    RgbImage::from_pixel(12, 8, Rgb([10, 200, 30]))
        .save(dir.join("wide.jpg"))
        .unwrap();
    let mut png = Vec::new();
    RgbImage::from_pixel(8, 8, Rgb([1, 2, 3]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    fs::write(dir.join("truncated.png"), &png[..png.len() / 2]).unwrap();
    fs::write(dir.join("notes.txt"), "not an image").unwrap();
    fs::write(dir.join("empty.png"), b"").unwrap();
    fs::write(
        dir.join("nested/garbage.jpg"),
        [0xFFu8, 0xD8, 0xFF, 0x00, 0x01, 0x02],
    )
    .unwrap();
}

#[test]
fn folder_loader_converts_odd_images_and_skips_bad_files_by_name() {
    let dir = tempfile::tempdir().unwrap();
    awkward_folder(dir.path());
    let loaded = load_folder(dir.path(), &options(4)).unwrap();
    let names: Vec<String> = loaded
        .paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["gray.png", "alpha.png", "sixteen.png", "wide.jpg"]);
    let mut skipped: Vec<String> = loaded
        .skipped
        .iter()
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        ["empty.png", "garbage.jpg", "notes.txt", "truncated.png"]
    );
    assert!(loaded.images.iter().all(|im| im.dimensions() == (4, 4)));

    assert_eq!(
        loaded.images[0].get_pixel(1, 1).0,
        [100, 100, 100],
        "grey becomes RGB"
    );
    assert_eq!(
        loaded.images[2].get_pixel(2, 2).0,
        [255, 0, 128],
        "16-bit scales to 8-bit"
    );
    let blue = loaded.images[1].get_pixel(3, 3).0;
    assert!(blue[2] > 200 && blue[0] < 60, "opaque blue stays blue: {blue:?}");
    let corner = loaded.images[1].get_pixel(0, 0).0;
    assert!(
        corner[0] > 30 && corner[0] > blue[0] + 20,
        "the transparent corner is blended towards white: {corner:?}"
    );
    let green = loaded.images[3].get_pixel(2, 2).0;
    assert!(green[1] > 180 && green[0] < 40, "{green:?}");
}

#[test]
fn transparent_pixels_take_the_configured_background() {
    let dir = tempfile::tempdir().unwrap();
    ImageBuffer::from_pixel(4, 4, Rgba([9u8, 9, 9, 0]))
        .save(dir.path().join("clear.png"))
        .unwrap();
    let mut o = options(4);
    o.background = [10, 20, 30];
    let loaded = load_folder(dir.path(), &o).unwrap();
    assert_eq!(loaded.images[0].get_pixel(0, 0).0, [10, 20, 30]);
}

#[test]
fn empty_folder_and_folder_of_bad_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_folder(dir.path(), &options(4)).unwrap_err();
    assert!(matches!(&err, AeganError::NoImages { skipped: 0, .. }), "{err}");
    assert!(err.to_string().contains("empty"), "{err}");

    fs::write(dir.path().join("a.png"), b"junk").unwrap();
    fs::write(dir.path().join("b.txt"), b"junk").unwrap();
    let err = load_folder(dir.path(), &options(4)).unwrap_err();
    assert!(matches!(err, AeganError::NoImages { skipped: 2, .. }), "{err}");

    let missing = dir.path().join("nope");
    assert!(
        matches!(load_folder(&missing, &options(4)).unwrap_err(), AeganError::Io { path, .. } if path == missing)
    );
}

#[test]
fn cache_serves_the_second_load_and_misses_after_a_file_changes() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    awkward_folder(data.path());
    let mut o = options(4);
    o.cache_dir = Some(cache.path().to_path_buf());
    let first = load_folder(data.path(), &o).unwrap();
    assert!(!first.from_cache);
    let second = load_folder(data.path(), &o).unwrap();
    assert!(second.from_cache);
    assert_eq!(first.images, second.images);
    assert_eq!(first.paths, second.paths);
    assert_eq!(first.skipped, second.skipped);
    assert_eq!(
        (
            first.enlarged(),
            first.smallest_side(),
            first.resized(),
            first.resized_example()
        ),
        (
            second.enlarged(),
            second.smallest_side(),
            second.resized(),
            second.resized_example()
        )
    );

    RgbImage::from_pixel(9, 9, Rgb([1, 1, 1]))
        .save(data.path().join("gray.png"))
        .unwrap();
    let third = load_folder(data.path(), &o).unwrap();
    assert!(!third.from_cache);
    assert_eq!(third.images[0].get_pixel(0, 0).0, [1, 1, 1]);

    o.size = 2;
    assert!(
        !load_folder(data.path(), &o).unwrap().from_cache,
        "another size is another entry"
    );
}

#[test]
fn resized_and_enlarged_images_are_counted_and_warned_about_through_the_cache() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    awkward_folder(data.path());
    RgbImage::from_pixel(32, 32, Rgb([5, 6, 7]))
        .save(data.path().join("large.png"))
        .unwrap();
    // Five images load: four with a centre square of 8×8 (the 12×8 one included), one 32×32.
    // In path order the first is gray.png (8×8), then large.png (32×32).
    for (size, enlarged, resized, example) in [
        (4, 0, 5, (8, 8)),
        (8, 0, 2, (32, 32)),
        (16, 4, 5, (8, 8)),
        (32, 4, 4, (8, 8)),
        (64, 5, 5, (8, 8)),
    ] {
        let mut o = options(size);
        o.cache_dir = Some(cache.path().to_path_buf());
        for pass in ["decoded", "cached"] {
            let loaded = load_folder(data.path(), &o).unwrap();
            assert_eq!(loaded.from_cache, pass == "cached");
            assert_eq!(loaded.images.len(), 5);
            assert_eq!(loaded.enlarged(), enlarged, "size {size}, {pass}");
            assert_eq!(loaded.smallest_side(), Some(8), "size {size}, {pass}");
            assert_eq!(loaded.resized(), resized, "size {size}, {pass}");
            assert_eq!(loaded.resized_example(), Some(example), "size {size}, {pass}");
            let warning = enlargement_warning(&loaded, size);
            if enlarged == 0 {
                assert_eq!(warning, None, "size {size}");
            } else {
                let warning = warning.unwrap();
                assert!(
                    warning.contains(&format!("{enlarged} of 5 images are smaller than {size}×{size}"))
                        && warning.contains("the smallest 8×8"),
                    "{warning}"
                );
            }
        }
    }
}

#[test]
fn pixel_art_downscaling_by_an_integer_factor_keeps_exact_colours() {
    let dir = tempfile::tempdir().unwrap();
    // A 2×2 checkerboard of colours, each square 4×4 pixels.
    let art = RgbImage::from_fn(8, 8, |x, y| {
        if (x / 4 + y / 4) % 2 == 0 {
            Rgb([200, 0, 0])
        } else {
            Rgb([0, 0, 200])
        }
    });
    art.save(dir.path().join("art.png")).unwrap();
    let mut o = options(2);
    o.resample = Resample::PixelArt;
    let loaded = load_folder(dir.path(), &o).unwrap();
    let pixels: Vec<[u8; 3]> = loaded.images[0].pixels().map(|p| p.0).collect();
    assert_eq!(pixels, [[200, 0, 0], [0, 0, 200], [0, 0, 200], [200, 0, 0]]);
    o.resample = Resample::Lanczos;
    let smooth = load_folder(dir.path(), &o).unwrap();
    assert_eq!(smooth.images[0].dimensions(), (2, 2));
}

#[test]
fn augmentation_is_a_symmetry_and_repeats_for_the_same_step() {
    let set = synthetic::sprites(8, 16, 3);
    let idx: Vec<usize> = (0..8).collect();
    let plain = set.batch(&idx, &Device::Cpu).unwrap();
    let a = set
        .batch_augmented(&idx, Augment::Dihedral, 1, 10, &Device::Cpu)
        .unwrap();
    let b = set
        .batch_augmented(&idx, Augment::Dihedral, 1, 10, &Device::Cpu)
        .unwrap();
    let c = set
        .batch_augmented(&idx, Augment::Dihedral, 1, 11, &Device::Cpu)
        .unwrap();
    let flat = |t: &aegan::candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(flat(&a), flat(&b));
    assert_ne!(flat(&a), flat(&c));
    // Each augmented image holds the same pixel values as its original, rearranged.
    for i in 0..8 {
        let mut x = flat(&plain.get(i).unwrap());
        let mut y = flat(&a.get(i).unwrap());
        x.sort_by(f32::total_cmp);
        y.sort_by(f32::total_cmp);
        assert_eq!(x, y);
    }
    // Horizontal flips of left-right symmetric sprites change nothing.
    let flipped = set
        .batch_augmented(&idx, Augment::HorizontalFlip, 1, 10, &Device::Cpu)
        .unwrap();
    assert_eq!(flat(&flipped), flat(&plain));
}

#[test]
fn a_damaged_cache_count_is_ignored_without_a_huge_allocation() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    awkward_folder(data.path());
    let mut o = options(4);
    o.cache_dir = Some(cache.path().to_path_buf());
    let first = load_folder(data.path(), &o).unwrap();
    let file = fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "bin"))
        .expect("a cache file");
    let mut bytes = fs::read(&file).unwrap();
    // Magic (8 bytes), size (8), then the image count: make it absurd.
    bytes[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    fs::write(&file, &bytes).unwrap();
    let again = load_folder(data.path(), &o).unwrap();
    assert!(!again.from_cache, "the damaged file was used");
    assert_eq!(again.images, first.images);
}

#[cfg(unix)]
#[test]
fn a_symbolic_link_loop_does_not_hang_the_folder_walk() {
    let data = tempfile::tempdir().unwrap();
    let inner = data.path().join("inner");
    fs::create_dir(&inner).unwrap();
    RgbImage::from_pixel(8, 8, Rgb([10, 20, 30]))
        .save(inner.join("a.png"))
        .unwrap();
    std::os::unix::fs::symlink(data.path(), inner.join("back_to_top")).unwrap();
    let files = aegan::data::folder::list_files(data.path()).unwrap();
    assert_eq!(files, [inner.join("a.png")]);
    assert_eq!(load_folder(data.path(), &options(4)).unwrap().images.len(), 1);
}

#[test]
fn an_empty_batch_is_an_error_with_or_without_augmentation() {
    let set = synthetic::lesions(4, 8, 0);
    for augment in [Augment::None, Augment::Dihedral] {
        let err = set.batch_augmented(&[], augment, 0, 0, &Device::Cpu).unwrap_err();
        assert!(matches!(err, AeganError::BadInput { .. }), "{augment:?}: {err}");
    }
}

#[test]
fn atomic_writes_from_two_threads_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.json");
    std::thread::scope(|s| {
        for t in 0..2u8 {
            let path = &path;
            s.spawn(move || {
                for i in 0..100u8 {
                    aegan::checkpoint::write_atomic(path, &[t, i]).unwrap();
                }
            });
        }
    });
    assert_eq!(fs::read(&path).unwrap().len(), 2);
    let leftovers = fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "temporary files left behind");
}

#[test]
fn a_folder_is_labelled_by_sub_folder_or_name_prefix_and_a_file_without_category_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let write = |relative: &str, shade: u8| {
        let path = dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::RgbImage::from_pixel(16, 16, image::Rgb([shade, 0, 0]))
            .save(&path)
            .unwrap();
    };
    write("mon/orc.png", 10);
    write("mon/deep/troll.png", 20);
    write("item__sword.png", 30);
    write("item__shield.png", 40);
    let mut options = aegan::data::LoadOptions::new(16);
    options.cache_dir = None;
    let loaded = aegan::data::load_folder(dir.path(), &options).unwrap();
    let set = loaded
        .to_labelled_set(dir.path(), aegan::data::Categories::TOP, "test sprites")
        .unwrap();
    assert_eq!(set.class_names(), ["item", "mon"]);
    let labels = set.labels().unwrap();
    for (path, &label) in loaded.paths.iter().zip(labels) {
        let name = path.to_string_lossy();
        let expected = if name.contains("item__") { 0 } else { 1 };
        assert_eq!(label, expected, "{name}");
    }

    write("stray.png", 50);
    let loaded = aegan::data::load_folder(dir.path(), &options).unwrap();
    let message = loaded
        .to_labelled_set(dir.path(), aegan::data::Categories::TOP, "test sprites")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("stray.png") && message.contains("no category"),
        "{message}"
    );
}

#[test]
fn deeper_categories_join_small_kinds_to_their_parent_and_a_model_relabels_any_folder() {
    let dir = tempfile::tempdir().unwrap();
    let write = |relative: &str| {
        let path = dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::RgbImage::new(8, 8).save(&path).unwrap();
    };
    for name in ["ruby", "emerald", "milk"] {
        write(&format!("item__potion__{name}.png"));
    }
    write("item/ring/gold.png");
    write("mon/undead__mummy.png");
    write("mon/undead/skeletons/orc.png");
    write("mon/orc.png");
    let mut options = aegan::data::LoadOptions::new(8);
    options.cache_dir = None;
    let loaded = aegan::data::load_folder(dir.path(), &options).unwrap();
    let categories = aegan::data::Categories::new(2, 2).unwrap();
    let set = loaded.to_labelled_set(dir.path(), categories, "sprites").unwrap();
    // The single ring joins item; the two undead (one a level deeper) stay mon/undead.
    assert_eq!(set.class_names(), ["item", "item/potion", "mon", "mon/undead"]);
    let by_file = |set: &aegan::data::ImageSet| -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = loaded
            .paths
            .iter()
            .zip(set.labels().unwrap())
            .map(|(p, &l)| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, set.class_names()[l].clone())
            })
            .collect();
        pairs.sort();
        pairs
    };
    let trained = by_file(&set);
    assert!(
        trained.contains(&("gold.png".into(), "item".into())),
        "{trained:?}"
    );
    assert!(
        trained.contains(&("orc.png".into(), "mon/undead".into()))
            && trained.contains(&("orc.png".into(), "mon".into())),
        "{trained:?}"
    );

    // Relabelled by the model's classes, every file gets the class it was trained with.
    let again = loaded
        .to_labelled_set_as(dir.path(), set.class_names(), "sprites")
        .unwrap();
    assert_eq!(by_file(&again), trained);

    // A file of a kind the model never saw is an error naming it.
    write("dngn__altar.png");
    let loaded = aegan::data::load_folder(dir.path(), &options).unwrap();
    let message = loaded
        .to_labelled_set_as(dir.path(), set.class_names(), "sprites")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("dngn__altar.png") && message.contains("dngn"),
        "{message}"
    );
    assert!(aegan::data::Categories::new(0, 1).is_err());
}

#[test]
fn a_folder_that_wraps_every_sprite_names_no_category() {
    let dir = tempfile::tempdir().unwrap();
    let write = |relative: &str| {
        let path = dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::RgbImage::new(8, 8).save(&path).unwrap();
    };
    // The shared layout: every sprite in `32/`, its category in its name.
    for name in [
        "item__potion__ruby",
        "item__potion__milk",
        "mon__undead__mummy",
        "mon__undead__lich",
    ] {
        write(&format!("32/{name}.png"));
    }
    let mut options = aegan::data::LoadOptions::new(8);
    options.cache_dir = None;
    let loaded = aegan::data::load_folder(dir.path(), &options).unwrap();
    assert_eq!(loaded.wrapping_folders(dir.path()), ["32"]);
    let categories = aegan::data::Categories::new(2, 1).unwrap();
    let set = loaded.to_labelled_set(dir.path(), categories, "sprites").unwrap();
    assert_eq!(set.class_names(), ["item/potion", "mon/undead"]);
    // The folder itself, or the wrapping one: the same labels by the model's classes.
    let inner = aegan::data::load_folder(&dir.path().join("32"), &options).unwrap();
    assert!(inner.wrapping_folders(&dir.path().join("32")).is_empty());
    for (root, images) in [
        (dir.path().to_path_buf(), &loaded),
        (dir.path().join("32"), &inner),
    ] {
        let again = images
            .to_labelled_set_as(&root, set.class_names(), "sprites")
            .unwrap();
        assert_eq!(again.labels(), set.labels(), "labelled from {}", root.display());
    }

    // One category folder of its own is not a wrapper when a file lies in it with no other
    // part: `mon/orc.png` is a `mon`.
    write("mon/orc.png");
    let mixed = aegan::data::load_folder(dir.path(), &options).unwrap();
    assert!(mixed.wrapping_folders(dir.path()).is_empty());
}

#[test]
fn a_load_size_of_zero_is_an_error_for_one_image_and_for_a_streamed_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.png");
    RgbImage::new(8, 8).save(&path).unwrap();
    for resample in [Resample::Lanczos, Resample::PixelArt] {
        let mut zero = options(0);
        zero.resample = resample;
        let err = aegan::data::folder::load_image(&path, &zero)
            .unwrap_err()
            .to_string();
        assert!(err.contains("load size"), "{err}");
        let err = match aegan::data::FolderDataset::open(dir.path(), &zero, 4) {
            Ok(_) => panic!("a streamed folder opened at size 0"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("load size"), "{err}");
    }
}

#[cfg(unix)]
#[test]
fn a_file_name_that_is_not_utf8_loads_the_same_every_time_uncached() {
    use std::os::unix::ffi::OsStrExt;
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let latin1 = data.path().join(std::ffi::OsStr::from_bytes(b"l\xe9sion.png"));
    RgbImage::from_pixel(8, 8, Rgb([200, 40, 40]))
        .save(&latin1)
        .unwrap();
    RgbImage::from_pixel(8, 8, Rgb([40, 200, 40]))
        .save(data.path().join("plain.png"))
        .unwrap();
    let mut o = options(4);
    o.cache_dir = Some(cache.path().to_path_buf());
    for _ in 0..2 {
        let loaded = load_folder(data.path(), &o).unwrap();
        assert!(
            !loaded.from_cache,
            "a path the cache cannot keep as text is not cached"
        );
        assert!(loaded.paths.contains(&latin1), "{:?}", loaded.paths);
    }
}
