//! Does the model give away who was in its training set? White-box membership inference, as
//! LOGAN (Hayes et al. 2019) and GAN-Leaks (Chen et al. 2020) attack GANs: an attacker who has
//! the model scores an image, and guesses "trained on" when the score is high.
//!
//! Two scores: Dx's logit (a discriminator that overfits calls its training images real more
//! confidently than new ones), and the reconstruction error through x → E → G, negated (an
//! autoencoder that memorises reconstructs its training images better). Each attack is
//! summed up by the ROC AUC of telling training images from held-out images by the score:
//! 0.5 means the score says nothing about membership; 1 means it gives every member away.

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use super::image_dims;
use crate::error::Result;
use crate::nets::Networks;

/// Images scored at once.
const BATCH: usize = 64;

/// The two attacks' AUCs over the training and held-out images given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MembershipInference {
    /// Training images scored (members).
    pub members: usize,
    /// Held-out images scored (non-members).
    pub non_members: usize,
    /// ROC AUC of Dx's logit (0.5: no leak).
    pub discriminator_auc: f64,
    /// ROC AUC of the negated reconstruction error |G(E(x)) − x| (0.5: no leak).
    pub reconstruction_auc: f64,
}

/// The ROC AUC of a score that should be higher for `members` than for `non_members`: the
/// probability that a random member outscores a random non-member, ties counting half (the
/// Mann–Whitney U statistic over the product of the counts). `None` when either side is empty
/// or a score is not finite.
pub fn roc_auc(members: &[f64], non_members: &[f64]) -> Option<f64> {
    if members.is_empty() || non_members.is_empty() {
        return None;
    }
    if members.iter().chain(non_members).any(|s| !s.is_finite()) {
        return None;
    }
    // Ranks over both sets together (ties share their mean rank), then U from the members'
    // rank sum: O(n log n) rather than comparing every pair.
    let mut all: Vec<(f64, bool)> = members
        .iter()
        .map(|&s| (s, true))
        .chain(non_members.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut member_rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        // Ranks i + 1 ..= j share their mean.
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        member_rank_sum += mean_rank * all[i..j].iter().filter(|e| e.1).count() as f64;
        i = j;
    }
    let (m, n) = (members.len() as f64, non_members.len() as f64);
    Some((member_rank_sum - m * (m + 1.0) / 2.0) / (m * n))
}

/// Dx's logit for each image `(N, 3, H, W)` in [−1, 1], in evaluation mode; a conditional Dx
/// reads each image's class from `labels`.
pub fn discriminator_scores(
    networks: &Networks,
    images: &Tensor,
    labels: Option<&[usize]>,
) -> Result<Vec<f64>> {
    per_batch(networks, images, labels, |x, y| {
        let y = networks.labels_for(y, x.dim(0)?)?;
        Ok(networks
            .image_discriminator
            .forward_labelled_t(x, y.as_ref(), false)?
            .flatten_all()?)
    })
}

/// Minus the mean |G(E(x)) − x| of each image `(N, 3, H, W)` in [−1, 1], the networks in
/// evaluation mode (higher: reconstructed better); a conditional G reconstructs G(E(x), y).
pub fn reconstruction_scores(
    networks: &Networks,
    images: &Tensor,
    labels: Option<&[usize]>,
) -> Result<Vec<f64>> {
    per_batch(networks, images, labels, |x, y| {
        let error = (crate::model::reconstruct(networks, x, y)? - x)?.abs()?;
        Ok(error.flatten_from(1)?.mean(1)?.neg()?)
    })
}

/// Both attacks, with `members` (training images) and `non_members` (held-out images), each
/// with its labels for a conditional model.
pub fn membership_inference(
    networks: &Networks,
    members: &Tensor,
    member_labels: Option<&[usize]>,
    non_members: &Tensor,
    non_member_labels: Option<&[usize]>,
) -> Result<MembershipInference> {
    // A non-finite score (a diverged network) has no ranking: NaN says so in the report.
    let auc = |inside: Vec<f64>, outside: Vec<f64>| roc_auc(&inside, &outside).unwrap_or(f64::NAN);
    Ok(MembershipInference {
        members: members.dim(0)?,
        non_members: non_members.dim(0)?,
        discriminator_auc: auc(
            discriminator_scores(networks, members, member_labels)?,
            discriminator_scores(networks, non_members, non_member_labels)?,
        ),
        reconstruction_auc: auc(
            reconstruction_scores(networks, members, member_labels)?,
            reconstruction_scores(networks, non_members, non_member_labels)?,
        ),
    })
}

/// `score` over `images` in batches on the networks' device, one number per image.
fn per_batch(
    networks: &Networks,
    images: &Tensor,
    labels: Option<&[usize]>,
    score: impl Fn(&Tensor, Option<&[usize]>) -> Result<Tensor>,
) -> Result<Vec<f64>> {
    let (n, ..) = image_dims("images", images)?;
    networks.labels_for(labels, n)?;
    let device = networks.device();
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(BATCH) {
        let len = BATCH.min(n - start);
        let x = images
            .narrow(0, start, len)?
            .to_dtype(DType::F32)?
            .to_device(device)?;
        let y = labels.map(|l| &l[start..start + len]);
        let values = score(&x, y)?.to_device(&Device::Cpu)?.to_dtype(DType::F64)?;
        out.extend(values.to_vec1::<f64>()?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_is_one_for_a_score_that_separates_half_for_ties_and_zero_reversed() {
        assert_eq!(roc_auc(&[3.0, 4.0], &[1.0, 2.0]), Some(1.0));
        assert_eq!(roc_auc(&[1.0, 2.0], &[3.0, 4.0]), Some(0.0));
        assert_eq!(roc_auc(&[1.0, 1.0], &[1.0]), Some(0.5));
        // Pairs: (2,1) win, (2,3) lose, (4,1) win, (4,3) win: 3 of 4.
        assert_eq!(roc_auc(&[2.0, 4.0], &[1.0, 3.0]), Some(0.75));
        assert_eq!(roc_auc(&[], &[1.0]), None);
        assert_eq!(roc_auc(&[f64::NAN], &[1.0]), None);
    }
}
