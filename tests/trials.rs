//! Trials of the example programs as a new user meets them: bad inputs the tests make
//! themselves (corrupt and truncated images, broken CSVs, damaged checkpoints, options out of
//! range) and signals sent to a real training process. Each trial asserts the exit code and
//! the message, and that no run is lost.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{example_command, ham_folder, write_images};

/// Example `name` with `args`, as a user runs it (see [`example_command`]); `dir` is the
/// test's temporary directory.
fn command(dir: &Path, name: &str, args: &[&str]) -> Command {
    let mut c = example_command(name, dir);
    c.args(args);
    c
}

fn run(dir: &Path, name: &str, args: &[&str]) -> Output {
    command(dir, name, args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs and asserts success, returning standard output.
fn run_ok(dir: &Path, name: &str, args: &[&str]) -> Output {
    let out = run(dir, name, args);
    assert!(
        out.status.success(),
        "{name} {args:?} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Runs and asserts exit code 1 with an error (no panic) that contains every one of `words`.
fn run_fails(dir: &Path, name: &str, args: &[&str], words: &[&str]) -> String {
    let out = run(dir, name, args);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{name} {args:?} should fail with exit code 1:\n{}\n{stderr}",
        text(&out.stdout)
    );
    assert!(
        !stderr.contains("panicked"),
        "{name} {args:?} panicked:\n{stderr}"
    );
    for word in words {
        assert!(
            stderr.contains(word),
            "{name} {args:?}: `{word}` missing from:\n{stderr}"
        );
    }
    stderr
}

fn logged_steps(out: &Path) -> Vec<u64> {
    fs::read_to_string(out.join("losses.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

fn latest(out: &Path) -> String {
    fs::read_to_string(out.join("checkpoint/latest")).unwrap()
}

/// The options of a tiny, fast training run on `data` into `out`.
fn tiny_run<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "--data",
        data,
        "--size",
        "16",
        "--batch",
        "4",
        "--out",
        out,
        "--no-progress",
        "--no-eval",
        "--no-cache",
    ]
}

fn with<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    [base, more].concat()
}

#[test]
fn a_new_run_into_a_folder_with_a_run_is_refused_and_overwrite_says_what_it_deletes() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 16);
    let out = dir.path().join("run");
    let (data, out_s) = (dir.path().to_str().unwrap(), out.to_str().unwrap());
    let base = tiny_run(data, out_s);
    run_ok(
        dir.path(),
        "ham10000",
        &with(&base, &["--steps", "3", "--save-every", "1"]),
    );
    let log_before = fs::read_to_string(out.join("losses.jsonl")).unwrap();

    // The forgotten --resume: refused, nothing touched.
    let stderr = run_fails(
        dir.path(),
        "ham10000",
        &with(&base, &["--steps", "2"]),
        &[out_s, "--resume", "--out", "--overwrite", "step 3"],
    );
    assert!(stderr.contains("already holds another training run"), "{stderr}");
    assert_eq!(fs::read_to_string(out.join("losses.jsonl")).unwrap(), log_before);
    assert_eq!(latest(&out), "step-00000003");
    assert!(out.join("checkpoint/step-00000002").is_dir());

    // --overwrite deletes the old run, saying so, and starts afresh.
    let fresh = run_ok(
        dir.path(),
        "ham10000",
        &with(&base, &["--steps", "2", "--overwrite"]),
    );
    let stdout = text(&fresh.stdout);
    assert!(stdout.contains("--overwrite: deleting the run"), "{stdout}");
    assert!(stdout.contains("losses.jsonl"), "{stdout}");
    assert_eq!(logged_steps(&out), [1, 2]);
    assert_eq!(latest(&out), "step-00000002");
    assert!(!out.join("checkpoint/step-00000003").exists());
}

#[test]
fn minutes_alone_trains_for_that_long_past_the_default_length() {
    let dir = tempfile::tempdir().unwrap();
    // 6 training images after the lesion hold-out: 1 step per epoch at batch 4, so the
    // default 10 epochs are 10 steps.
    ham_folder(dir.path(), 8);
    let out = dir.path().join("run");
    let base = tiny_run(dir.path().to_str().unwrap(), out.to_str().unwrap());
    let started = Instant::now();
    let output = run_ok(
        dir.path(),
        "ham10000",
        &with(&base, &["--minutes", "0.1", "--save-every", "100000"]),
    );
    assert!(started.elapsed().as_secs_f64() >= 6.0);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("for 0.1 minutes"), "{stdout}");
    assert!(stdout.contains("split: 6 training images"), "{stdout}");
    let steps = logged_steps(&out);
    assert!(*steps.last().unwrap() > 10, "stopped at step {:?}", steps.last());
    assert!(out.join("checkpoint/latest").exists());
}

