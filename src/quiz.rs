//! A practice quiz: one self-contained HTML page of real and generated images, mixed, that
//! asks of each "real or generated?" and, when every image has a class, "which class?"; the
//! answers and the score appear when the reader asks for them. The images are inlined (PNG
//! as data URLs) and the page needs no network and no framework, so it can be mailed or put
//! on any web server. A JSON file beside it records which image was which.
//!
//! A reader who scores near 50 % on "real or generated?" cannot tell the model's images from
//! real ones: the human check of realism that FID cannot give.
//!
//! ```
//! # fn main() -> aegan::Result<()> {
//! use aegan::quiz::{write_quiz, Origin, QuizItem, QuizPage};
//! let pink = image::RgbImage::from_pixel(8, 8, image::Rgb([230, 180, 170]));
//! let items = vec![
//!     QuizItem { image: pink.clone(), origin: Origin::Real, class: None, source: "a.png".into() },
//!     QuizItem { image: pink, origin: Origin::Generated, class: None, source: "latent 0".into() },
//! ];
//! let dir = tempfile::tempdir().unwrap();
//! let files = write_quiz(dir.path(), &items, &QuizPage::new("Practice"), 7)?;
//! assert!(files.page.exists() && files.answers.exists());
//! # Ok(())
//! # }
//! ```

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat, RgbImage};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{AeganError, Result};
use crate::io::write_atomic;

/// Where a quiz image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A real image.
    Real,
    /// An image the model made.
    Generated,
}

impl Origin {
    fn word(self) -> &'static str {
        match self {
            Origin::Real => "real",
            Origin::Generated => "generated",
        }
    }
}

/// One image of the quiz and the truth about it.
#[derive(Debug, Clone)]
pub struct QuizItem {
    /// The image, shown enlarged by [`QuizPage::scale`].
    pub image: RgbImage,
    /// Real or generated.
    pub origin: Origin,
    /// Its class (a real image's diagnosis, the class a generated one was drawn as); the
    /// page asks "which class?" only when every item has one.
    pub class: Option<String>,
    /// Where it came from (a file, or the seed and index of a latent), for the answers file.
    pub source: String,
}

/// How the page looks.
#[derive(Debug, Clone, PartialEq)]
pub struct QuizPage {
    /// The page's heading and title.
    pub title: String,
    /// The classes offered for "which class?" (in this order); empty: the classes the items
    /// carry, sorted.
    pub classes: Vec<String>,
    /// Screen pixels per image pixel (nearest-neighbour, so pixels stay sharp); 0 chooses:
    /// images narrower than 64 pixels are enlarged to at least 192, larger ones shown as they
    /// are.
    pub scale: usize,
}

impl QuizPage {
    /// A page titled `title` offering the items' own classes, small images enlarged.
    pub fn new(title: impl Into<String>) -> Self {
        QuizPage {
            title: title.into(),
            classes: Vec::new(),
            scale: 0,
        }
    }
}

/// The two files a quiz is written as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuizFiles {
    /// The page, `index.html`.
    pub page: PathBuf,
    /// The truth about every question, `answers.json`.
    pub answers: PathBuf,
}

/// One question of `answers.json`, in page order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuizAnswer {
    /// Its number on the page, from 1.
    pub question: usize,
    /// Real or generated.
    pub origin: Origin,
    /// Its class, when the page asks for one.
    pub class: Option<String>,
    /// Where the image came from.
    pub source: String,
}

