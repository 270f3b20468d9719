//! Training-time controllers: numbers the trainer adjusts between steps from what the step
//! measured, as opposed to the losses themselves ([`crate::objective`]).

use std::cmp::Ordering;

use crate::config::AdaptiveAugment;

/// ADA's controller (Karras et al. 2020): the augmentation probability after a discriminator
/// step on `batch` real images whose Dx logits had mean sign `overfitting`:
/// `clamp(p + sign(overfitting − target) · batch / images_to_full, 0, 1)`. It rises when Dx is
/// surer of the real images than the target, falls when it is less sure, and stays where it is
/// when they are equal (where Rust's `f64::signum` would give 1).
pub fn augment_probability_after(p: f64, overfitting: f64, batch: usize, ada: &AdaptiveAugment) -> f64 {
    let direction = match overfitting.partial_cmp(&ada.target) {
        Some(Ordering::Greater) => 1.0,
        Some(Ordering::Less) => -1.0,
        Some(Ordering::Equal) | None => 0.0,
    };
    (p + direction * batch as f64 / ada.images_to_full).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADA: AdaptiveAugment = AdaptiveAugment {
        target: 0.6,
        images_to_full: 400.0,
    };

    #[test]
    fn p_rises_when_dx_is_too_sure_of_real_images_falls_when_not_and_holds_at_the_target() {
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        close(augment_probability_after(0.5, 0.9, 4, &ADA), 0.51);
        close(augment_probability_after(0.5, 0.1, 4, &ADA), 0.49);
        assert_eq!(augment_probability_after(0.5, 0.6, 4, &ADA), 0.5);
        assert_eq!(augment_probability_after(0.5, f64::NAN, 4, &ADA), 0.5);
    }

    #[test]
    fn p_stays_a_probability() {
        assert_eq!(augment_probability_after(0.999, 1.0, 4, &ADA), 1.0);
        assert_eq!(augment_probability_after(0.001, -1.0, 4, &ADA), 0.0);
    }
}
