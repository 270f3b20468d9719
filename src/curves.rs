//! The loss-curve picture of a training run (cargo feature `plots`, on by default): the
//! adversarial losses, the reconstruction errors and, when measured, the image quality.

use std::path::Path;

use crate::error::Result;
use crate::trainer::StepLosses;
use crate::training_loop::QualityPoint;
use crate::viz::{self, Panel, Series};

/// Draws the losses of `history` (smoothed) and the `quality` measurements to `path`.
pub(crate) fn save_loss_curve(history: &[StepLosses], quality: &[QualityPoint], path: &Path) -> Result<()> {
    let mut panels = loss_panels(history);
    if !quality.is_empty() {
        panels.push(quality_panel(quality));
    }
    viz::save_curves(&panels, path)
}

/// SWD (and FID when measured) against the step: lower is better.
fn quality_panel(points: &[QualityPoint]) -> Panel {
    let series = |name: &str, f: &dyn Fn(&QualityPoint) -> Option<f64>| Series {
        name: name.to_string(),
        points: points.iter().filter_map(|p| f(p).map(|v| (p.step, v))).collect(),
    };
    let mut all = vec![series("SWD x1e3", &|p| p.swd)];
    if points.iter().any(|p| p.fid.is_some()) {
        all.push(series("FID", &|p| p.fid));
    }
    Panel {
        title: "image quality (lower is better)".into(),
        series: all,
    }
}

/// Two panels: the adversarial game, and the reconstruction errors; each series smoothed by a
/// moving average so trends show through the noise of single batches.
fn loss_panels(history: &[StepLosses]) -> Vec<Panel> {
    let series = |name: &str, f: &dyn Fn(&StepLosses) -> f32| Series {
        name: name.to_string(),
        points: smooth(
            &history
                .iter()
                .map(|l| (l.step as f64, f64::from(f(l))))
                .collect::<Vec<_>>(),
        ),
    };
    vec![
        Panel {
            title: "adversarial losses".into(),
            series: vec![
                series("D_x", &|l| l.discriminator.image),
                series("D_z", &|l| l.discriminator.latent),
                series("G adv x", &|l| l.generator.image_adversarial),
                series("E adv z", &|l| l.generator.latent_adversarial),
            ],
        },
        Panel {
            title: "reconstruction".into(),
            series: vec![
                series("|G(E(x)) - x|", &|l| l.generator.image_reconstruction),
                series("|E(G(z)) - z|^2", &|l| l.generator.latent_reconstruction),
            ],
        },
    ]
}

/// Moving average over a window of about 2 % of the points (at least 1), at most 400 points out.
fn smooth(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let window = (points.len() / 50).max(1);
    let stride = (points.len() / 400).max(1);
    (0..points.len())
        .step_by(stride)
        .map(|i| {
            let lo = i.saturating_sub(window - 1);
            let slice = &points[lo..=i];
            (
                points[i].0,
                slice.iter().map(|p| p.1).sum::<f64>() / slice.len() as f64,
            )
        })
        .collect()
}