/// Writes the quiz of `items` into `dir` (created if needed): `index.html` and
/// `answers.json`, the items in an order shuffled by `seed`. Fewer than two items, empty images,
/// items of different sizes, or a class not among `page.classes` are errors.
pub fn write_quiz(dir: &Path, items: &[QuizItem], page: &QuizPage, seed: u64) -> Result<QuizFiles> {
    if items.len() < 2 {
        return Err(AeganError::BadInput {
            what: "quiz images",
            expected: "at least two".into(),
            found: vec![items.len()],
        });
    }
    let (width, height) = items[0].image.dimensions();
    if width == 0 || height == 0 {
        return Err(AeganError::BadInput {
            what: "quiz image size",
            expected: "at least 1×1 pixels".into(),
            found: vec![width as usize, height as usize],
        });
    }
    if let Some(odd) = items.iter().find(|i| i.image.dimensions() != (width, height)) {
        return Err(AeganError::BadInput {
            what: "quiz image size",
            expected: format!("every image {width}×{height}"),
            found: vec![odd.image.width() as usize, odd.image.height() as usize],
        });
    }
    let ask_class = items.iter().all(|i| i.class.is_some());
    let classes = if !ask_class {
        Vec::new()
    } else if page.classes.is_empty() {
        let mut names: Vec<String> = items.iter().filter_map(|i| i.class.clone()).collect();
        names.sort();
        names.dedup();
        names
    } else {
        page.classes.clone()
    };
    if let Some(stray) = items
        .iter()
        .filter_map(|i| i.class.as_ref())
        .find(|c| ask_class && !classes.contains(*c))
    {
        return Err(AeganError::ClassLabels {
            reason: format!("the quiz offers {}, not `{stray}`", classes.join(", ")),
        });
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let scale = match page.scale {
        0 if width < 64 => 192usize.div_ceil(width as usize),
        0 => 1,
        s => s,
    };

    std::fs::create_dir_all(dir).map_err(|e| AeganError::io(dir, e))?;
    let answers: Vec<QuizAnswer> = order
        .iter()
        .enumerate()
        .map(|(n, &i)| QuizAnswer {
            question: n + 1,
            origin: items[i].origin,
            class: items[i].class.clone().filter(|_| ask_class),
            source: items[i].source.clone(),
        })
        .collect();
    let mut figures = String::new();
    for (n, &i) in order.iter().enumerate() {
        figures.push_str(&figure(n, &items[i].image, (width, height), scale, &classes)?);
    }
    let html = page_html(&page.title, &figures, &answers, ask_class);
    let files = QuizFiles {
        page: dir.join("index.html"),
        answers: dir.join("answers.json"),
    };
    write_atomic(&files.page, html.as_bytes())?;
    let json = serde_json::to_string_pretty(&answers).map_err(|e| AeganError::Json {
        path: files.answers.clone(),
        source: e,
    })?;
    write_atomic(&files.answers, json.as_bytes())?;
    Ok(files)
}

/// Question `n`'s figure: the image and its controls.
fn figure(
    n: usize,
    image: &RgbImage,
    (w, h): (u32, u32),
    scale: usize,
    classes: &[String],
) -> Result<String> {
    let mut png = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image.clone())
        .write_to(&mut png, ImageFormat::Png)
        .map_err(|source| AeganError::Image {
            path: PathBuf::from(format!("quiz image {}", n + 1)),
            source,
        })?;
    let number = n + 1;
    let mut html = format!(
        "<figure id=\"q{n}\">\n<img alt=\"image {number}\" width=\"{}\" height=\"{}\" src=\"data:image/png;base64,{}\">\n<figcaption><b>{number}.</b>\n",
        w as usize * scale,
        h as usize * scale,
        base64(png.get_ref())
    );
    for origin in [Origin::Real, Origin::Generated] {
        let word = origin.word();
        html.push_str(&format!(
            "<label><input type=\"radio\" name=\"origin-{n}\" value=\"{word}\"> {word}</label>\n"
        ));
    }
    if !classes.is_empty() {
        html.push_str(&format!(
            "<select id=\"class-{n}\" aria-label=\"class of image {number}\"><option value=\"\">which class?</option>"
        ));
        for class in classes {
            let class = escape(class);
            html.push_str(&format!("<option value=\"{class}\">{class}</option>"));
        }
        html.push_str("</select>\n");
    }
    html.push_str(&format!(
        "<span class=\"answer\" id=\"answer-{n}\"></span>\n</figcaption>\n</figure>\n"
    ));
    Ok(html)
}

/// The whole page: heading, figures, the button, the score, and the script that marks it.
fn page_html(title: &str, figures: &str, answers: &[QuizAnswer], ask_class: bool) -> String {
    // The truth travels in the page so that it can mark itself offline; a reader who opens the
    // source can see it, which a practice quiz can live with.
    let truth: Vec<String> = answers
        .iter()
        .map(|a| {
            let class = a.class.as_deref().map(escape_js).unwrap_or_default();
            format!("{{\"origin\":\"{}\",\"class\":\"{class}\"}}", a.origin.word())
        })
        .collect();
    let title = escape(title);
    let class_question = if ask_class {
        " and which class it shows"
    } else {
        ""
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; background: #fafafa; }}
main {{ display: flex; flex-wrap: wrap; gap: 1em; }}
figure {{ margin: 0; padding: 0.5em; background: white; border: 1px solid #ccc; }}
img {{ image-rendering: pixelated; display: block; }}
figcaption {{ margin-top: 0.4em; }}
figcaption b {{ display: inline-block; min-width: 2.2em; }}
.right {{ color: #116611; font-weight: bold; }}
.wrong {{ color: #aa1111; font-weight: bold; }}
#score {{ font-size: 1.3em; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>Some of these images are real, the others were made by a model. Say of each whether it is real or generated{class_question}, then press the button at the end.</p>
<main>
{figures}</main>
<p><button id="mark" type="button">Show the answers and my score</button></p>
<p id="score"></p>
<script>
const truth = [{truth}];
document.getElementById("mark").addEventListener("click", function () {{
  let originRight = 0, classRight = 0;
  truth.forEach(function (t, i) {{
    const picked = document.querySelector('input[name="origin-' + i + '"]:checked');
    const originOk = picked !== null && picked.value === t.origin;
    if (originOk) originRight += 1;
    const select = document.getElementById("class-" + i);
    const classOk = select !== null && select.value === t.class;
    if (classOk) classRight += 1;
    const answer = document.getElementById("answer-" + i);
    answer.textContent = " " + t.origin + (t.class ? ", " + t.class : "");
    answer.className = "answer " + (originOk && (select === null || classOk) ? "right" : "wrong");
  }});
  const n = truth.length;
  const score = document.getElementById("score");
  score.dataset.questions = n;
  score.dataset.originRight = originRight;
  let text = "Real or generated: " + originRight + " of " + n + " right (" + Math.round(100 * originRight / n) + " %).";
  if (document.getElementById("class-0") !== null) {{
    score.dataset.classRight = classRight;
    text += " Which class: " + classRight + " of " + n + " right (" + Math.round(100 * classRight / n) + " %).";
  }}
  score.textContent = text;
}});
</script>
</body>
</html>
"#,
        truth = truth.join(",")
    )
}

/// `text` safe inside HTML text and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `text` safe inside a double-quoted JavaScript string in a script element.
fn escape_js(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("\\u003c"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648), for the inlined images.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        // RFC 4648, section 10.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
    }

    #[test]
    fn text_is_escaped_for_html_and_javascript() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(escape_js("x\"</script>\\"), "x\\\"\\u003c/script>\\\\");
    }
}
