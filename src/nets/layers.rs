//! Building blocks shared by the four networks: padded convolutions, normalisation,
//! leaky ReLU.

use candle_core::{Module, ModuleT, Result, Tensor, Var};
use candle_nn::{Linear, VarBuilder};

use super::spectral::SpectralNorm;
use crate::config::Norm;

/// A 2-D convolution with PyTorch-style 'same' padding for even kernels (one more row and
/// column of zeros on the bottom/right), an optional bias and optional spectral
/// normalisation of the weight.
#[derive(Debug, Clone)]
pub(crate) struct Conv {
    weight: Tensor,
    bias: Option<Tensor>,
    spectral: Option<SpectralNorm>,
    stride: usize,
    pad_before: usize,
    pad_after: usize,
}

impl Conv {
    /// A `kernel`×`kernel` convolution; stride 1 keeps the size, stride 2 halves it.
    pub fn new(
        vb: VarBuilder,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        bias: bool,
    ) -> Result<Self> {
        let weight = vb.get_with_hints(
            (c_out, c_in, kernel, kernel),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        let bias = if bias {
            let bound = 1.0 / ((c_in * kernel * kernel) as f64).sqrt();
            Some(vb.get_with_hints(
                c_out,
                "bias",
                candle_nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )?)
        } else {
            None
        };
        Ok(Self::from_parts(weight, bias, kernel, stride))
    }

    /// A `kernel`×`kernel`, stride-1 convolution without bias whose weight starts at zero: a
    /// correction that leaves the network's initial function unchanged.
    pub fn zero_initialised(vb: VarBuilder, c_in: usize, c_out: usize, kernel: usize) -> Result<Self> {
        let weight = vb.get_with_hints(
            (c_out, c_in, kernel, kernel),
            "weight",
            candle_nn::Init::Const(0.0),
        )?;
        Ok(Self::from_parts(weight, None, kernel, 1))
    }

    /// The convolution of `weight` (and `bias`) with 'same'-style padding for `kernel`.
    fn from_parts(weight: Tensor, bias: Option<Tensor>, kernel: usize, stride: usize) -> Self {
        let total_pad = kernel - 1;
        Conv {
            weight,
            bias,
            spectral: None,
            stride,
            pad_before: total_pad / 2,
            pad_after: total_pad - total_pad / 2,
        }
    }

    /// The same convolution with its weight spectrally normalised, the power-iteration state
    /// stored as `<vb>.spectral_u` (`vb`: the builder this convolution was made with).
    pub fn with_spectral_norm(mut self, vb: &VarBuilder) -> Result<Self> {
        self.spectral = Some(SpectralNorm::new(vb, self.weight.dim(0)?)?);
        Ok(self)
    }

    /// One power-iteration step of the spectral norm's estimate (nothing without one).
    pub fn power_iteration(&self) -> Result<()> {
        match &self.spectral {
            Some(sn) => sn.power_iteration(&self.weight),
            None => Ok(()),
        }
    }

    /// The weight the convolution applies: divided by its spectral norm when it has one.
    fn effective_weight(&self) -> Result<Tensor> {
        match &self.spectral {
            Some(sn) => sn.normalise(&self.weight),
            None => Ok(self.weight.clone()),
        }
    }

    /// The convolution of `x` upsampled ×2 (nearest), fused on the CPU.
    pub fn forward_upsampled(&self, x: &Tensor) -> Result<Tensor> {
        let weight = self.effective_weight()?.to_dtype(x.dtype())?;
        let y = crate::ops::upsample2x_conv2d(x, &weight, self.stride, self.pad_before, self.pad_after)?;
        self.add_bias(y)
    }

    /// `leaky_relu(conv(x) + bias)`, the bias and activation fused on the CPU.
    pub fn forward_leaky(&self, x: &Tensor, slope: f64) -> Result<Tensor> {
        let y = self.convolve(x)?;
        match &self.bias {
            Some(b) => crate::ops::bias_leaky_relu(&y, &b.to_dtype(y.dtype())?, slope),
            None => leaky_relu(&y, slope),
        }
    }

    /// The convolution alone, without the bias.
    fn convolve(&self, x: &Tensor) -> Result<Tensor> {
        let weight = self.effective_weight()?.to_dtype(x.dtype())?;
        crate::ops::conv2d(x, &weight, self.stride, self.pad_before, self.pad_after)
    }

    fn add_bias(&self, y: Tensor) -> Result<Tensor> {
        match &self.bias {
            Some(b) => y.broadcast_add(&b.to_dtype(y.dtype())?.reshape((1, (), 1, 1))?),
            None => Ok(y),
        }
    }

    /// Multiply-accumulates per image for an output of `out_side`².
    pub fn macs(&self, out_side: usize) -> u64 {
        (out_side * out_side * self.weight.elem_count()) as u64
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.add_bias(self.convolve(x)?)
    }
}

/// A 4×4, stride-2 transposed convolution that doubles the resolution.
#[derive(Debug, Clone)]
pub(crate) struct ConvTranspose2x {
    weight: Tensor,
}

impl ConvTranspose2x {
    pub fn new(vb: VarBuilder, c_in: usize, c_out: usize) -> Result<Self> {
        let weight = vb.get_with_hints(
            (c_in, c_out, 4, 4),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        Ok(ConvTranspose2x { weight })
    }

    pub fn macs(&self, in_side: usize) -> u64 {
        (in_side * in_side * self.weight.elem_count()) as u64
    }
}

impl Module for ConvTranspose2x {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        crate::ops::conv_transpose2d(x, &self.weight.to_dtype(x.dtype())?, 2, 1)
    }
}

/// Weight of the newest batch in batch norm's running statistics.
pub(crate) const BN_MOMENTUM: f64 = 0.1;

/// Batch normalisation with running statistics, stored under candle's names (`weight`,
/// `bias`, `running_mean`, `running_var`; momentum 0.1, ε 1e-5, unbiased running variance),
/// always followed by a leaky ReLU so that training mode can use the fused CPU kernel
/// [`crate::ops::batch_norm_leaky_relu`].
#[derive(Debug, Clone)]
pub(crate) struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
}

