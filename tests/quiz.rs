//! The practice quiz page in a real browser: headless Chromium answers every question through
//! the page's own controls, presses its button, and the score the page shows must be what
//! the answers imply.
//!
//! Chromium is found at `$AEGAN_CHROMIUM`, else as `chromium`, `chromium-browser` or
//! `google-chrome` on the PATH. Without one the test says so and passes, unless
//! `AEGAN_REQUIRE_BROWSER` is set (as the CI script sets it), where a missing browser fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use aegan::quiz::{write_quiz, Origin, QuizAnswer, QuizItem, QuizPage};

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AEGAN_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Runs headless Chromium on `page` with `extra` arguments; its standard output.
fn run_browser(browser: &Path, page: &Path, extra: &[&str]) -> String {
    let url = format!("file://{}", page.display());
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value of attribute `name` of the element with id `id` in serialised HTML.
fn attribute(dom: &str, id: &str, name: &str) -> Option<usize> {
    let start = dom.find(&format!("id=\"{id}\""))?;
    let tag = &dom[start..start + dom[start..].find('>')?];
    let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
    tag[at..at + tag[at..].find('"')?].parse().ok()
}

fn items() -> Vec<QuizItem> {
    let colours = [
        [230u8, 180, 170],
        [120, 60, 40],
        [200, 150, 140],
        [90, 40, 30],
        [250, 210, 200],
        [60, 30, 20],
    ];
    let classes = ["mel", "nv", "bkl"];
    (0..6)
        .map(|i| QuizItem {
            image: image::RgbImage::from_pixel(16, 16, image::Rgb(colours[i])),
            origin: if i < 3 { Origin::Real } else { Origin::Generated },
            class: Some(classes[i % 3].to_string()),
            source: format!("item {i}"),
        })
        .collect()
}

#[test]
fn the_quiz_page_marks_the_answers_given_through_its_controls() {
    let Some(browser) = chromium() else {
        if std::env::var_os("AEGAN_REQUIRE_BROWSER").is_some() {
            panic!("AEGAN_REQUIRE_BROWSER is set and no chromium was found (set AEGAN_CHROMIUM)");
        }
        eprintln!("skipped: no chromium on the PATH (set AEGAN_CHROMIUM to run the browser test)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut page = QuizPage::new("Practice");
    page.classes = vec!["bkl".into(), "mel".into(), "nv".into()];
    let files = write_quiz(dir.path(), &items(), &page, 11).unwrap();
    let answers: Vec<QuizAnswer> =
        serde_json::from_str(&std::fs::read_to_string(&files.answers).unwrap()).unwrap();

    // Before any answer the page shows no score.
    let untouched = run_browser(&browser, &files.page, &["--dump-dom"]);
    assert_eq!(attribute(&untouched, "score", "data-questions"), None);

    // A reader who says "real" to the even questions and "generated" to the odd ones, picks
    // the classes in turn (bkl, mel, nv, bkl, …) and leaves the last question's class open.
    let reader = r#"<script>
document.querySelectorAll("figure").forEach(function (figure, i) {
  const choice = i % 2 === 0 ? "real" : "generated";
  figure.querySelector('input[value="' + choice + '"]').click();
  const select = figure.querySelector("select");
  if (i < 5) {
    select.selectedIndex = 1 + (i % 3);
    select.dispatchEvent(new Event("change"));
  }
});
document.getElementById("mark").click();
</script>
</body>"#;
    let html = std::fs::read_to_string(&files.page).unwrap();
    let answered = dir.path().join("answered.html");
    std::fs::write(&answered, html.replace("</body>", reader)).unwrap();
    let dom = run_browser(&browser, &answered, &["--dump-dom"]);

    let offered = ["bkl", "mel", "nv"];
    let origin_right = (answers.iter().enumerate())
        .filter(|(i, a)| {
            a.origin
                == if i % 2 == 0 {
                    Origin::Real
                } else {
                    Origin::Generated
                }
        })
        .count();
    let class_right = (answers.iter().enumerate())
        .filter(|(i, a)| *i < 5 && a.class.as_deref() == Some(offered[i % 3]))
        .count();
    assert_eq!(attribute(&dom, "score", "data-questions"), Some(6));
    assert_eq!(attribute(&dom, "score", "data-origin-right"), Some(origin_right));
    assert_eq!(attribute(&dom, "score", "data-class-right"), Some(class_right));
    // Every question now shows its answer.
    for (i, answer) in answers.iter().enumerate() {
        let shown = format!(
            "id=\"answer-{i}\">{}",
            format_args!(
                " {}, {}",
                if answer.origin == Origin::Real {
                    "real"
                } else {
                    "generated"
                },
                answer.class.as_deref().unwrap()
            )
        );
        assert!(dom.contains(&shown), "question {i}: {shown} not in the page");
    }
    // And the page renders: a screenshot of it (kept beside the page for a look).
    let shot = dir.path().join("quiz.png");
    let screenshot = format!("--screenshot={}", shot.display());
    run_browser(
        &browser,
        &answered,
        &[screenshot.as_str(), "--window-size=1000,700"],
    );
    let picture = image::open(&shot).unwrap();
    assert_eq!((picture.width(), picture.height()), (1000, 700));
    if let Some(keep) = std::env::var_os("AEGAN_QUIZ_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

#[test]
fn a_quiz_needs_two_images_of_one_size_and_known_classes() {
    let dir = tempfile::tempdir().unwrap();
    let all = items();
    assert!(write_quiz(dir.path(), &all[..1], &QuizPage::new("x"), 0).is_err());
    let mut odd = all.clone();
    odd[2].image = image::RgbImage::new(8, 8);
    assert!(write_quiz(dir.path(), &odd, &QuizPage::new("x"), 0).is_err());
    let mut empty = all.clone();
    for item in &mut empty {
        item.image = image::RgbImage::new(0, 0);
    }
    let err = write_quiz(dir.path(), &empty, &QuizPage::new("x"), 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("quiz image size") && err.contains("[0, 0]"), "{err}");
    let mut page = QuizPage::new("x");
    page.classes = vec!["mel".into(), "nv".into()];
    let err = write_quiz(dir.path(), &all, &page, 0).unwrap_err().to_string();
    assert!(err.contains("bkl"), "{err}");
    // Without a class on every image the page asks only "real or generated?".
    let mut unlabelled = all;
    unlabelled[0].class = None;
    let files = write_quiz(dir.path(), &unlabelled, &QuizPage::new("x"), 0).unwrap();
    let html = std::fs::read_to_string(files.page).unwrap();
    assert!(!html.contains("<select"));
    // The seed decides the order: the same seed, the same page; the items are shuffled.
    let order = |seed: u64| -> Vec<String> {
        let files = write_quiz(dir.path(), &items(), &QuizPage::new("x"), seed).unwrap();
        let answers: Vec<QuizAnswer> =
            serde_json::from_str(&std::fs::read_to_string(files.answers).unwrap()).unwrap();
        answers.into_iter().map(|a| a.source).collect()
    };
    assert_eq!(order(3), order(3));
    let given: Vec<String> = (0..6).map(|i| format!("item {i}")).collect();
    assert!((0..4).any(|seed| order(seed) != given), "never shuffled");
}
