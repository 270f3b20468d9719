//! HAM10000 loads as it is downloaded: bad metadata refused by path and line, listed but
//! absent or corrupt images named, lesions never on both sides of the split.
#![cfg(feature = "ham10000")]

use std::fs;
use std::path::Path;

use aegan::candle_core::Device;
use aegan::data::ham10000::{read_metadata, split_by_group, Ham10000};
use aegan::data::{synthetic, LoadOptions};
use aegan::AeganError;

fn options(size: usize) -> LoadOptions {
    let mut o = LoadOptions::new(size);
    o.cache_dir = None;
    o.verbose = false;
    o
}

/// The layout of the HAM10000 download: metadata CSV and two image folders of JPEGs.
fn ham_layout(dir: &Path, rows: &[(&str, &str, &str)]) {
    fs::create_dir_all(dir.join("HAM10000_images_part_1")).unwrap();
    fs::create_dir_all(dir.join("HAM10000_images_part_2")).unwrap();
    let mut csv = String::from("lesion_id,image_id,dx,dx_type,age,sex,localization\n");
    let lesions = synthetic::lesions(rows.len(), 24, 1);
    let images = aegan::viz::to_rgb_images(&lesions.to_tensor(&Device::Cpu).unwrap()).unwrap();
    for (i, (lesion, image_id, dx)) in rows.iter().enumerate() {
        csv.push_str(&format!("{lesion},{image_id},{dx},histo,50.0,female,back\n"));
        let part = if i % 2 == 0 {
            "HAM10000_images_part_1"
        } else {
            "HAM10000_images_part_2"
        };
        let wide = image::imageops::resize(&images[i], 32, 24, image::imageops::FilterType::Triangle);
        wide.save(dir.join(part).join(format!("{image_id}.jpg"))).unwrap();
    }
    fs::write(dir.join("HAM10000_metadata.csv"), csv).unwrap();
}

const ROWS: [(&str, &str, &str); 6] = [
    ("HAM_01", "ISIC_0000001", "nv"),
    ("HAM_01", "ISIC_0000002", "nv"),
    ("HAM_02", "ISIC_0000003", "mel"),
    ("HAM_03", "ISIC_0000004", "bcc"),
    ("HAM_03", "ISIC_0000005", "bcc"),
    ("HAM_04", "ISIC_0000006", "mel"),
];

#[test]
fn ham10000_download_layout_loads_with_counts_and_diagnosis_filter() {
    let dir = tempfile::tempdir().unwrap();
    ham_layout(dir.path(), &ROWS);
    let set = Ham10000::load(dir.path(), None, None, &options(16)).unwrap();
    assert_eq!(set.images.len(), 6);
    assert_eq!(set.images.image_size(), 16);
    let counts: Vec<(String, usize)> = set.counts_by_dx().into_iter().collect();
    assert_eq!(
        counts,
        [
            ("bcc".to_string(), 2),
            ("mel".to_string(), 2),
            ("nv".to_string(), 2)
        ]
    );

    let only = Ham10000::load(dir.path(), None, Some(&["mel".to_string()]), &options(16)).unwrap();
    assert_eq!(
        only.records
            .iter()
            .map(|r| r.image_id.as_str())
            .collect::<Vec<_>>(),
        ["ISIC_0000003", "ISIC_0000006"]
    );

    let err = Ham10000::load(dir.path(), None, Some(&["melanoma".to_string()]), &options(16)).unwrap_err();
    assert!(
        err.to_string().contains("melanoma") && err.to_string().contains("bcc, mel, nv"),
        "{err}"
    );
}

#[test]
fn csv_without_needed_columns_is_an_error_naming_file_and_header() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("meta.csv");
    fs::write(&csv, "lesion_id,image,diagnosis\nHAM_1,ISIC_1,nv\n").unwrap();
    let err = read_metadata(&csv).unwrap_err();
    assert!(
        matches!(&err, AeganError::Csv { path, line: Some(1), .. } if path == &csv),
        "{err}"
    );
    assert!(
        err.to_string().contains("image_id") && err.to_string().contains("diagnosis"),
        "{err}"
    );

    fs::write(&csv, "image_id,dx\nISIC_1,nv\nISIC_2,nv,extra\n").unwrap();
    let err = read_metadata(&csv).unwrap_err();
    assert!(matches!(&err, AeganError::Csv { line: Some(3), .. }), "{err}");

    let err = Ham10000::load(
        dir.path(),
        Some(&dir.path().join("absent.csv")),
        None,
        &options(16),
    )
    .unwrap_err();
    assert!(
        matches!(&err, AeganError::Io { path, .. } if path.ends_with("absent.csv")),
        "{err}"
    );
}

#[test]
fn image_listed_but_absent_is_an_error_naming_id_and_line() {
    let dir = tempfile::tempdir().unwrap();
    ham_layout(dir.path(), &ROWS);
    fs::remove_file(dir.path().join("HAM10000_images_part_2/ISIC_0000004.jpg")).unwrap();
    let err = Ham10000::load(dir.path(), None, None, &options(16)).unwrap_err();
    match &err {
        AeganError::MissingImage {
            image_id, line, csv, ..
        } => {
            assert_eq!(image_id, "ISIC_0000004");
            assert_eq!(*line, 5);
            assert!(csv.ends_with("HAM10000_metadata.csv"));
        }
        other => panic!("expected MissingImage, got {other}"),
    }
}