impl BatchNorm {
    const EPS: f64 = 1e-5;

    fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        use candle_nn::Init;
        // The same names and initial values as candle_nn::batch_norm, so checkpoints agree.
        let running_mean = vb.get_with_hints(channels, "running_mean", Init::Const(0.0))?;
        let running_var = vb.get_with_hints(channels, "running_var", Init::Const(1.0))?;
        Ok(BatchNorm {
            weight: vb.get_with_hints(channels, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(channels, "bias", Init::Const(0.0))?,
            // The stored tensors are variables: these share their storage.
            running_mean: Var::from_tensor(&running_mean)?,
            running_var: Var::from_tensor(&running_var)?,
        })
    }

    /// `leaky_relu(batch_norm(x))`: batch statistics (and a running-average update) in
    /// training mode, running statistics otherwise.
    fn forward_leaky(&self, x: &Tensor, train: bool, slope: f64) -> Result<Tensor> {
        let (n, _, h, w) = x.dims4()?;
        // In mixed precision the statistics and the normalisation are computed in f32 (a
        // variance summed in bf16 loses most of its digits); the result goes back to bf16.
        let compute = x.dtype();
        if train {
            let (y, mean, var) = crate::ops::batch_norm_leaky_relu(
                &x.to_dtype(candle_core::DType::F32)?,
                &self.weight,
                &self.bias,
                Self::EPS,
                slope,
            )?;
            self.update_running_statistics(mean, var, n * h * w)?;
            return y.to_dtype(compute);
        }
        let scale = (&self.weight / (self.running_var.as_tensor() + Self::EPS)?.sqrt()?)?;
        let shift = (&self.bias - (self.running_mean.as_tensor() * &scale)?)?;
        crate::ops::scale_shift_leaky_relu(x, &scale.to_dtype(compute)?, &shift.to_dtype(compute)?, slope)
    }

    /// [`BatchNorm::forward_leaky`] plus G's per-pixel `noise` scaled per channel by
    /// `noise_weight`. Training in f32 runs it as one operation
    /// ([`crate::ops::batch_norm_leaky_relu_plus_noise`]), which keeps one activation fewer
    /// for the backward pass.
    fn forward_leaky_plus_noise(
        &self,
        x: &Tensor,
        train: bool,
        slope: f64,
        (noise_weight, noise): (&Tensor, &Tensor),
    ) -> Result<Tensor> {
        if !train || x.dtype() != candle_core::DType::F32 {
            return add_noise(&self.forward_leaky(x, train, slope)?, noise_weight, noise);
        }
        let (n, _, h, w) = x.dims4()?;
        let (y, mean, var) = crate::ops::batch_norm_leaky_relu_plus_noise(
            x,
            &self.weight,
            &self.bias,
            noise_weight,
            noise,
            Self::EPS,
            slope,
        )?;
        self.update_running_statistics(mean, var, n * h * w)?;
        Ok(y)
    }

