//! Label-preserving augmentation: flips and quarter turns, drawn per image from a seeded stream.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Which symmetries to draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Augment {
    /// Images as they are.
    None,
    /// Left-right mirror with probability ½ (sprites: gravity and faces stay upright).
    HorizontalFlip,
    /// Any of the 8 flips and quarter turns of the square, uniformly (dermoscopy has no
    /// preferred orientation).
    Dihedral,
}

impl Augment {
    /// Transforms one channel-first `(3, size, size)` image in place.
    pub fn apply<T: Copy + Default, R: Rng + ?Sized>(self, pixels: &mut [T], size: usize, rng: &mut R) {
        let (turns, mirror) = match self {
            Augment::None => return,
            Augment::HorizontalFlip => (0, rng.random_bool(0.5)),
            Augment::Dihedral => (rng.random_range(0..4u8), rng.random_bool(0.5)),
        };
        if turns == 0 && !mirror {
            return;
        }
        let plane = size * size;
        let mut out = vec![T::default(); pixels.len()];
        for y in 0..size {
            for x in 0..size {
                let (mut sx, mut sy) = (if mirror { size - 1 - x } else { x }, y);
                for _ in 0..turns {
                    (sx, sy) = (sy, size - 1 - sx);
                }
                for c in 0..pixels.len() / plane {
                    out[c * plane + y * size + x] = pixels[c * plane + sy * size + sx];
                }
            }
        }
        pixels.copy_from_slice(&out);
    }
}
