//! Categories of image files from where they lie: the folders below the data folder and the
//! `__`-separated parts of the file name (`item/potion/ruby.png` and `item__potion__ruby.png`
//! both lie in `item/potion`), cut to a depth, with small categories joined to their parent.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{AeganError, Result};

/// How deep into a file's location its category goes (see [`crate::data::LoadedImages::to_labelled_set`]).
///
/// A file's location is the folders below the data folder that hold it, followed by the parts
/// of its file name before the last `__` (`mon/undead/mummy.png`, `mon__undead__mummy.png` and
/// `mon/undead__mummy.png` all lie in `mon/undead`). Its category is the first
/// [`Categories::depth`] parts of that location, joined by `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Categories {
    /// How many parts of the location name the category (at least 1): 1 gives `mon`, 2 gives
    /// `mon/undead`.
    pub depth: usize,
    /// A category of fewer images than this joins its parent (one part shorter), deepest first,
    /// so rare kinds fall back to the broader class instead of being classes of one or two
    /// images. A one-part category stays whatever its size.
    pub min_images: usize,
}

impl Categories {
    /// The first folder (or name part) only: `mon`, `item`.
    pub const TOP: Categories = Categories {
        depth: 1,
        min_images: 1,
    };

    /// `depth` parts, categories of fewer than `min_images` images joined to their parent.
    /// An error names `--category-depth` when `depth` is 0.
    pub fn new(depth: usize, min_images: usize) -> Result<Self> {
        if depth == 0 {
            return Err(AeganError::option(
                "--category-depth",
                "0",
                "a category needs at least one part of the file's location (1: its first folder)",
            ));
        }
        Ok(Categories { depth, min_images })
    }

    /// The category of each location (see [`location_of`]), in the same order.
    pub(crate) fn assign(&self, locations: &[Vec<String>]) -> Vec<String> {
        let mut cut: Vec<&[String]> = locations
            .iter()
            .map(|parts| &parts[..parts.len().min(self.depth)])
            .collect();
        // Deepest level first: a category that joins its parent adds to the parent's count
        // before the parent's own size is judged.
        for level in (2..=self.depth).rev() {
            let mut counts: HashMap<&[String], usize> = HashMap::new();
            for parts in cut.iter().filter(|p| p.len() == level) {
                *counts.entry(parts).or_default() += 1;
            }
            for parts in cut.iter_mut().filter(|p| p.len() == level) {
                if counts[*parts] < self.min_images {
                    *parts = &parts[..level - 1];
                }
            }
        }
        cut.iter().map(|parts| parts.join("/")).collect()
    }
}

impl Default for Categories {
    fn default() -> Self {
        Categories::TOP
    }
}

/// The location of `path` below `root`: its folders, then the parts of its file name before
/// the last `__`. An error names the file when the location is empty.
pub(crate) fn location_of(root: &Path, path: &Path) -> Result<Vec<String>> {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let Some(file) = parts.pop() else {
        return Err(no_category(path, "not a file below the folder"));
    };
    let mut name_parts: Vec<&str> = file.split("__").collect();
    name_parts.pop();
    parts.extend(name_parts.into_iter().map(str::to_string));
    if parts.is_empty() || parts.iter().any(String::is_empty) {
        return Err(no_category(
            path,
            "no category: put it in a sub-folder named after its class, or name it <category>__<name>",
        ));
    }
    Ok(parts)
}

/// The folders below `root` that every one of `paths` lies in, as long as each file's
/// location (see [`location_of`]) keeps at least one part after them: a folder that wraps the
/// whole set (the `32/` of `sprites/32/mon__orc.png`) tells no file from another, so it names
/// no category. Empty when the files lie in different folders, or when a file lies in the
/// shared folders with no category of its own.
pub(crate) fn wrapping_folders(
    root: &Path,
    paths: &[std::path::PathBuf],
    locations: &[Vec<String>],
) -> Vec<String> {
    let folders = |path: &Path| -> Vec<String> {
        let relative = path.strip_prefix(root).unwrap_or(path);
        let mut parts: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        parts.pop();
        parts
    };
    let Some(first) = paths.first() else {
        return Vec::new();
    };
    let mut shared = folders(first);
    for path in &paths[1..] {
        let own = folders(path);
        let common = shared.iter().zip(&own).take_while(|(a, b)| a == b).count();
        shared.truncate(common);
    }
    let keep_one = locations
        .iter()
        .map(Vec::len)
        .min()
        .unwrap_or(0)
        .saturating_sub(1);
    shared.truncate(keep_one);
    shared
}

/// The class of a location among `classes` (names as [`Categories::assign`] makes them): the
/// longest class whose parts begin the location, so a file of a kind that joined its parent
/// gets the parent.
pub(crate) fn longest_class(location: &[String], classes: &[String]) -> Option<usize> {
    classes
        .iter()
        .enumerate()
        .filter(|(_, class)| {
            let class_parts: Vec<&str> = class.split('/').collect();
            class_parts.len() <= location.len() && class_parts.iter().zip(location).all(|(a, b)| *a == b)
        })
        .max_by_key(|(_, class)| class.split('/').count())
        .map(|(label, _)| label)
}

/// An error naming the file whose location gives it no class, and why.
pub(crate) fn no_category(path: &Path, reason: impl Into<String>) -> AeganError {
    AeganError::io(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidInput, reason.into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(s: &str) -> Vec<String> {
        s.split('/').map(str::to_string).collect()
    }

    #[test]
    fn locations_join_folders_and_name_parts() {
        let root = Path::new("/d");
        assert_eq!(location_of(root, Path::new("/d/mon/orc.png")).unwrap(), ["mon"]);
        assert_eq!(
            location_of(root, Path::new("/d/item__potion__ruby.png")).unwrap(),
            ["item", "potion"]
        );
        assert_eq!(
            location_of(root, Path::new("/d/mon/undead__mummy.png")).unwrap(),
            ["mon", "undead"]
        );
        assert!(location_of(root, Path::new("/d/stray.png")).is_err());
        assert!(location_of(root, Path::new("/d/__stray.png")).is_err());
    }

    #[test]
    fn small_categories_join_their_parent_deepest_first() {
        let locations = [
            loc("mon/undead/skeleton"),
            loc("mon/undead/skeleton"),
            loc("mon/undead/zombie"),
            loc("mon/aberr"),
            loc("mon"),
            loc("item/potion"),
            loc("item/potion"),
        ];
        let categories = Categories::new(3, 2).unwrap().assign(&locations);
        // The zombie (one image) joins mon/undead, which then holds one image and joins mon;
        // the skeletons (two) stay.
        assert_eq!(
            categories,
            [
                "mon/undead/skeleton",
                "mon/undead/skeleton",
                "mon",
                "mon",
                "mon",
                "item/potion",
                "item/potion"
            ]
        );
        assert_eq!(
            Categories::TOP.assign(&locations),
            ["mon", "mon", "mon", "mon", "mon", "item", "item"]
        );
        assert!(Categories::new(0, 1).is_err());
    }

    #[test]
    fn a_location_gets_its_longest_matching_class() {
        let classes = ["item".to_string(), "mon".into(), "mon/undead".into()];
        assert_eq!(longest_class(&loc("mon/undead/mummy"), &classes), Some(2));
        assert_eq!(longest_class(&loc("mon/aberr"), &classes), Some(1));
        assert_eq!(longest_class(&loc("monster"), &classes), None);
        assert_eq!(longest_class(&loc("item"), &classes), Some(0));
    }
}