#[cfg(unix)]
fn wait_for_steps(out: &Path, child: &mut Child, steps: usize) {
    let started = Instant::now();
    while logged_steps(out).len() < steps {
        assert!(child.try_wait().unwrap().is_none(), "training ended early");
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no training step within two minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn sigint_sigterm_and_sighup_save_a_checkpoint_and_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 16);
    for name in ["INT", "TERM", "HUP"] {
        let out = dir.path().join(format!("run-{name}"));
        let (data, out_s) = (dir.path().to_str().unwrap(), out.to_str().unwrap());
        let mut child = command(
            dir.path(),
            "ham10000",
            &with(
                &tiny_run(data, out_s),
                &["--steps", "100000", "--save-every", "100000"],
            ),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        wait_for_steps(&out, &mut child, 2);
        signal(&child, name);
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "SIG{name}: {:?}\n{}",
            output.status,
            text(&output.stderr)
        );
        let last = *logged_steps(&out).last().unwrap();
        assert_eq!(latest(&out), format!("step-{last:08}"), "SIG{name}");
        assert!(text(&output.stderr).contains("saving a checkpoint"), "SIG{name}");
    }
}

#[cfg(unix)]
#[test]
fn kill_9_at_any_moment_of_saving_leaves_a_run_that_resumes() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 16);
    let out = dir.path().join("run");
    let (data, out_s) = (dir.path().to_str().unwrap(), out.to_str().unwrap());
    let base = tiny_run(data, out_s);
    // Saving every step, so a kill lands in or near a save; several kill points.
    for (round, delay_ms) in [0u64, 7, 23, 41].into_iter().enumerate() {
        let resume: &[&str] = if round == 0 { &[] } else { &["--resume"] };
        let mut child = command(
            dir.path(),
            "ham10000",
            &with(&with(&base, &["--steps", "100000", "--save-every", "1"]), resume),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let before = logged_steps(&out).len();
        wait_for_steps(&out, &mut child, before + 2);
        std::thread::sleep(Duration::from_millis(delay_ms));
        signal(&child, "KILL");
        child.wait().unwrap();
    }
    let resumed = run_ok(
        dir.path(),
        "ham10000",
        &with(
            &base,
            &[
                "--steps",
                "100000",
                "--save-every",
                "1",
                "--resume",
                "--minutes",
                "0.01",
            ],
        ),
    );
    assert!(
        text(&resumed.stdout).contains("resumed from"),
        "{}",
        text(&resumed.stdout)
    );
    let steps = logged_steps(&out);
    let expected: Vec<u64> = (1..=*steps.last().unwrap()).collect();
    assert_eq!(steps, expected, "the log continues without gaps or repeats");
}