    /// Moves the running averages towards a batch's statistics over `count` values per
    /// channel (the variance unbiased, as PyTorch does).
    fn update_running_statistics(&self, mean: Tensor, var: Tensor, count: usize) -> Result<()> {
        let m = count as f64;
        let keep = 1.0 - BN_MOMENTUM;
        let rm = ((self.running_mean.as_tensor() * keep)? + (mean * BN_MOMENTUM)?)?;
        let rv = ((self.running_var.as_tensor() * keep)? + (var * (BN_MOMENTUM * m / (m - 1.0).max(1.0)))?)?;
        self.running_mean.set(&rm)?;
        self.running_var.set(&rv)
    }
}

/// `x` plus `noise` `(batch, 1, h, w)` scaled per channel by `noise_weight`, in x's dtype.
pub(crate) fn add_noise(x: &Tensor, noise_weight: &Tensor, noise: &Tensor) -> Result<Tensor> {
    let dtype = x.dtype();
    crate::ops::add_scaled_noise(x, &noise_weight.to_dtype(dtype)?, &noise.to_dtype(dtype)?)
}

/// The normalisation chosen by [`Norm`], followed by a leaky ReLU.
#[derive(Debug, Clone)]
pub(crate) enum NormLayer {
    Batch(BatchNorm),
    Identity,
}

impl NormLayer {
    pub fn new(norm: Norm, channels: usize, vb: VarBuilder) -> Result<Self> {
        Ok(match norm {
            Norm::Batch => NormLayer::Batch(BatchNorm::new(channels, vb)?),
            Norm::None => NormLayer::Identity,
        })
    }

    /// Whether a preceding convolution needs its own bias (batch norm subtracts it anyway).
    pub fn conv_needs_bias(norm: Norm) -> bool {
        norm == Norm::None
    }

    /// `leaky_relu(norm(x))`; `train` selects batch statistics.
    pub fn forward_leaky(&self, x: &Tensor, train: bool, slope: f64) -> Result<Tensor> {
        match self {
            NormLayer::Batch(bn) => bn.forward_leaky(x, train, slope),
            NormLayer::Identity => leaky_relu(x, slope),
        }
    }

    /// `leaky_relu(norm(x)) + noise_weight·noise`: G's per-pixel noise after the activation.
    pub fn forward_leaky_plus_noise(
        &self,
        x: &Tensor,
        train: bool,
        slope: f64,
        noise: (&Tensor, &Tensor),
    ) -> Result<Tensor> {
        match self {
            NormLayer::Batch(bn) => bn.forward_leaky_plus_noise(x, train, slope, noise),
            NormLayer::Identity => add_noise(&leaky_relu(x, slope)?, noise.0, noise.1),
        }
    }
}

pub(crate) use crate::ops::leaky_relu;

/// Convolution → normalisation → leaky ReLU.
#[derive(Debug, Clone)]
pub(crate) struct ConvBlock {
    conv: Conv,
    norm: NormLayer,
    slope: f64,
}

impl ConvBlock {
    pub fn new(
        vb: VarBuilder,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        norm: Norm,
        slope: f64,
    ) -> Result<Self> {
        let conv = Conv::new(
            vb.pp("conv"),
            c_in,
            c_out,
            kernel,
            stride,
            NormLayer::conv_needs_bias(norm),
        )?;
        let norm = NormLayer::new(norm, c_out, vb.pp("norm"))?;
        Ok(ConvBlock { conv, norm, slope })
    }

    pub fn macs(&self, out_side: usize) -> u64 {
        self.conv.macs(out_side)
    }

    /// The block with its convolution spectrally normalised (`vb`: the block's builder).
    pub fn with_spectral_norm(mut self, vb: &VarBuilder) -> Result<Self> {
        self.conv = self.conv.with_spectral_norm(&vb.pp("conv"))?;
        Ok(self)
    }

