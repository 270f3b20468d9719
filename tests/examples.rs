//! The training example runs end to end on a HAM10000-shaped folder and resumes where it
//! stopped (signals and bad inputs: `trials.rs`).

use std::fs;
use std::path::Path;
use std::process::Output;

mod common;

use common::{example_command, ham_folder};

/// Runs the `ham10000` example (see [`example_command`]) and asserts that it succeeded.
fn run(dir: &Path, args: &[&str]) -> Output {
    let out = example_command("ham10000", dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ham10000 {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Fails the test, showing what the command printed, unless it succeeded.
fn assert_succeeded(output: &Output) {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The JSON lines printed by a command that must have succeeded (`evaluate --json`: the overall
/// report, then one line per class).
fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    assert_succeeded(output);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn logged_steps(out: &Path) -> Vec<u64> {
    jsonl_steps(&out.join("losses.jsonl"))
}

fn jsonl_steps(path: &Path) -> Vec<u64> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn ham10000_example_trains_writes_pictures_log_checkpoint_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 24);
    let data = dir.path().to_str().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let common = [
        "--data",
        data,
        "--size",
        "16",
        "--batch",
        "4",
        "--out",
        out_s,
        "--no-progress",
        "--save-every",
        "2",
        "--eval-images",
        "8",
    ];

    let first = run(dir.path(), &[&common[..], &["--steps", "3"]].concat());
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains("mel") && stdout.contains("nv"),
        "prints counts per diagnosis:\n{stdout}"
    );
    for file in [
        "samples.png",
        "reconstructions.png",
        "loss_curve.png",
        "losses.jsonl",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    assert_eq!(
        image::open(out.join("samples.png")).unwrap().width(),
        2 + 8 * (32 + 2)
    );
    assert_eq!(logged_steps(&out), [1, 2, 3]);
    assert_eq!(
        jsonl_steps(&out.join("metrics.jsonl")),
        [2, 3],
        "quality measured at each save"
    );
    let metrics: serde_json::Value = serde_json::from_str(
        fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert!(metrics["swd"]["mean"].as_f64().unwrap() > 0.0, "{metrics}");
    assert!(
        metrics["reconstruction"]["psnr_db"].as_f64().is_some(),
        "{metrics}"
    );
    assert_eq!(
        fs::read_to_string(out.join("checkpoint/latest")).unwrap(),
        "step-00000003"
    );

    let second = run(dir.path(), &[&common[..], &["--steps", "5", "--resume"]].concat());
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("resumed from"),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
    assert_eq!(logged_steps(&out), [1, 2, 3, 4, 5]);
    assert_eq!(jsonl_steps(&out.join("metrics.jsonl")), [2, 3, 4, 5]);
    assert_eq!(
        fs::read_to_string(out.join("checkpoint/latest")).unwrap(),
        "step-00000005"
    );

    // The trained checkpoint generates, reconstructs and interpolates.
    let generated = dir.path().join("generated");
    let real = dir.path().join("HAM10000_images_part_1");
    let status = example_command("generate", dir.path())
        .args([
            "--checkpoint",
            out.join("checkpoint").to_str().unwrap(),
            "--n",
            "5",
            "--out",
            generated.to_str().unwrap(),
        ])
        .args(["--real", real.to_str().unwrap(), "--interpolation-steps", "4"])
        .output()
        .unwrap();
    assert_succeeded(&status);
    let pngs = fs::read_dir(generated.join("images")).unwrap().count();
    assert_eq!(pngs, 5);
    for file in ["grid.png", "reconstructions.png", "interpolation.png"] {
        assert!(generated.join(file).is_file(), "{file} missing");
    }
    // Interpolation strip: x0, 4 steps, x1 at zoom 3 → 6 tiles of 48 pixels.
    assert_eq!(
        image::open(generated.join("interpolation.png")).unwrap().width(),
        2 + 6 * (48 + 2)
    );

    // Truncated latents lie nearer the prior's centre: the same five draws vary less.
    let truncated = dir.path().join("truncated");
    let status = example_command("generate", dir.path())
        .args(["--checkpoint", out.join("checkpoint").to_str().unwrap()])
        .args(["--n", "5", "--truncation", "0.1"])
        .args(["--out", truncated.to_str().unwrap()])
        .output()
        .unwrap();
    assert_succeeded(&status);
    let full = pixel_spread(&generated.join("images"));
    let near_centre = pixel_spread(&truncated.join("images"));
    assert!(
        near_centre < 0.5 * full,
        "spread across images {near_centre} truncated vs {full}"
    );

    // An unconditional checkpoint has no classes to draw an image as: refused by name.
    for extra in [["--edit", real.to_str().unwrap()], ["--class-path", "nv,mel"]] {
        let refused = example_command("generate", dir.path())
            .args(["--checkpoint", out.join("checkpoint").to_str().unwrap()])
            .args(["--out", truncated.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains(extra[0]) && stderr.contains("unconditional"),
            "{stderr}"
        );
    }
    // Its quiz asks only "real or generated?".
    let quiz = dir.path().join("quiz");
    let status = example_command("generate", dir.path())
        .args(["--checkpoint", out.join("checkpoint").to_str().unwrap()])
        .args([
            "--quiz",
            quiz.to_str().unwrap(),
            "--real",
            real.to_str().unwrap(),
            "--n",
            "4",
        ])
        .output()
        .unwrap();
    assert_succeeded(&status);
    let page = fs::read_to_string(quiz.join("index.html")).unwrap();
    assert_eq!(page.matches("<figure").count(), 4);
    assert!(!page.contains("which class?"));
}

/// Mean over pixels of the variance across the PNGs in `dir` (0–255 scale).
fn pixel_spread(dir: &Path) -> f64 {
    let images: Vec<Vec<f64>> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let rgb = image::open(entry.unwrap().path()).unwrap().to_rgb8();
            rgb.into_raw().into_iter().map(f64::from).collect()
        })
        .collect();
    let n = images.len() as f64;
    let pixels = images[0].len();
    let mut total = 0.0;
    for i in 0..pixels {
        let mean = images.iter().map(|im| im[i]).sum::<f64>() / n;
        total += images.iter().map(|im| (im[i] - mean).powi(2)).sum::<f64>() / n;
    }
    total / pixels as f64
}

#[test]
fn a_preset_at_64_pixels_grows_progressively_unless_told_direct() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 8);
    let data = dir.path().to_str().unwrap();
    let train = |extra: &[&str], out: &str| {
        let out = dir.path().join(out);
        let mut args = vec!["--data", data, "--size", "64", "--batch", "4", "--steps", "1"];
        args.extend_from_slice(&["--out", out.to_str().unwrap(), "--no-progress", "--no-eval"]);
        args.extend_from_slice(extra);
        let stdout = String::from_utf8_lossy(&run(dir.path(), &args).stdout).into_owned();
        let config = fs::read_to_string(out.join("checkpoint/step-00000001/config.json")).unwrap();
        (stdout, config)
    };
    let (stdout, config) = train(&["--phase-images", "8"], "default");
    assert!(
        stdout.contains("progressive: 4×4 first, 8 images per phase"),
        "{stdout}"
    );
    assert!(config.contains("\"images_per_phase\": 8"), "{config}");
    let (stdout, config) = train(&["--direct"], "direct");
    assert!(!stdout.contains("progressive:"), "{stdout}");
    assert!(!config.contains("\"progressive\""), "{config}");
}

#[test]
fn progressive_example_grows_and_its_checkpoint_generates_at_the_saved_resolution() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 16);
    let out = dir.path().join("run");
    // Batch 4, 8 images per phase and per fade: 4×4 for steps 1-2, 8×8 fades in over 3-4,
    // 8×8 for 5-6, 16×16 fades in over 7-8.
    let first = run(
        dir.path(),
        &[
            "--data",
            dir.path().to_str().unwrap(),
            "--size",
            "16",
            "--batch",
            "4",
            "--progressive",
            "--phase-images",
            "8",
            "--steps",
            "6",
            "--save-every",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--no-progress",
            "--no-eval",
        ],
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("progressive: 4×4 first"), "{stdout}");
    assert!(stdout.contains("growing to 8×8"), "{stdout}");
    let history: Vec<String> = fs::read_dir(out.join("history"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(history.iter().any(|n| n.ends_with("-8px.png")), "{history:?}");
    let state = fs::read_to_string(out.join("checkpoint/step-00000006/state.json")).unwrap();
    assert!(state.contains("\"resolution\": 16"), "{state}");

    let generated = dir.path().join("generated");
    let status = example_command("generate", dir.path())
        .args(["--checkpoint", out.join("checkpoint").to_str().unwrap()])
        .args(["--n", "2", "--out", generated.to_str().unwrap()])
        .output()
        .unwrap();
    assert_succeeded(&status);
    let first_image = fs::read_dir(generated.join("images"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(image::open(first_image.path()).unwrap().width(), 16);
}

#[test]
fn ham10000_example_reports_a_missing_csv_column_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 4);
    fs::write(
        dir.path().join("HAM10000_metadata.csv"),
        "lesion_id,image_id\nHAM_0,ISIC_0000000\n",
    )
    .unwrap();
    // The output folder holds another run: the data's fault is still the one reported, so
    // that a user fixing the CSV is not sent to --overwrite first.
    let run_folder = dir.path().join("earlier-run");
    common::write_a_run(&run_folder);
    let out = example_command("ham10000", dir.path())
        .args(["--data", dir.path().to_str().unwrap(), "--steps", "1"])
        .args(["--out", run_folder.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HAM10000_metadata.csv") && stderr.contains("dx"),
        "{stderr}"
    );
    assert!(!stderr.contains("--overwrite"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The guard behind [`example_command`]: every example runs beside a user's runs in the
/// default folders, so a command without `--out` is refused rather than writing anywhere.
#[test]
fn without_out_the_training_examples_meet_a_users_earlier_runs_and_leave_them_alone() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 8);
    let sprites = dir.path().join("sprites");
    write_sprites(&sprites, 8, &[]);
    for (name, data, folder) in [
        ("ham10000", dir.path().to_path_buf(), "runs/ham10000"),
        ("sprites", sprites, "runs/sprites"),
    ] {
        let before = fs::read(common::users_folder().join(folder).join("losses.jsonl")).unwrap();
        let output = example_command(name, dir.path())
            .args(["--data", data.to_str().unwrap(), "--size", "16", "--steps", "1"])
            .args(["--no-progress", "--no-eval"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(folder) && stderr.contains("--overwrite"),
            "{name}: {stderr}"
        );
        let after = fs::read(common::users_folder().join(folder).join("losses.jsonl")).unwrap();
        assert_eq!(before, after, "{name} changed the run in {folder}");
    }
}

#[test]
fn the_first_run_on_synthetic_lesions_uses_its_settings_and_ends_saying_what_to_look_at() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("first");
    let out = run(
        dir.path(),
        &[
            "--steps",
            "2",
            "--no-eval",
            "--no-progress",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("first-run settings"), "{stdout}");
    let last: Vec<&str> = stdout.lines().rev().take(4).collect();
    let tail = last.join("\n");
    assert!(tail.contains("samples.png") && tail.contains("--data"), "{tail}");
    let checkpoint = out_dir.join("checkpoint");
    let config = aegan::Model::load(&checkpoint, &aegan::candle_core::Device::Cpu)
        .unwrap()
        .config()
        .clone();
    assert_eq!(config.loss_weights.latent_adversarial, 1.0);
    assert_eq!(config.loss_weights.image_adversarial, 0.3);
    // Real data, or an explicit preset, keeps the measured defaults.
    let preset_dir = dir.path().join("preset");
    run(
        dir.path(),
        &[
            "--steps",
            "1",
            "--no-eval",
            "--no-progress",
            "--preset",
            "lean",
            "--out",
            preset_dir.to_str().unwrap(),
        ],
    );
    let config = aegan::Model::load(preset_dir.join("checkpoint"), &aegan::candle_core::Device::Cpu)
        .unwrap()
        .config()
        .clone();
    assert_eq!(config.loss_weights, aegan::AeganConfig::lean(32).loss_weights);
}

#[test]
fn a_config_file_keeps_its_progressive_schedule_without_the_flag() {
    // A --config with a progressive schedule once trained directly at full size unless
    // --progressive was also given.
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::tiny(16);
    config.progressive = Some(aegan::config::ProgressiveConfig::new(8));
    let path = dir.path().join("config.json");
    fs::write(&path, config.to_json()).unwrap();
    let out = dir.path().join("run");
    let result = run(
        dir.path(),
        &[
            "--config",
            path.to_str().unwrap(),
            "--steps",
            "4",
            "--out",
            out.to_str().unwrap(),
            "--no-progress",
            "--no-eval",
        ],
    );
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        stdout.contains("progressive: 4×4 first, 8 images per phase"),
        "{stdout}"
    );
    assert!(stdout.contains("growing to 8×8"), "{stdout}");
}

#[test]
fn augment_classifier_reports_both_arms_and_names_a_generated_folder_without_classes() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 24);
    let generated = dir.path().join("generated");
    common::write_images(&generated.join("mel"), 4, 24);
    let classify = |extra: &[&str]| {
        example_command("augment_classifier", dir.path())
            .args([
                "--data",
                dir.path().to_str().unwrap(),
                "--size",
                "16",
                "--steps",
                "2",
                "--seeds",
                "2",
                "--holdout",
                "0.3",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = classify(&["--generated", generated.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_succeeded(&out);
    assert!(
        stdout.contains("| real only |") && stdout.contains("| real + generated |"),
        "{stdout}"
    );
    assert!(stdout.contains("generated: 4 images of mel"), "{stdout}");
    let empty = dir.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let out = classify(&["--generated", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--generated") && stderr.contains("akiec"),
        "{stderr}"
    );
}

#[test]
fn a_conditional_run_generates_a_chosen_diagnosis_and_is_measured_class_by_class() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 24);
    let data = dir.path().to_str().unwrap();
    let out = dir.path().join("run");
    let trained = run(
        dir.path(),
        &[
            "--data",
            data,
            "--size",
            "16",
            "--batch",
            "4",
            "--steps",
            "4",
            "--conditional",
            "--balanced",
            "--transition",
            "8,16",
            "--out",
            out.to_str().unwrap(),
            "--no-progress",
            "--eval-images",
            "8",
        ],
    );
    let stdout = String::from_utf8_lossy(&trained.stdout);
    assert!(
        stdout.contains("conditional on the diagnosis: mel, nv"),
        "{stdout}"
    );
    let snapshot = aegan::checkpoint::resolve(&out.join("checkpoint")).unwrap();
    let config = fs::read_to_string(snapshot.join("config.json")).unwrap();
    assert!(
        config.contains("\"mel\"")
            && config.contains("\"balanced_batches\": true")
            && config.contains("\"length_images\": 16"),
        "{config}"
    );

    let generated = dir.path().join("generated");
    let generate = |extra: &[&str]| {
        example_command("generate", dir.path())
            .args(["--checkpoint", out.join("checkpoint").to_str().unwrap()])
            .args(["--n", "3", "--out", generated.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    let chosen = generate(&["--dx", "mel"]);
    assert_succeeded(&chosen);
    assert_eq!(fs::read_dir(generated.join("images/mel")).unwrap().count(), 3);
    assert!(!generated.join("images/nv").exists(), "only the class asked for");
    let unknown = generate(&["--dx", "bcc"]);
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("bcc") && stderr.contains("mel, nv"),
        "lists the known classes: {stderr}"
    );

    // Every class: one row of the grid per class, however few images each.
    let every = generate(&[]);
    assert_succeeded(&every);
    let grid = image::open(generated.join("grid.png")).unwrap();
    let tile = 16 * 2 + 2;
    assert_eq!(
        grid.height(),
        2 * tile + 2,
        "two classes, three images each: two rows"
    );

    let evaluated = example_command("evaluate", dir.path())
        .args(["--real", data, "--ham-holdout", "0.2", "--size", "16"])
        .args([
            "--checkpoint",
            out.join("checkpoint").to_str().unwrap(),
            "--n",
            "8",
        ])
        .args([
            "--per-class",
            "--per-class-n",
            "4",
            "--classifier-steps",
            "2",
            "--json",
        ])
        .output()
        .unwrap();
    let lines = json_lines(&evaluated);
    assert_eq!(lines.len(), 3, "the overall report, then one line per class");
    // The privacy evidence: every training image searched, and both membership attacks.
    let report = &lines[0];
    let searched = report["memorisation_pixels"]["training_images"].as_u64().unwrap();
    assert!(
        searched > 8,
        "searched {searched} training images, not only --n's 8"
    );
    for auc in ["discriminator_auc", "reconstruction_auc"] {
        let value = report["membership"][auc].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&value), "{auc} {value}");
    }
    assert_eq!(lines[1]["class"], "mel");
    assert_eq!(lines[2]["class"], "nv");
    let fidelity = lines[1]["fidelity"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&fidelity));

    // Held-out lesions redrawn as each diagnosis: one more line per diagnosis.
    let redrawn = example_command("evaluate", dir.path())
        .args(["--real", data, "--ham-holdout", "0.2", "--size", "16"])
        .args([
            "--checkpoint",
            out.join("checkpoint").to_str().unwrap(),
            "--n",
            "8",
        ])
        .args(["--per-class", "--per-class-n", "4", "--classifier-steps", "2"])
        .args(["--counterfactuals", "3", "--json"])
        .output()
        .unwrap();
    let lines = json_lines(&redrawn);
    // A diagnosis is a target where a held-out lesion of the other diagnosis exists.
    assert!(
        (4..=5).contains(&lines.len()),
        "report, two classes, counterfactual rows"
    );
    for line in &lines[3..] {
        let row = &line["counterfactual"];
        assert!(row["class"] == "mel" || row["class"] == "nv", "{row}");
        assert!(row["edited"].as_u64().unwrap() >= 1);
        assert!((0.0..=1.0).contains(&row["assigned"].as_f64().unwrap()));
        assert!(row["frame_change"].as_f64().unwrap() >= 0.0);
    }

    // Each lesion as every diagnosis: the HAM10000 folder gives each its own class.
    let edits = dir.path().join("edits");
    let edit = |extra: &[&str]| {
        example_command("generate", dir.path())
            .args(["--checkpoint", out.join("checkpoint").to_str().unwrap()])
            .args(["--out", edits.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    let edited = edit(&["--edit", data]);
    assert_succeeded(&edited);
    // 16 rows (the first 16 of 24 lesions) of input, reconstruction, as mel, as nv; tiles
    // of 16 pixels enlarged 3 times with a 2-pixel border, a band of names above when a
    // font is found.
    let grid = image::open(edits.join("edits.png")).unwrap();
    let tile = 16 * 3 + 2;
    assert_eq!(grid.width(), 4 * tile + 2);
    assert!(
        [16 * tile + 2, 16 * tile + 2 + 20].contains(&grid.height()),
        "{}",
        grid.height()
    );
    let first = edits.join("edits/00-ISIC_0000000");
    for file in [
        "input.png",
        "reconstruction-as-mel.png",
        "as-mel.png",
        "as-nv.png",
    ] {
        assert!(first.join(file).is_file(), "{file} missing");
    }
    // Only --to, and a class path per edited lesion.
    let folder = dir.path().join("HAM10000_images_part_1");
    let one = folder.join("ISIC_0000001.jpg");
    let only_mel = edit(&[
        "--edit",
        one.to_str().unwrap(),
        "--from",
        "nv",
        "--to",
        "mel",
        "--class-path",
        "nv,mel",
        "--steps",
        "5",
    ]);
    assert_succeeded(&only_mel);
    let grid = image::open(edits.join("edits.png")).unwrap();
    assert_eq!(grid.width(), 3 * tile + 2, "input, reconstruction, as mel");
    let path = image::open(edits.join("class-path.png")).unwrap();
    assert_eq!(path.width(), 5 * tile + 2, "five steps from nv to mel");
    // A single image carries no diagnosis: --from is asked for by name.
    let no_from = edit(&["--edit", one.to_str().unwrap()]);
    assert_eq!(no_from.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_from.stderr).contains("--from"));
    let unknown = edit(&["--edit", data, "--to", "bcc"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("--to"));
    // Held-out lesions only, the diagnoses in turn: the rows are the library's choice.
    let held_dir = dir.path().join("held-out-edits");
    let held = example_command("generate", dir.path())
        .args(["--checkpoint", out.join("checkpoint").to_str().unwrap()])
        .args(["--out", held_dir.to_str().unwrap()])
        .args(["--edit", data, "--ham-holdout", "0.2"])
        .output()
        .unwrap();
    assert_succeeded(&held);
    assert_rows_are_the_held_out_choice(Path::new(data), &held_dir.join("edits"));
    let bad_fraction = edit(&["--edit", data, "--ham-holdout", "1.5"]);
    assert_eq!(bad_fraction.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_fraction.stderr).contains("--ham-holdout"));
    let with_from = edit(&["--edit", data, "--from", "nv", "--ham-holdout", "0.2"]);
    assert_eq!(with_from.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&with_from.stderr);
    assert!(
        stderr.contains("--ham-holdout") && stderr.contains("--from"),
        "{stderr}"
    );

    // The quiz: half real, half generated, with the diagnosis question.
    let quiz_dir = dir.path().join("quiz");
    let quiz = edit(&["--quiz", quiz_dir.to_str().unwrap(), "--real", data, "--n", "6"]);
    assert_succeeded(&quiz);
    let answers: Vec<serde_json::Value> =
        serde_json::from_str(&fs::read_to_string(quiz_dir.join("answers.json")).unwrap()).unwrap();
    assert_eq!(answers.len(), 6);
    let real = answers.iter().filter(|a| a["origin"] == "real").count();
    assert_eq!(real, 3, "half real");
    assert!(answers.iter().all(|a| a["class"] == "mel" || a["class"] == "nv"));
    let page = fs::read_to_string(quiz_dir.join("index.html")).unwrap();
    assert_eq!(page.matches("<figure").count(), 6);
    assert!(
        page.contains("which class?") && !page.contains("://"),
        "self-contained"
    );
    let odd = edit(&["--quiz", quiz_dir.to_str().unwrap(), "--real", data, "--n", "5"]);
    assert!(String::from_utf8_lossy(&odd.stderr).contains("--n"));
}

/// Writes `n` synthetic 16×16 sprites into `dir`, named `<category>__<i>.png` when given
/// categories (taken in turn), else `<i>.png`.
fn write_sprites(dir: &Path, n: usize, categories: &[&str]) {
    fs::create_dir_all(dir).unwrap();
    let drawn = aegan::data::synthetic::sprites(n, 16, 1)
        .to_tensor(&aegan::candle_core::Device::Cpu)
        .unwrap();
    for (i, image) in aegan::viz::to_rgb_images(&drawn).unwrap().iter().enumerate() {
        let name = match categories {
            [] => format!("{i}.png"),
            _ => format!("{}__{i}.png", categories[i % categories.len()]),
        };
        image.save(dir.join(name)).unwrap();
    }
}

#[test]
fn the_sprites_example_conditions_on_the_categories_where_every_sprite_has_one() {
    let dir = tempfile::tempdir().unwrap();
    let train = |data: &Path, name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let output = example_command("sprites", dir.path())
            .args(["--data", data.to_str().unwrap(), "--size", "16", "--batch", "4"])
            .args(["--steps", "1", "--no-progress", "--no-cache", "--no-eval"])
            .args(["--out", out.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert_succeeded(&output);
        let latest = fs::read_to_string(out.join("checkpoint/latest")).unwrap();
        let config: serde_json::Value = serde_json::from_str(
            &fs::read_to_string(out.join("checkpoint").join(latest.trim()).join("config.json")).unwrap(),
        )
        .unwrap();
        (stdout, config["conditioning"].clone())
    };
    let labelled = dir.path().join("labelled");
    write_sprites(&labelled, 8, &["item", "mon"]);
    let (stdout, conditioning) = train(&labelled, "by_default", &[]);
    assert!(
        stdout.contains("conditional on the category: item, mon"),
        "{stdout}"
    );
    assert_eq!(conditioning["classes"], serde_json::json!(["item", "mon"]));

    let (_, conditioning) = train(&labelled, "told_not_to", &["--unconditional"]);
    assert!(conditioning.is_null(), "{conditioning}");

    // A conditional config stays conditional: asking otherwise is an error naming the option.
    let latest = fs::read_to_string(dir.path().join("by_default/checkpoint/latest")).unwrap();
    let config = dir
        .path()
        .join("by_default/checkpoint")
        .join(latest.trim())
        .join("config.json");
    let refused = example_command("sprites", dir.path())
        .args([
            "--data",
            labelled.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
        .args(["--unconditional", "--steps", "1", "--no-progress", "--no-cache"])
        .args(["--out", dir.path().join("refused").to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--unconditional"), "{stderr}");

    // Two levels of the name make the category; kinds smaller than --category-min-images
    // join their parent, and a run that names its classes refuses the category options.
    let deep = dir.path().join("deep_sprites");
    write_sprites(&deep, 8, &["item__potion", "mon__undead"]);
    let (stdout, _) = train(&deep, "deep", &["--category-min-images", "4"]);
    assert!(
        stdout.contains("conditional on the category: item/potion, mon/undead"),
        "{stdout}"
    );
    let (stdout, _) = train(&deep, "merged", &["--category-min-images", "5"]);
    assert!(
        stdout.contains("conditional on the category: item, mon"),
        "{stdout}"
    );
    let (stdout, _) = train(&deep, "shallow", &["--category-depth", "1"]);
    assert!(
        stdout.contains("conditional on the category: item, mon"),
        "{stdout}"
    );
    for extra in [
        &["--category-depth", "0"][..],
        &["--config", config.to_str().unwrap(), "--category-depth", "2"][..],
    ] {
        let refused = example_command("sprites", dir.path())
            .args(["--data", deep.to_str().unwrap(), "--steps", "1", "--no-progress"])
            .args([
                "--no-cache",
                "--out",
                dir.path().join("refused_depth").to_str().unwrap(),
            ])
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{extra:?}: {stderr}");
        assert!(stderr.contains("--category-depth"), "{stderr}");
    }

    let plain = dir.path().join("plain");
    write_sprites(&plain, 8, &[]);
    let (stdout, conditioning) = train(&plain, "no_categories", &[]);
    assert!(
        stdout.contains("unconditional: the sprites do not all have"),
        "{stdout}"
    );
    assert!(conditioning.is_null(), "{conditioning}");

    let one = dir.path().join("one");
    write_sprites(&one, 8, &["mon"]);
    let (stdout, conditioning) = train(&one, "one_category", &[]);
    assert!(
        stdout.contains("unconditional: the sprites do not all have"),
        "{stdout}"
    );
    assert!(
        conditioning.is_null(),
        "one category is no condition: {conditioning}"
    );
}

#[test]
fn training_at_a_size_larger_than_the_images_warns_with_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let sprites = dir.path().join("sprites");
    write_sprites(&sprites, 8, &[]);
    for (size, warned) in [("16", false), ("32", true)] {
        let out = dir.path().join(format!("run{size}"));
        let trained = example_command("sprites", dir.path())
            .args(["--data", sprites.to_str().unwrap(), "--size", size])
            .args(["--batch", "4", "--steps", "1", "--no-eval", "--no-progress"])
            .args(["--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert_succeeded(&trained);
        let stderr = String::from_utf8_lossy(&trained.stderr);
        let warning = "8 of 8 images are smaller than 32×32 (the smallest 16×16)";
        assert_eq!(stderr.contains(warning), warned, "--size {size}:\n{stderr}");
    }
}

#[test]
fn a_conditional_sprites_model_is_measured_against_its_labelled_folder() {
    let dir = tempfile::tempdir().unwrap();
    let sprites = dir.path().join("sprites");
    write_sprites(&sprites, 16, &["item", "mon"]);
    let out = dir.path().join("run");
    let trained = example_command("sprites", dir.path())
        .args([
            "--data",
            sprites.to_str().unwrap(),
            "--size",
            "16",
            "--batch",
            "4",
        ])
        .args(["--steps", "3", "--conditional", "--no-progress", "--no-cache"])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_succeeded(&trained);
    let evaluate = |real: &Path| {
        example_command("evaluate", dir.path())
            .args(["--real", real.to_str().unwrap(), "--pixel-art", "--n", "8"])
            .args(["--checkpoint", out.join("checkpoint").to_str().unwrap()])
            .args([
                "--per-class",
                "--per-class-n",
                "4",
                "--classifier-steps",
                "2",
                "--json",
            ])
            .output()
            .unwrap()
    };
    let evaluated = evaluate(&sprites);
    let lines = json_lines(&evaluated);
    assert_eq!(lines.len(), 3, "the overall report, then one line per category");
    assert_eq!(
        (lines[1]["class"].as_str(), lines[2]["class"].as_str()),
        (Some("item"), Some("mon"))
    );
    // Within-class diversity, pixel by pixel and of the layout, per class.
    for line in &lines[1..] {
        for figure in ["diversity", "layout_diversity"] {
            let diversity = line[figure].as_f64().unwrap();
            assert!(diversity.is_finite() && diversity >= 0.0, "{figure}: {line}");
        }
    }

    // A folder of other categories is refused, naming both sets of classes.
    let other = dir.path().join("other");
    fs::create_dir_all(other.join("player")).unwrap();
    fs::create_dir_all(other.join("item")).unwrap();
    for (i, folder) in ["item", "item", "player", "player"].iter().enumerate() {
        fs::copy(
            sprites.join(format!("item__{}.png", 2 * i)),
            other.join(folder).join(format!("{i}.png")),
        )
        .unwrap();
    }
    let refused = evaluate(&other);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--real") && stderr.contains("category player") && stderr.contains("(item, mon)"),
        "{stderr}"
    );
}

#[test]
fn evaluate_finds_a_copy_of_a_training_image_that_the_fid_sample_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let real = common::write_images(&dir.path().join("real"), 24, 16);
    common::write_images(&dir.path().join("held"), 8, 16);
    // Generated: other images, and a copy of training image 23, which --max-real 4 (images
    // 0, 6, 12 and 18) leaves out of the distribution metrics.
    let fake = dir.path().join("fake");
    fs::create_dir_all(&fake).unwrap();
    for (i, image) in aegan::viz::to_rgb_images(
        &aegan::data::synthetic::lesions(7, 16, 9)
            .to_tensor(&aegan::candle_core::Device::Cpu)
            .unwrap(),
    )
    .unwrap()
    .iter()
    .enumerate()
    {
        image.save(fake.join(format!("new_{i}.png"))).unwrap();
    }
    fs::copy(&real[23], fake.join("copy.jpg")).unwrap();
    let output = example_command("evaluate", dir.path())
        .args([
            "--real",
            dir.path().join("real").to_str().unwrap(),
            "--max-real",
            "4",
        ])
        .args(["--held-out", dir.path().join("held").to_str().unwrap()])
        .args(["--fake", fake.to_str().unwrap(), "--size", "16", "--json"])
        .args(["--closest-pairs", dir.path().join("pairs.png").to_str().unwrap()])
        .output()
        .unwrap();
    let report = &json_lines(&output)[0];
    let check = &report["memorisation_pixels"];
    assert_eq!(report["n_real"], 4, "{report}");
    assert_eq!(check["training_images"], 24, "{check}");
    let closest = &check["closest"][0];
    assert_eq!(closest[1], 23, "{check}");
    assert!(closest[2].as_f64().unwrap() < 1e-3, "{check}");
    assert_eq!(check["most_copy_like"][0][1], 23, "{check}");
    let share = check["generated_copy_share"].as_f64().unwrap();
    assert!((share - 1.0 / 8.0).abs() < 1e-9, "one copy in eight: {check}");
    assert!(dir.path().join("pairs.png").is_file());
}

/// The rows `generate --edit <data> --ham-holdout 0.2` wrote into `edits` are the lesions
/// that `Ham10000::held_out_by_diagnosis` chooses, in its order.
#[cfg(feature = "ham10000")]
fn assert_rows_are_the_held_out_choice(data: &Path, edits: &Path) {
    use aegan::data::ham10000::{Ham10000, SPLIT_SEED};
    let options = aegan::data::LoadOptions::new(16);
    let set = Ham10000::load(data, None, None, &options).unwrap();
    let expected: Vec<String> = set
        .held_out_by_diagnosis(0.2, SPLIT_SEED, 16)
        .iter()
        .enumerate()
        .map(|(row, &i)| format!("{row:02}-{}", set.records[i].image_id))
        .collect();
    let mut rows: Vec<String> = fs::read_dir(edits)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    rows.sort();
    assert!(!expected.is_empty());
    assert_eq!(rows, expected);
}

/// Without the `ham10000` feature there is no split to compare with (and no example to run).
#[cfg(not(feature = "ham10000"))]
fn assert_rows_are_the_held_out_choice(_data: &Path, _edits: &Path) {}