#[test]
fn resume_falls_back_to_the_newest_snapshot_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 16);
    let out = dir.path().join("run");
    let (data, out_s) = (dir.path().to_str().unwrap(), out.to_str().unwrap());
    let base = tiny_run(data, out_s);
    run_ok(
        dir.path(),
        "ham10000",
        &with(&base, &["--steps", "4", "--save-every", "1"]),
    );
    let checkpoint = out.join("checkpoint");

    // `latest` missing.
    fs::remove_file(checkpoint.join("latest")).unwrap();
    let resumed = run_ok(
        dir.path(),
        "ham10000",
        &with(&base, &["--steps", "5", "--save-every", "1", "--resume"]),
    );
    assert!(
        text(&resumed.stdout).contains("step-00000004 at step 4"),
        "{}",
        text(&resumed.stdout)
    );
    assert_eq!(latest(&out), "step-00000005");

    // `latest` dangling.
    fs::write(checkpoint.join("latest"), "step-00000099").unwrap();
    let resumed = run_ok(
        dir.path(),
        "ham10000",
        &with(&base, &["--steps", "6", "--save-every", "1", "--resume"]),
    );
    assert!(
        text(&resumed.stdout).contains("at step 5"),
        "{}",
        text(&resumed.stdout)
    );

    // `latest` names a damaged snapshot: the one before it is used, and the skip is reported.
    let damaged = checkpoint.join("step-00000006");
    fs::write(damaged.join("generator.safetensors"), b"not a safetensors file").unwrap();
    let resumed = run_ok(
        dir.path(),
        "ham10000",
        &with(&base, &["--steps", "7", "--save-every", "1", "--resume"]),
    );
    let (stdout, stderr) = (text(&resumed.stdout), text(&resumed.stderr));
    assert!(stdout.contains("step-00000005 at step 5"), "{stdout}");
    assert!(
        stderr.contains("skipped snapshot") && stderr.contains("step-00000006"),
        "{stderr}"
    );
    assert_eq!(logged_steps(&out), [1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn truncated_images_are_skipped_with_a_warning_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    let paths = write_images(&images, 8, 128);
    // Cut inside the entropy-coded data: the decoder fills the rest with grey, no error.
    let bytes = fs::read(&paths[0]).unwrap();
    fs::write(&paths[0], &bytes[..bytes.len() * 3 / 4]).unwrap();
    let png = images.join("cut.png");
    image::RgbImage::from_pixel(32, 32, image::Rgb([200, 120, 90]))
        .save(&png)
        .unwrap();
    let bytes = fs::read(&png).unwrap();
    fs::write(&png, &bytes[..bytes.len() - 12]).unwrap(); // without its IEND chunk

    let out = dir.path().join("run");
    let base = tiny_run(images.to_str().unwrap(), out.to_str().unwrap());
    let result = run_ok(dir.path(), "ham10000", &with(&base, &["--steps", "1"]));
    let stderr = text(&result.stderr);
    for path in [&paths[0], &png] {
        assert!(
            stderr.contains(&format!("skipped {}", path.display())),
            "{} not reported:\n{stderr}",
            path.display()
        );
    }
    assert!(
        stderr.contains("truncated JPEG") && stderr.contains("truncated PNG"),
        "{stderr}"
    );
    assert!(
        text(&result.stdout).contains("data: 7 images"),
        "{}",
        text(&result.stdout)
    );
}

#[test]
fn resume_refuses_options_that_would_change_the_checkpoint_config() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 16);
    let out = dir.path().join("run");
    let (data, out_s) = (dir.path().to_str().unwrap(), out.to_str().unwrap());
    let base = tiny_run(data, out_s);
    run_ok(
        dir.path(),
        "ham10000",
        &with(&base, &["--steps", "1", "--seed", "5"]),
    );
    let resume_without_data = [
        "--out",
        out_s,
        "--no-progress",
        "--no-eval",
        "--resume",
        "--steps",
        "2",
    ];
    let resume = |extra: &[&str], words: &[&str]| {
        let args = [&["--data", data], &resume_without_data[..], extra].concat();
        run_fails(dir.path(), "ham10000", &args, words);
    };
    resume(&["--size", "32"], &["--size", "the checkpoint has 16"]);
    resume(&["--batch", "8"], &["--batch", "the checkpoint has 4"]);
    resume(&["--seed", "6"], &["--seed", "the checkpoint has 5"]);
    resume(&["--preset", "author"], &["--preset", "author"]);
    resume(&["--progressive"], &["--progressive"]);
    let config_path = dir.path().join("other.json");
    let mut config = aegan::checkpoint::read_config(&out.join("checkpoint")).unwrap();
    config.learning_rates.generator *= 2.0;
    fs::write(&config_path, config.to_json()).unwrap();
    resume(
        &["--config", config_path.to_str().unwrap()],
        &["--config", "learning_rates.generator"],
    );
    assert_eq!(logged_steps(&out), [1], "nothing trained by a refused resume");

    // Resumed without --data, the run would go on with the synthetic lesions: refused, naming
    // the folder it trained on.
    let canonical = fs::canonicalize(data).unwrap();
    let canonical = canonical.to_str().unwrap();
    run_fails(
        dir.path(),
        "ham10000",
        &resume_without_data,
        &["--data", "trained on the images in", canonical],
    );
    assert_eq!(logged_steps(&out), [1], "nothing trained by a refused resume");

    // The checkpoint's own values are accepted, and the run continues.
    run_ok(
        dir.path(),
        "ham10000",
        &with(
            &base,
            &["--steps", "2", "--seed", "5", "--resume", "--preset", "lean"],
        ),
    );
    assert_eq!(logged_steps(&out), [1, 2]);

    // A run on the synthetic lesions resumed with a folder is refused the other way round.
    let synthetic = dir.path().join("synthetic");
    let synthetic_s = synthetic.to_str().unwrap();
    let synthetic_run = [
        "--size",
        "16",
        "--batch",
        "4",
        "--out",
        synthetic_s,
        "--no-progress",
        "--no-eval",
    ];
    run_ok(dir.path(), "ham10000", &with(&synthetic_run, &["--steps", "1"]));
    run_fails(
        dir.path(),
        "ham10000",
        &with(&synthetic_run, &["--steps", "2", "--resume", "--data", data]),
        &["--data", "synthetic images: resume it without --data"],
    );
    run_ok(
        dir.path(),
        "ham10000",
        &with(&synthetic_run, &["--steps", "2", "--resume"]),
    );
    assert_eq!(logged_steps(&synthetic), [1, 2]);
}