    /// One power-iteration step of the convolution's spectral norm (if any).
    pub fn power_iteration(&self) -> Result<()> {
        self.conv.power_iteration()
    }

    /// The block applied to `x` upsampled ×2 (nearest), with the upsampling fused into the
    /// convolution.
    pub fn forward_upsampled_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.norm
            .forward_leaky(&self.conv.forward_upsampled(x)?, train, self.slope)
    }

    /// [`ConvBlock::forward_upsampled_t`] followed by G's per-pixel noise, `(weight, noise)`
    /// as [`NormLayer::forward_leaky_plus_noise`] takes them.
    pub fn forward_upsampled_plus_noise_t(
        &self,
        x: &Tensor,
        train: bool,
        noise: (&Tensor, &Tensor),
    ) -> Result<Tensor> {
        self.norm
            .forward_leaky_plus_noise(&self.conv.forward_upsampled(x)?, train, self.slope, noise)
    }

    /// [`ConvBlock::forward_upsampled_t`] with `extra` (same shape as the convolution's
    /// output) added before the normalisation.
    pub fn forward_upsampled_plus_t(&self, x: &Tensor, extra: &Tensor, train: bool) -> Result<Tensor> {
        let y = (self.conv.forward_upsampled(x)? + extra)?;
        self.norm.forward_leaky(&y, train, self.slope)
    }
}

impl ModuleT for ConvBlock {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.norm.forward_leaky(&self.conv.forward(x)?, train, self.slope)
    }
}

/// A stride-2 [`ConvBlock`] of Dx, optionally residual: with a skip path (the input averaged
/// 2×2, then a 1×1 convolution to the block's width, no bias), the output is
/// `(block(x) + skip(avg_pool(x))) / √2`, StyleGAN2's "resnet D" with one convolution per
/// block.
#[derive(Debug, Clone)]
pub(crate) struct DownBlock {
    block: ConvBlock,
    skip: Option<Conv>,
}

impl DownBlock {
    /// `block` (built under `vb`, from `c_in` to `c_out` channels), with the skip path
    /// `<vb>.skip` when `residual`.
    pub fn new(block: ConvBlock, vb: &VarBuilder, c_in: usize, c_out: usize, residual: bool) -> Result<Self> {
        let skip = match residual {
            true => Some(Conv::new(vb.pp("skip"), c_in, c_out, 1, 1, false)?),
            false => None,
        };
        Ok(DownBlock { block, skip })
    }

    /// Multiply-accumulates per image for an output of `out_side`².
    pub fn macs(&self, out_side: usize) -> u64 {
        self.block.macs(out_side) + self.skip.as_ref().map_or(0, |s| s.macs(out_side))
    }

    /// The block with its convolutions spectrally normalised (`vb`: the block's builder).
    pub fn with_spectral_norm(mut self, vb: &VarBuilder) -> Result<Self> {
        self.block = self.block.with_spectral_norm(vb)?;
        if let Some(skip) = self.skip.take() {
            self.skip = Some(skip.with_spectral_norm(&vb.pp("skip"))?);
        }
        Ok(self)
    }

    /// One power-iteration step of every spectral norm of the block.
    pub fn power_iteration(&self) -> Result<()> {
        self.block.power_iteration()?;
        self.skip.as_ref().map_or(Ok(()), Conv::power_iteration)
    }
}

impl ModuleT for DownBlock {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = self.block.forward_t(x, train)?;
        match &self.skip {
            Some(skip) => {
                let shortcut = skip.forward(&crate::ops::downsample_area(x, 2)?)?;
                (y + shortcut)? * std::f64::consts::FRAC_1_SQRT_2
            }
            None => Ok(y),
        }
    }
}

/// A chain of [`ConvBlock`]s and what comes out of it: channels, side, and its cost.
#[derive(Debug, Clone)]
pub(crate) struct BlockChain {
    pub blocks: Vec<ConvBlock>,
    pub width: usize,
    pub side: usize,
    pub macs: u64,
}