#[test]
fn corrupt_listed_image_is_skipped_and_its_row_dropped() {
    let dir = tempfile::tempdir().unwrap();
    ham_layout(dir.path(), &ROWS);
    fs::write(
        dir.path().join("HAM10000_images_part_1/ISIC_0000001.jpg"),
        b"\xFF\xD8broken",
    )
    .unwrap();
    let set = Ham10000::load(dir.path(), None, None, &options(16)).unwrap();
    assert_eq!(set.images.len(), 5);
    assert!(set.records.iter().all(|r| r.image_id != "ISIC_0000001"));
}

#[test]
fn lesion_split_never_puts_one_lesion_on_both_sides() {
    let groups: Vec<String> = (0..500).map(|i| format!("L{}", (i * 7919) % 173)).collect();
    let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
    for seed in 0..5 {
        let (train, held) = split_by_group(&refs, 0.2, seed);
        assert_eq!(train.len() + held.len(), 500);
        assert!(held.len() >= 100 && held.len() < 120, "{}", held.len());
        for &h in &held {
            assert!(
                train.iter().all(|&t| refs[t] != refs[h]),
                "lesion {} on both sides",
                refs[h]
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    ham_layout(dir.path(), &ROWS);
    let set = Ham10000::load(dir.path(), None, None, &options(16)).unwrap();
    let (train, held) = set.split_by_lesion(0.3, 1);
    let lesion = |i: &usize| set.records[*i].lesion_id.clone();
    assert!(held.iter().all(|h| !train.iter().any(|t| lesion(t) == lesion(h))));
    assert!(!held.is_empty() && !train.is_empty());
}

#[test]
fn the_images_come_labelled_with_their_diagnoses_in_the_order_of_the_seven() {
    let dir = tempfile::tempdir().unwrap();
    ham_layout(dir.path(), &ROWS);
    let set = Ham10000::load(dir.path(), None, None, &options(16)).unwrap();
    let labelled = set.labelled().unwrap();
    let names = labelled.class_names();
    assert_eq!(&names[..7], ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]);
    let labels = labelled.labels().unwrap();
    for (record, &label) in set.records.iter().zip(labels) {
        assert_eq!(names[label], record.dx, "{}", record.image_id);
    }
}

#[test]
fn a_diagnosis_filter_holds_out_the_same_lesions_as_the_full_set() {
    let dir = tempfile::tempdir().unwrap();
    ham_layout(dir.path(), &ROWS);
    let full = Ham10000::load(dir.path(), None, None, &options(16)).unwrap();
    for seed in 0..8 {
        let (_, held) = full.split_by_lesion(0.3, seed);
        let held_ids: Vec<&str> = held.iter().map(|&i| full.records[i].image_id.as_str()).collect();
        for dx in ["nv", "mel", "bcc"] {
            let only = Ham10000::load(dir.path(), None, Some(&[dx.to_string()]), &options(16)).unwrap();
            let (train, held) = only.split_by_lesion(0.3, seed);
            for i in held {
                assert!(
                    held_ids.contains(&only.records[i].image_id.as_str()),
                    "seed {seed}, {dx}"
                );
            }
            for i in train {
                assert!(
                    !held_ids.contains(&only.records[i].image_id.as_str()),
                    "seed {seed}, {dx}"
                );
            }
        }
    }
}

#[test]
fn held_out_lesions_for_pictures_take_the_diagnoses_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    ham_layout(dir.path(), &ROWS);
    let set = Ham10000::load(dir.path(), None, None, &options(16)).unwrap();
    let dx = |i: &usize| set.records[*i].dx.as_str();
    let mut several_diagnoses_held = 0;
    for seed in 0..8 {
        let (_, held) = set.split_by_lesion(0.5, seed);
        let chosen = set.held_out_by_diagnosis(0.5, seed, 4);
        assert_eq!(chosen.len(), 4.min(held.len()));
        assert!(chosen.iter().all(|i| held.contains(i)), "only held-out images");
        // Diagnoses come in turn: none repeats before every held-out one has appeared.
        let mut held_dx: Vec<&str> = held.iter().map(dx).collect();
        held_dx.sort_unstable();
        held_dx.dedup();
        let first: Vec<&str> = chosen.iter().take(held_dx.len()).map(dx).collect();
        let mut distinct = first.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), held_dx.len(), "seed {seed}: {first:?}");
        several_diagnoses_held += usize::from(held_dx.len() > 1);
        // Asking for every held-out image returns each of them once.
        let mut all = set.held_out_by_diagnosis(0.5, seed, usize::MAX);
        all.sort_unstable();
        assert_eq!(all, held, "seed {seed}");
    }
    assert!(several_diagnoses_held > 0, "no seed held out two diagnoses");
}