#[test]
fn a_config_file_takes_seed_and_batch_beside_it_and_refuses_a_preset_or_another_size() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 16);
    let data = dir.path().to_str().unwrap();
    let config_path = dir.path().join("lean16.json");
    let mut config = aegan::AeganConfig::lean(16);
    config.batch_size = 8;
    fs::write(&config_path, config.to_json()).unwrap();
    let config_s = config_path.to_str().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let base = [
        "--data",
        data,
        "--config",
        config_s,
        "--out",
        out_s,
        "--no-progress",
        "--no-eval",
        "--no-cache",
        "--steps",
        "1",
    ];
    run_fails(
        dir.path(),
        "ham10000",
        &with(&base, &["--preset", "lean"]),
        &["--preset", config_s],
    );
    run_fails(
        dir.path(),
        "ham10000",
        &with(&base, &["--size", "32"]),
        &["--size", "16×16"],
    );
    assert!(!out.join("checkpoint").exists(), "no run was started");

    run_ok(
        dir.path(),
        "ham10000",
        &with(&base, &["--size", "16", "--seed", "7", "--batch", "4"]),
    );
    let trained = aegan::checkpoint::read_config(&out.join("checkpoint")).unwrap();
    assert_eq!((trained.seed, trained.batch_size), (7, 4));
    assert_eq!(trained.latent_dim, config.latent_dim);
}

#[test]
fn options_out_of_range_fail_at_once_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 8);
    let data = dir.path().to_str().unwrap();
    let out = dir.path().join("never");
    let out_s = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--holdout", "1"], "--holdout"),
        (&["--holdout=-0.1"], "--holdout"),
        (&["--holdout", "NaN"], "--holdout"),
        (&["--holdout", "0.95"], "leaves none to train on"),
        (&["--epochs", "0"], "--epochs"),
        (&["--epochs=-2"], "--epochs"),
        (&["--epochs", "0.01"], "--epochs"),
        (&["--steps", "0"], "--steps"),
        (&["--minutes", "0"], "--minutes"),
        (&["--minutes", "inf"], "--minutes"),
        (&["--minutes", "1e18"], "too long to be a time limit"),
        (&["--save-every", "0"], "--save-every"),
        (&["--size", "0"], "--size"),
        (&["--size", "24"], "--size"),
        (&["--batch", "0"], "--batch"),
        (&["--eval-images", "0"], "--eval-images"),
        (&["--phase-images", "8"], "--phase-images"),
        (&["--size", "64", "--direct", "--start-at-2"], "--start-at-2"),
        (&["--conditional", "--class-loss", "-1"], "--class-loss"),
        (&["--conditional", "--class-loss", "NaN"], "--class-loss"),
        (&["--conditional", "--transition", "5"], "--transition"),
        (
            &["--conditional", "--transition", "5,0"],
            "LENGTH must be at least 1",
        ),
    ];
    for (extra, option) in cases {
        let mut args = vec!["--data", data, "--out", out_s, "--no-progress", "--no-cache"];
        args.extend_from_slice(extra);
        let stderr = run_fails(dir.path(), "ham10000", &args, &[option]);
        assert!(!stderr.contains("cat expects"), "{stderr}");
    }
    assert!(!out.join("checkpoint").exists(), "no run was started");

    let checkpoint = dir.path().join("whatever");
    run_fails(
        dir.path(),
        "generate",
        &["--checkpoint", checkpoint.to_str().unwrap(), "--n", "0"],
        &["--n"],
    );
    run_fails(
        dir.path(),
        "generate",
        &[
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--grid-columns",
            "0",
        ],
        &["--grid-columns"],
    );
    for psi in ["0", "1.5", "NaN"] {
        run_fails(
            dir.path(),
            "generate",
            &["--checkpoint", checkpoint.to_str().unwrap(), "--truncation", psi],
            &["--truncation"],
        );
    }
    run_fails(
        dir.path(),
        "evaluate",
        &["--real", data, "--fake", data, "--max-real", "0"],
        &["--max-real"],
    );
    run_fails(
        dir.path(),
        "evaluate",
        &["--real", data, "--fake", data, "--size", "0"],
        &["--size"],
    );
    run_fails(
        dir.path(),
        "sprites",
        &["--data", data, "--out", out_s, "--steps", "0"],
        &["--steps"],
    );
}

