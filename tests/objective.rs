//! The loss and layer pieces that candle gets wrong are right here.

use aegan::candle_core::{Device, Tensor, Var};
use aegan::objective::bce_with_logits;

#[test]
fn bce_with_logits_is_finite_and_correct_for_huge_logits() {
    let logits = Tensor::new(&[1000f32, -1000.0], &Device::Cpu).unwrap();
    // Target 1: loss of +1000 is 0, loss of -1000 is 1000; mean 500.
    let loss = bce_with_logits(&logits, 1.0).unwrap().to_scalar::<f32>().unwrap();
    assert!((loss - 500.0).abs() < 1e-3, "{loss}");
    let loss = bce_with_logits(&logits, 0.0).unwrap().to_scalar::<f32>().unwrap();
    assert!((loss - 500.0).abs() < 1e-3, "{loss}");
}

#[test]
fn bce_with_logits_matches_the_textbook_formula() {
    let values = [-3.0f32, -0.5, 0.0, 0.7, 2.5];
    let logits = Tensor::new(&values, &Device::Cpu).unwrap();
    for target in [0.0f64, 0.05, 0.95, 1.0] {
        let got = bce_with_logits(&logits, target)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64;
        let want = values
            .iter()
            .map(|&l| {
                let p = 1.0 / (1.0 + (-(l as f64)).exp());
                -target * p.ln() - (1.0 - target) * (1.0 - p).ln()
            })
            .sum::<f64>()
            / values.len() as f64;
        assert!((got - want).abs() < 1e-5, "target {target}: {got} vs {want}");
    }
}

#[test]
fn bce_gradient_is_sigmoid_minus_target() {
    let logits = Var::new(&[-2f32, 0.0, 3.0], &Device::Cpu).unwrap();
    let grads = bce_with_logits(logits.as_tensor(), 0.95)
        .unwrap()
        .backward()
        .unwrap();
    let g = grads.get(logits.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    for (gi, l) in g.iter().zip([-2f32, 0.0, 3.0]) {
        let want = (1.0 / (1.0 + (-l).exp()) - 0.95) / 3.0;
        assert!((gi - want).abs() < 1e-6, "{gi} vs {want}");
    }
}