impl BlockChain {
    /// Stride-2 blocks `<prefix>.{i}` halving `side` down to 4×4, with widths from `widths`.
    pub fn downsampling(
        vb: &VarBuilder,
        prefix: &str,
        (c_in, side): (usize, usize),
        widths: &crate::config::WidthSchedule,
        kernel: usize,
        norm: Norm,
        slope: f64,
    ) -> Result<Self> {
        let mut chain = BlockChain {
            blocks: Vec::new(),
            width: c_in,
            side,
            macs: 0,
        };
        let mut i = 0;
        while chain.side > 4 {
            let next = widths.at(chain.side / 2);
            chain.push(
                ConvBlock::new(
                    vb.pp(format!("{prefix}.{i}")),
                    chain.width,
                    next,
                    kernel,
                    2,
                    norm,
                    slope,
                )?,
                next,
                chain.side / 2,
            );
            i += 1;
        }
        Ok(chain)
    }

    /// Stride-1 blocks `<prefix>.{i}`, one per layer, at a fixed `side`.
    pub fn same_size(
        vb: &VarBuilder,
        prefix: &str,
        (c_in, side): (usize, usize),
        layers: &[crate::config::ConvLayer],
        norm: Norm,
        slope: f64,
    ) -> Result<Self> {
        let mut chain = BlockChain {
            blocks: Vec::new(),
            width: c_in,
            side,
            macs: 0,
        };
        for (i, layer) in layers.iter().enumerate() {
            chain.push(
                ConvBlock::new(
                    vb.pp(format!("{prefix}.{i}")),
                    chain.width,
                    layer.width,
                    layer.kernel,
                    1,
                    norm,
                    slope,
                )?,
                layer.width,
                side,
            );
        }
        Ok(chain)
    }

    fn push(&mut self, block: ConvBlock, width: usize, side: usize) {
        self.macs += block.macs(side);
        self.blocks.push(block);
        self.width = width;
        self.side = side;
    }
}

/// `layer(x)` in the dtype of `x`: the weights are cast to it where they differ (mixed
/// precision), so the gradient still reaches the f32 weights. Two-dimensional inputs take [`crate::ops::linear_product`], whose product runs on every
/// thread on the CPU (candle's runs on its one-thread pool).
pub(crate) fn linear(layer: &Linear, x: &Tensor) -> Result<Tensor> {
    if layer.weight().dtype() != x.dtype() {
        let weight = layer.weight().to_dtype(x.dtype())?;
        let bias = layer.bias().map(|b| b.to_dtype(x.dtype())).transpose()?;
        return Linear::new(weight, bias).forward(x);
    }
    if x.rank() != 2 {
        return layer.forward(x);
    }
    let product = crate::ops::linear_product(x, layer.weight())?;
    match layer.bias() {
        Some(bias) => product.broadcast_add(bias),
        None => Ok(product),
    }
}

/// A stack of linear layers with leaky ReLU between them (not after the last).
#[derive(Debug, Clone)]
pub(crate) struct Mlp {
    layers: Vec<Linear>,
    slope: f64,
    macs: u64,
}

impl Mlp {
    /// Layers `fc.0 … fc.{n-1}` for the hidden widths, then `out` to `c_out`.
    pub fn new(vb: VarBuilder, c_in: usize, hidden: &[usize], c_out: usize, slope: f64) -> Result<Self> {
        let mut layers = Vec::with_capacity(hidden.len() + 1);
        let mut macs = 0u64;
        let mut width = c_in;
        for (i, &h) in hidden.iter().enumerate() {
            layers.push(candle_nn::linear(width, h, vb.pp(format!("fc.{i}")))?);
            macs += (width * h) as u64;
            width = h;
        }
        layers.push(candle_nn::linear(width, c_out, vb.pp("out"))?);
        macs += (width * c_out) as u64;
        Ok(Mlp { layers, slope, macs })
    }