#[test]
fn metadata_anomalies_warn_or_refuse_naming_the_csv_line() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 12);
    let csv = dir.path().join("HAM10000_metadata.csv");
    let original = fs::read_to_string(&csv).unwrap();
    let out = dir.path().join("run");
    let (data, out_s) = (dir.path().to_str().unwrap(), out.to_str().unwrap());

    // An unknown code and a repeated row: warnings naming the lines; the image is used once.
    let rows: Vec<&str> = original.lines().collect();
    let mut text_csv = rows
        .join("\n")
        .replace("HAM_5,ISIC_0000011,nv", "HAM_5,ISIC_0000011,nevus");
    text_csv.push_str(&format!("\n{}\n", rows[3]));
    fs::write(&csv, &text_csv).unwrap();
    let result = run_ok(
        dir.path(),
        "ham10000",
        &with(&tiny_run(data, out_s), &["--steps", "1", "--holdout", "0"]),
    );
    let stderr = text(&result.stderr);
    assert!(
        stderr.contains("line 13") && stderr.contains("`nevus`"),
        "{stderr}"
    );
    assert!(stderr.contains("line 14: repeats the row of line 4"), "{stderr}");
    assert!(
        text(&result.stdout).contains("data: 12 images"),
        "{}",
        text(&result.stdout)
    );

    // One image under two lesions: refused, naming both lines.
    let conflicting = format!("{original}HAM_77,ISIC_0000002,nv\n");
    fs::write(&csv, conflicting).unwrap();
    run_fails(
        dir.path(),
        "ham10000",
        &with(
            &tiny_run(data, dir.path().join("run2").to_str().unwrap()),
            &["--steps", "1"],
        ),
        &["HAM10000_metadata.csv, line 14", "ISIC_0000002", "line 4"],
    );
}

/// Peak resident memory of a child process in KiB, from `wait4`.
#[cfg(target_os = "linux")]
#[allow(clippy::zombie_processes)] // reaped by wait4, which std does not know of
fn peak_rss_kib(mut command: Command) -> i64 {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for the child we spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "generate failed"
    );
    usage.ru_maxrss
}

#[cfg(target_os = "linux")]
#[test]
fn generate_streams_any_number_of_images_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 8);
    let out = dir.path().join("run");
    let (data, out_s) = (dir.path().to_str().unwrap(), out.to_str().unwrap());
    let mut args = tiny_run(data, out_s);
    args[3] = "32";
    run_ok(dir.path(), "ham10000", &with(&args, &["--steps", "1"]));
    let checkpoint = out.join("checkpoint");
    let generate = |n: &str, to: &Path| {
        let mut c = command(
            dir.path(),
            "generate",
            &["--checkpoint", checkpoint.to_str().unwrap(), "--n", n],
        );
        c.args(["--out", to.to_str().unwrap()]);
        c
    };
    let small = peak_rss_kib(generate("64", &dir.path().join("small")));
    let large_dir = dir.path().join("large");
    let large = peak_rss_kib(generate("4000", &large_dir));
    assert_eq!(fs::read_dir(large_dir.join("images")).unwrap().count(), 4000);
    // All 4,000 at once would hold their activations (hundreds of MB); streamed, the peak
    // stays that of one batch.
    assert!(
        large < small + 64 * 1024,
        "peak RSS {large} KiB for 4,000 images against {small} KiB for 64"
    );
}

