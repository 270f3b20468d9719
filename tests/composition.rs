//! The AEGAN objective is composed as `objective.rs` writes it down, checked against values
//! worked out here from the networks' own outputs (every weight and target set to a distinct
//! value, the ½ factors, what is detached), and Adam against a reference computed by hand.

mod common;

use aegan::candle_core::{Device, Tensor, Var};
use aegan::config::LossWeights;
use aegan::controllers::AdaptiveState;
use aegan::objective::{AeganObjective, DiscriminatorLosses, Evaluated, GeneratorLosses};
use aegan::optim::Adam;
use aegan::rng::TrainRng;
use aegan::{data::synthetic, AeganConfig, NetworkKind, Networks};

/// Every weight and target distinct, so that a swapped or dropped factor changes the value.
fn config() -> AeganConfig {
    let mut c = common::tiny(16);
    c.loss_weights = LossWeights {
        image_adversarial: 0.3,
        latent_adversarial: 0.7,
        image_reconstruction: 1.3,
        latent_reconstruction: 0.4,
        reconstruction_adversarial: None,
        mode_seeking: 0.0,
    };
    c.real_target = 0.9;
    c.fake_target = 0.2;
    c.output_zeroing = 0.0;
    c
}

fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(aegan::candle_core::DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn sigmoid(l: f64) -> f64 {
    1.0 / (1.0 + (-l).exp())
}

/// Mean binary cross-entropy from its textbook definition.
fn bce(logits: &[f64], target: f64) -> f64 {
    logits
        .iter()
        .map(|&l| -target * sigmoid(l).ln() - (1.0 - target) * (1.0 - sigmoid(l)).ln())
        .sum::<f64>()
        / logits.len() as f64
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The four fakes and every logit the objective uses, each network run on its own input in
/// training mode (as the objective runs them; a batch's statistics depend only on the batch).
struct Outputs {
    x: Vec<f64>,
    x_hat: Vec<f64>,
    z: Vec<f64>,
    x_tilde: Vec<f64>,
    z_tilde: Vec<f64>,
    dx_real: Vec<f64>,
    dx_generated: Vec<f64>,
    dx_reconstructed: Vec<f64>,
    dz_prior: Vec<f64>,
    dz_encoded: Vec<f64>,
    dz_reconstructed: Vec<f64>,
}

fn outputs(nets: &Networks, x: &Tensor, z: &Tensor) -> Outputs {
    let x_hat = nets.generator.forward_t(z, true).unwrap();
    let z_hat = nets.encoder.forward_t(x, true).unwrap();
    let x_tilde = nets.generator.forward_t(&z_hat, true).unwrap();
    let z_tilde = nets.encoder.forward_t(&x_hat, true).unwrap();
    let dx = |t: &Tensor| values(&nets.image_discriminator.forward_t(t, true).unwrap());
    let dz = |t: &Tensor| values(&nets.latent_discriminator.forward_t(t, true).unwrap());
    Outputs {
        x: values(x),
        x_hat: values(&x_hat),
        z: values(z),
        x_tilde: values(&x_tilde),
        z_tilde: values(&z_tilde),
        dx_real: dx(x),
        dx_generated: dx(&x_hat),
        dx_reconstructed: dx(&x_tilde),
        dz_prior: dz(z),
        dz_encoded: dz(&z_hat),
        dz_reconstructed: dz(&z_tilde),
    }
}

struct Setup {
    config: AeganConfig,
    nets: Networks,
    x: Tensor,
    z: Tensor,
}

impl Setup {
    /// The objective's discriminator loss on this setup's networks, batch and latents.
    fn discriminator_loss(&self) -> Evaluated<DiscriminatorLosses> {
        AeganObjective::new(&self.config)
            .discriminator_loss(
                &self.nets,
                &self.x,
                None,
                &self.z,
                &AdaptiveState::new(&self.config),
                &mut TrainRng::new(1),
            )
            .unwrap()
    }

    /// The objective's generator/encoder loss on this setup's networks, batch and latents.
    fn generator_loss(&self) -> Evaluated<GeneratorLosses> {
        AeganObjective::new(&self.config)
            .generator_loss(
                &self.nets,
                &self.x,
                None,
                &self.z,
                &AdaptiveState::new(&self.config),
                &mut TrainRng::new(1),
            )
            .unwrap()
    }
}

fn setup() -> Setup {
    let config = config();
    let device = Device::Cpu;
    let nets = Networks::new(&config, &device).unwrap();
    let x = synthetic::lesions(6, 16, 3).to_tensor(&device).unwrap();
    let z = TrainRng::new(5).normal((6, config.latent_dim), &device).unwrap();
    Setup { config, nets, x, z }
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-5 * want.abs().max(1.0),
        "{what}: objective gives {got}, by hand {want}"
    );
}

#[test]
fn discriminator_losses_are_the_written_formula_with_targets_and_halves() {
    let s = setup();
    let o = outputs(&s.nets, &s.x, &s.z);
    let (tr, tf) = (s.config.real_target, s.config.fake_target);
    let image = bce(&o.dx_real, tr) + 0.5 * (bce(&o.dx_generated, tf) + bce(&o.dx_reconstructed, tf));
    let latent = bce(&o.dz_prior, tr) + 0.5 * (bce(&o.dz_encoded, tf) + bce(&o.dz_reconstructed, tf));

    let d = s.discriminator_loss();
    close(f64::from(d.values().unwrap().image), image, "L_Dx");
    close(f64::from(d.values().unwrap().latent), latent, "L_Dz");
    close(
        d.loss.to_scalar::<f32>().unwrap().into(),
        image + latent,
        "L_Dx + L_Dz",
    );
}

#[test]
fn generator_loss_is_the_weighted_sum_of_the_four_terms_by_hand() {
    let s = setup();
    let o = outputs(&s.nets, &s.x, &s.z);
    let image_adversarial = 0.5 * (bce(&o.dx_generated, 1.0) + bce(&o.dx_reconstructed, 1.0));
    let latent_adversarial = 0.5 * (bce(&o.dz_encoded, 1.0) + bce(&o.dz_reconstructed, 1.0));
    let abs: Vec<f64> = o.x_tilde.iter().zip(&o.x).map(|(a, b)| (a - b).abs()).collect();
    let sq: Vec<f64> = o.z_tilde.iter().zip(&o.z).map(|(a, b)| (a - b).powi(2)).collect();
    let (image_reconstruction, latent_reconstruction) = (mean(&abs), mean(&sq));
    let w = s.config.loss_weights;
    let total = w.image_adversarial * image_adversarial
        + w.latent_adversarial * latent_adversarial
        + w.image_reconstruction * image_reconstruction
        + w.latent_reconstruction * latent_reconstruction;

    let g = s.generator_loss();
    close(
        g.values().unwrap().image_adversarial.into(),
        image_adversarial,
        "image adversarial",
    );
    close(
        g.values().unwrap().latent_adversarial.into(),
        latent_adversarial,
        "latent adversarial",
    );
    close(
        g.values().unwrap().image_reconstruction.into(),
        image_reconstruction,
        "image reconstruction",
    );
    close(
        g.values().unwrap().latent_reconstruction.into(),
        latent_reconstruction,
        "latent reconstruction",
    );
    close(g.values().unwrap().total.into(), total, "L_GE");
    close(g.loss.to_scalar::<f32>().unwrap().into(), total, "L_GE tensor");
}

#[test]
fn the_reconstructions_adversarial_weight_set_apart_weights_only_their_half() {
    let mut s = setup();
    s.config.loss_weights.reconstruction_adversarial = Some(0.05);
    let o = outputs(&s.nets, &s.x, &s.z);
    let latent_adversarial = 0.5 * (bce(&o.dz_encoded, 1.0) + bce(&o.dz_reconstructed, 1.0));
    let abs: Vec<f64> = o.x_tilde.iter().zip(&o.x).map(|(a, b)| (a - b).abs()).collect();
    let sq: Vec<f64> = o.z_tilde.iter().zip(&o.z).map(|(a, b)| (a - b).powi(2)).collect();
    let w = s.config.loss_weights;
    let total = 0.5
        * (w.image_adversarial * bce(&o.dx_generated, 1.0) + 0.05 * bce(&o.dx_reconstructed, 1.0))
        + w.latent_adversarial * latent_adversarial
        + w.image_reconstruction * mean(&abs)
        + w.latent_reconstruction * mean(&sq);

    let g = s.generator_loss();
    // The reported term stays the unweighted half-sum of both sides.
    let reported = 0.5 * (bce(&o.dx_generated, 1.0) + bce(&o.dx_reconstructed, 1.0));
    close(
        g.values().unwrap().image_adversarial.into(),
        reported,
        "image adversarial",
    );
    close(g.values().unwrap().total.into(), total, "L_GE");
    close(g.loss.to_scalar::<f32>().unwrap().into(), total, "L_GE tensor");
}

#[test]
fn mode_seeking_adds_its_weight_over_the_pairs_distance_ratio() {
    let mut s = setup();
    s.config.loss_weights.mode_seeking = 0.8;
    let o = outputs(&s.nets, &s.x, &s.z);
    // Six images: pairs (0, 3), (1, 4), (2, 5); d the mean absolute difference of each pair,
    // of the 16×16 images averaged over 2×2 blocks to 8×8.
    let d = |v: &[f64], i: usize| {
        let n = v.len() / 6;
        mean(
            &(0..n)
                .map(|k| (v[i * n + k] - v[(i + 3) * n + k]).abs())
                .collect::<Vec<_>>(),
        )
    };
    let coarse: Vec<f64> = (0..o.x_hat.len() / 4)
        .map(|cell| {
            let (plane, row, col) = (cell / 64, cell / 8 % 8, cell % 8);
            let at = |r: usize, c: usize| o.x_hat[plane * 256 + r * 16 + c];
            let (r, c) = (2 * row, 2 * col);
            (at(r, c) + at(r, c + 1) + at(r + 1, c) + at(r + 1, c + 1)) / 4.0
        })
        .collect();
    let eps = aegan::objective::MODE_SEEKING_EPSILON;
    let ratio = mean(
        &(0..3)
            .map(|i| d(&coarse, i) / (d(&o.z, i) + eps))
            .collect::<Vec<_>>(),
    );
    let term = 1.0 / (ratio + eps);
    let abs: Vec<f64> = o.x_tilde.iter().zip(&o.x).map(|(a, b)| (a - b).abs()).collect();
    let sq: Vec<f64> = o.z_tilde.iter().zip(&o.z).map(|(a, b)| (a - b).powi(2)).collect();
    let w = s.config.loss_weights;
    let total = w.image_adversarial * 0.5 * (bce(&o.dx_generated, 1.0) + bce(&o.dx_reconstructed, 1.0))
        + w.latent_adversarial * 0.5 * (bce(&o.dz_encoded, 1.0) + bce(&o.dz_reconstructed, 1.0))
        + w.image_reconstruction * mean(&abs)
        + w.latent_reconstruction * mean(&sq)
        + 0.8 * term;

    let g = s.generator_loss();
    close(g.values().unwrap().mode_seeking.into(), term, "mode-seeking term");
    close(g.values().unwrap().total.into(), total, "L_GE");
    // Off, the term is reported as 0 and the loss is the four terms'.
    s.config.loss_weights.mode_seeking = 0.0;
    let off = s.generator_loss().values().unwrap();
    assert_eq!(off.mode_seeking, 0.0);
    close(off.total.into(), total - 0.8 * term, "L_GE without the term");
}

/// The trainable parameter of `kind` whose name ends with `suffix` (exactly one).
fn parameter(nets: &Networks, kind: NetworkKind, suffix: &str) -> Var {
    let found: Vec<Var> = nets
        .store(kind)
        .trainable()
        .into_iter()
        .filter(|(name, _)| name.ends_with(suffix))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(found.len(), 1, "{kind:?} parameters ending in {suffix}");
    found[0].clone()
}

#[test]
fn discriminator_gradient_at_the_output_bias_is_sigmoid_minus_target_with_halves() {
    // d BCE(l, t)/dl = σ(l) − t per sample, over the batch mean; the output bias adds to every
    // logit, so its gradient is the sum of those means with the objective's weights.
    let s = setup();
    let o = outputs(&s.nets, &s.x, &s.z);
    let (tr, tf) = (s.config.real_target, s.config.fake_target);
    let pull = |logits: &[f64], t: f64| mean(&logits.iter().map(|&l| sigmoid(l) - t).collect::<Vec<_>>());
    let dx_bias = pull(&o.dx_real, tr) + 0.5 * (pull(&o.dx_generated, tf) + pull(&o.dx_reconstructed, tf));
    let dz_bias = pull(&o.dz_prior, tr) + 0.5 * (pull(&o.dz_encoded, tf) + pull(&o.dz_reconstructed, tf));

    let d = s.discriminator_loss();
    let grads = d.loss.backward().unwrap();
    let grad_of = |v: &Var| values(grads.get(v.as_tensor()).expect("a gradient"))[0];
    let dx_out = parameter(&s.nets, NetworkKind::ImageDiscriminator, "out.bias");
    let dz_out = parameter(&s.nets, NetworkKind::LatentDiscriminator, "out.bias");
    close(grad_of(&dx_out), dx_bias, "∂L/∂(Dx output bias)");
    close(grad_of(&dz_out), dz_bias, "∂L/∂(Dz output bias)");
}

#[test]
fn the_discriminator_loss_reaches_only_the_discriminators() {
    let s = setup();
    let d = s.discriminator_loss();
    let grads = d.loss.backward().unwrap();
    for kind in [NetworkKind::Generator, NetworkKind::Encoder] {
        for (name, v) in s.nets.store(kind).trainable() {
            assert!(
                grads.get(v.as_tensor()).is_none(),
                "{kind:?} {name} has a gradient: the fakes are not detached"
            );
        }
    }
    for kind in [NetworkKind::ImageDiscriminator, NetworkKind::LatentDiscriminator] {
        let reached = s
            .nets
            .store(kind)
            .trainable()
            .iter()
            .filter(|(_, v)| grads.get(v.as_tensor()).is_some())
            .count();
        assert!(reached > 0, "{kind:?} gets no gradient");
    }
}

/// Whether any trainable tensor of `kind` has a non-zero gradient of `loss`.
fn reaches(nets: &Networks, kind: NetworkKind, loss: &Tensor) -> bool {
    let grads = loss.backward().unwrap();
    nets.store(kind).trainable().iter().any(|(_, v)| {
        grads
            .get(v.as_tensor())
            .is_some_and(|g| values(g).iter().any(|x| *x != 0.0))
    })
}

#[test]
fn each_reconstruction_term_reaches_both_generator_and_encoder() {
    // x̃ = G(E(x)) and z̃ = E(G(z)) are not detached inside: each cycle trains both networks.
    for (name, weights) in [
        ("image reconstruction", (0.0, 0.0, 1.0, 0.0)),
        ("latent reconstruction", (0.0, 0.0, 0.0, 1.0)),
    ] {
        let mut s = setup();
        s.config.loss_weights = LossWeights {
            image_adversarial: weights.0,
            latent_adversarial: weights.1,
            image_reconstruction: weights.2,
            latent_reconstruction: weights.3,
            reconstruction_adversarial: None,
            mode_seeking: 0.0,
        };
        let g = s.generator_loss();
        assert!(
            reaches(&s.nets, NetworkKind::Generator, &g.loss),
            "{name} does not reach G"
        );
        assert!(
            reaches(&s.nets, NetworkKind::Encoder, &g.loss),
            "{name} does not reach E"
        );
        assert!(
            !reaches(&s.nets, NetworkKind::ImageDiscriminator, &g.loss),
            "{name} reaches Dx"
        );
    }
}

#[test]
fn adam_matches_a_reference_worked_out_by_hand() {
    // Three steps of known gradients g_t (the loss Σ c_t·w has gradient c_t), against Adam's
    // definition in f64: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², w ← w − lr·m̂/(√v̂ + ε) with
    // m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
    let (lr, b1, b2, eps) = (0.01, 0.5, 0.999, 1e-8);
    let start = [0.3f64, -1.2, 2.0];
    let gradients = [[0.5f64, -2.0, 0.0], [1.5, 0.25, -3.0], [-0.75, 1.0, 0.1]];
    let w = Var::new(&start.map(|v| v as f32), &Device::Cpu).unwrap();
    let mut adam = Adam::new(vec![("w".into(), w.clone())], lr, (b1, b2), eps).unwrap();
    let (mut want, mut m, mut v) = (start, [0f64; 3], [0f64; 3]);
    for (t, g) in gradients.iter().enumerate() {
        let c = Tensor::new(&g.map(|x| x as f32), &Device::Cpu).unwrap();
        let grads = (w.as_tensor() * &c)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        adam.step(&grads).unwrap();
        let t = (t + 1) as i32;
        for i in 0..3 {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            let (m_hat, v_hat) = (m[i] / (1.0 - b1.powi(t)), v[i] / (1.0 - b2.powi(t)));
            want[i] -= lr * m_hat / (v_hat.sqrt() + eps);
        }
        for (got, want) in values(w.as_tensor()).iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "step {t}: {got} vs {want}");
        }
    }
}

#[test]
fn loss_terms_of_the_wrong_length_are_an_error_not_a_panic() {
    let s = setup();
    let mut d = s.discriminator_loss();
    d.terms = d.terms.narrow(0, 0, 1).unwrap();
    let message = d.values().unwrap_err().to_string();
    assert!(message.contains("d_image, d_latent"), "{message}");
}