    pub fn macs(&self) -> u64 {
        self.macs
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = self.layers.len() - 1;
        let mut x = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            x = linear(layer, &x)?;
            if i < last {
                x = leaky_relu(&x, self.slope)?;
            }
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::TrainRng;
    use candle_core::Device;

    #[test]
    fn a_residual_block_adds_the_convolved_average_of_its_input_and_scales_by_root_half() {
        let store = crate::params::ParamStore::new(2);
        let vb = store.var_builder(&Device::Cpu);
        let conv = ConvBlock::new(vb.pp("down.0"), 3, 5, 3, 2, Norm::Batch, 0.2).unwrap();
        let residual = DownBlock::new(conv.clone(), &vb.pp("down.0"), 3, 5, true).unwrap();
        let plain = DownBlock::new(conv.clone(), &vb.pp("down.0"), 3, 5, false).unwrap();
        let x = TrainRng::new(3).test_input((2, 3, 8, 8), &Device::Cpu).unwrap();
        let skip = residual.skip.as_ref().unwrap();
        let expected = ((conv.forward_t(&x, false).unwrap()
            + skip
                .forward(&crate::ops::downsample_area(&x, 2).unwrap())
                .unwrap())
        .unwrap()
            * std::f64::consts::FRAC_1_SQRT_2)
            .unwrap();
        let got = residual.forward_t(&x, false).unwrap();
        assert_eq!(got.dims(), &[2, 5, 4, 4]);
        assert!(crate::ops::max_abs_diff(&got, &expected) < 1e-6);
        let plain_out = plain.forward_t(&x, false).unwrap();
        assert_eq!(
            crate::ops::max_abs_diff(&plain_out, &conv.forward_t(&x, false).unwrap()),
            0.0
        );
        let names: Vec<String> = store.all().into_iter().map(|(n, _)| n).collect();
        assert!(names.iter().any(|n| n == "down.0.skip.weight"), "{names:?}");
        assert!(!names.iter().any(|n| n == "down.0.skip.bias"), "{names:?}");
    }

    #[test]
    fn batch_norm_agrees_with_candles_in_training_and_evaluation() {
        use candle_core::{DType, ModuleT};
        let mut rng = TrainRng::new(11);
        let dev = Device::Cpu;
        let ours_store = crate::params::ParamStore::new(1);
        let ours = NormLayer::new(Norm::Batch, 3, ours_store.var_builder(&dev)).unwrap();
        let theirs_map = candle_nn::VarMap::new();
        let theirs_vb = candle_nn::VarBuilder::from_varmap(&theirs_map, DType::F32, &dev);
        let theirs = candle_nn::batch_norm(3, candle_nn::BatchNormConfig::default(), theirs_vb).unwrap();
        let slope = 0.2;
        for step in 0..3 {
            let x =
                ((rng.test_input((4, 3, 5, 5), &dev).unwrap() * (step + 1) as f64).unwrap() + 0.5).unwrap();
            let a = ours.forward_leaky(&x, true, slope).unwrap();
            let b = leaky_relu(&theirs.forward_t(&x, true).unwrap(), slope).unwrap();
            let diff = crate::ops::max_abs_diff(&a, &b);
            assert!(diff < 1e-4, "training output differs by {diff} at step {step}");
        }
        let stats = ours_store.all();
        for (name, theirs) in [
            ("running_mean", theirs.running_mean()),
            ("running_var", theirs.running_var()),
        ] {
            let ours = &stats.iter().find(|(n, _)| n == name).unwrap().1;
            let diff = crate::ops::max_abs_diff(ours.as_tensor(), theirs);
            assert!(diff < 1e-5, "{name}");
        }
        let x = (rng.test_input((2, 3, 5, 5), &dev).unwrap() * 2.0).unwrap();
        let a = ours.forward_leaky(&x, false, slope).unwrap();
        let b = leaky_relu(&theirs.forward_t(&x, false).unwrap(), slope).unwrap();
        let diff = crate::ops::max_abs_diff(&a, &b);
        assert!(diff < 1e-4, "evaluation output differs by {diff}");
    }

    #[test]
    fn even_kernels_pad_one_more_on_the_bottom_right_like_pytorch_same() {
        let store = crate::params::ParamStore::new(0);
        let conv = Conv::new(store.var_builder(&Device::Cpu), 1, 1, 4, 1, false).unwrap();
        assert_eq!((conv.pad_before, conv.pad_after), (1, 2));
        let x = Tensor::ones((1, 1, 5, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert_eq!(conv.forward(&x).unwrap().dims(), &[1, 1, 5, 5]);
    }

    #[test]
    fn leaky_relu_scales_only_negative_values() {
        let x = Tensor::new(&[-2f32, -0.5, 0.0, 3.0], &Device::Cpu).unwrap();
        let y = leaky_relu(&x, 0.2).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(y, [-0.4, -0.1, 0.0, 3.0]);
    }
}