#[test]
fn evaluation_warns_about_small_and_resized_sets_and_names_the_folder_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    let fake = dir.path().join("fake");
    write_images(&real, 12, 24);
    write_images(&fake, 12, 32);
    let result = run_ok(
        dir.path(),
        "evaluate",
        &[
            "--real",
            real.to_str().unwrap(),
            "--fake",
            fake.to_str().unwrap(),
            "--json",
        ],
    );
    let stderr = text(&result.stderr);
    assert!(stderr.contains("12 real and 12 generated images"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--real {}: 12 of 12 images are not 32×32 (e.g. 24×24)",
            real.display()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("--fake"),
        "the fake images are 32×32 already:\n{stderr}"
    );
    assert!(
        !stderr.contains("were enlarged to it"),
        "one warning about the resized images, not the loader's as well:\n{stderr}"
    );

    // Held-out images add the memorisation check and its picture of the closest pairs.
    let held = dir.path().join("held");
    write_images(&held, 12, 32);
    let pairs = dir.path().join("pairs.png");
    let result = run_ok(
        dir.path(),
        "evaluate",
        &[
            "--real",
            fake.to_str().unwrap(),
            "--fake",
            real.to_str().unwrap(),
            "--held-out",
            held.to_str().unwrap(),
            "--closest-pairs",
            pairs.to_str().unwrap(),
        ],
    );
    assert!(
        text(&result.stdout).contains("memorisation ratio (pixels)"),
        "{}",
        text(&result.stdout)
    );
    assert_eq!(image::open(&pairs).unwrap().width(), 2 + 2 * (96 + 2));

    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    run_fails(
        dir.path(),
        "evaluate",
        &[
            "--real",
            real.to_str().unwrap(),
            "--fake",
            empty.to_str().unwrap(),
        ],
        &[&format!("--fake {}", empty.display())],
    );
}

#[test]
fn a_folder_of_mixed_odd_and_broken_files_trains_on_the_usable_images_only() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("mixed");
    write_images(&images.join("nested/deeper"), 4, 40);
    let odd = [
        ("notes.txt", b"not an image".to_vec()),
        ("empty.png", Vec::new()),
        ("text.jpg", b"plain text named like a JPEG".to_vec()),
    ];
    for (name, bytes) in &odd {
        fs::write(images.join(name), bytes).unwrap();
    }
    image::GrayImage::from_pixel(20, 30, image::Luma([90]))
        .save(images.join("grey.png"))
        .unwrap();
    image::RgbaImage::from_pixel(30, 20, image::Rgba([200, 30, 30, 0]))
        .save(images.join("clear.png"))
        .unwrap();
    image::ImageBuffer::<image::Rgb<u16>, _>::from_pixel(16, 16, image::Rgb([60000u16, 100, 100]))
        .save(images.join("deep.png"))
        .unwrap();

    let out = dir.path().join("run");
    let result = run_ok(
        dir.path(),
        "ham10000",
        &with(
            &tiny_run(images.to_str().unwrap(), out.to_str().unwrap()),
            &["--steps", "1"],
        ),
    );
    let stderr = text(&result.stderr);
    for (name, _) in &odd {
        assert!(
            stderr.contains(&format!("skipped {}", images.join(name).display())),
            "{name}:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("skipped 3 unreadable file(s); loaded 7 image(s)"),
        "{stderr}"
    );
    assert!(
        text(&result.stdout).contains("data: 7 images"),
        "{}",
        text(&result.stdout)
    );
}

#[test]
fn a_broken_csv_row_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 6);
    let csv = dir.path().join("HAM10000_metadata.csv");
    let mut rows = fs::read_to_string(&csv).unwrap();
    rows.push_str("HAM_9,ISIC_0000009\n");
    fs::write(&csv, rows).unwrap();
    let out = dir.path().join("run");
    run_fails(
        dir.path(),
        "ham10000",
        &with(
            &tiny_run(dir.path().to_str().unwrap(), out.to_str().unwrap()),
            &["--steps", "1"],
        ),
        &["HAM10000_metadata.csv, line 8"],
    );
}

#[test]
fn generate_and_evaluate_fall_back_from_a_damaged_snapshot_and_name_a_missing_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 8);
    let out = dir.path().join("run");
    let (data, out_s) = (dir.path().to_str().unwrap(), out.to_str().unwrap());
    run_ok(
        dir.path(),
        "ham10000",
        &with(&tiny_run(data, out_s), &["--steps", "2", "--save-every", "1"]),
    );
    let checkpoint = out.join("checkpoint");
    let damaged = checkpoint.join("step-00000002/encoder.safetensors");
    let bytes = fs::read(&damaged).unwrap();
    fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();

    let generated = dir.path().join("generated");
    let result = run_ok(
        dir.path(),
        "generate",
        &[
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--n",
            "3",
            "--out",
            generated.to_str().unwrap(),
        ],
    );
    let stderr = text(&result.stderr);
    assert!(
        stderr.contains("skipped snapshot") && stderr.contains(&damaged.display().to_string()),
        "{stderr}"
    );
    assert_eq!(fs::read_dir(generated.join("images")).unwrap().count(), 3);

    // Pointed at the damaged snapshot itself, there is nothing to fall back to.
    run_fails(
        dir.path(),
        "generate",
        &[
            "--checkpoint",
            checkpoint.join("step-00000002").to_str().unwrap(),
            "--out",
            generated.to_str().unwrap(),
        ],
        &["encoder.safetensors", "corrupt checkpoint"],
    );
    let nowhere = dir.path().join("nowhere");
    run_fails(
        dir.path(),
        "evaluate",
        &[
            "--real",
            data,
            "--checkpoint",
            nowhere.to_str().unwrap(),
            "--n",
            "4",
        ],
        &[
            &format!("--checkpoint {}", nowhere.display()),
            "no checkpoint found",
        ],
    );
}

#[test]
fn weights_that_are_not_finite_are_refused_and_resume_falls_back_to_a_finite_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 8);
    let out = dir.path().join("run");
    let (data, out_s) = (dir.path().to_str().unwrap(), out.to_str().unwrap());
    let base = tiny_run(data, out_s);
    run_ok(
        dir.path(),
        "ham10000",
        &with(&base, &["--steps", "2", "--save-every", "1"]),
    );
    let newest = out.join("checkpoint/step-00000002");
    let generator = newest.join("generator.safetensors");
    common::poison(&generator, "out.bias", f32::NAN);
    let file = generator.display().to_string();
    run_fails(
        dir.path(),
        "generate",
        &[
            "--checkpoint",
            newest.to_str().unwrap(),
            "--out",
            dir.path().join("generated").to_str().unwrap(),
        ],
        &[&file, "`out.bias`", "NaN"],
    );
    common::poison(&generator, "out.bias", f32::INFINITY);
    let resumed = run_ok(
        dir.path(),
        "ham10000",
        &with(&base, &["--steps", "3", "--resume"]),
    );
    let stderr = text(&resumed.stderr);
    assert!(
        stderr.contains("skipped snapshot") && stderr.contains(&file) && stderr.contains("inf"),
        "{stderr}"
    );
    assert!(
        text(&resumed.stdout).contains("step-00000001 at step 1"),
        "{}",
        text(&resumed.stdout)
    );
}

#[test]
fn a_run_into_a_folder_another_live_run_is_writing_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    ham_folder(dir.path(), 8);
    let out = dir.path().join("run");
    let (data, out_s) = (dir.path().to_str().unwrap(), out.to_str().unwrap());
    // The lock of a run that is alive: this test's own process.
    fs::create_dir_all(&out).unwrap();
    let me = std::process::id().to_string();
    fs::write(out.join("run.lock"), format!("{me}\n")).unwrap();
    run_fails(
        dir.path(),
        "ham10000",
        &with(&tiny_run(data, out_s), &["--steps", "1"]),
        &[out_s, "in use by another training run", &format!("process {me}")],
    );
    assert!(!out.join("losses.jsonl").exists(), "the refused run wrote a log");
    // Once that process is gone (a kill -9 leaves its lock behind), the folder is free.
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    fs::write(out.join("run.lock"), format!("{pid}\n")).unwrap();
    run_ok(
        dir.path(),
        "ham10000",
        &with(&tiny_run(data, out_s), &["--steps", "1"]),
    );
    assert!(!out.join("run.lock").exists(), "the lock outlived its run");
}
