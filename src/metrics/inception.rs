//! The FID Inception-v3 network (the TF graph `inception-2015-12-05` that the original FID
//! code and its ports use), written with candle ops, returning the 2048-d `pool3` features.
//!
//! The weights are never downloaded: [`FidInception::load`] reads a safetensors file the user
//! points to, with tensors `net.layers.<layer>.{weight,beta,mean,var}` (the layout of the
//! TorchScript port of that graph). Every convolution has no bias and is followed by a batch
//! norm without scale (ε = 0.001) and a ReLU; the batch norm is folded into the convolution's
//! weights and a bias at load time.
//!
//! Preprocessing, as the reference implementation does it:
//! 1. images in [−1, 1] are quantised to 8-bit pixels, round(v·127.5 + 127.5) clamped to
//!    0..=255 ([`quantise`]);
//! 2. images that are not 299×299 are resized with TF1's legacy bilinear resize
//!    (`align_corners = false`, no half-pixel offset: source = destination × in / out, clamped
//!    at the edge), in float: input = R·img·C per channel ([`bilinear_resize_matrix`]);
//! 3. value = pixel / 128 − 1, clamped to [−1, 1 − 1/128] ([`network_input`]).
//!
//! Cost: about 5.7 GFLOP per image; images go through in batches ([`DEFAULT_BATCH`] by
//! default) so that memory stays bounded.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::bad_input;
use crate::checkpoint::read_tensors;
use crate::error::{AeganError, Result};

/// Side of the network's input.
pub const INPUT_SIZE: usize = 299;
/// Length of the `pool3` feature vector.
pub const FEATURES: usize = 2048;
/// Images per forward pass unless [`FidInception::with_batch_size`] says otherwise.
pub const DEFAULT_BATCH: usize = 16;
/// Batch-norm epsilon of every layer.
const BN_EPS: f64 = 1e-3;

/// The FID Inception-v3 network, weights loaded from a file.
#[derive(Debug, Clone)]
pub struct FidInception {
    stem: Vec<Stage>,
    blocks: Vec<Block>,
    batch_size: usize,
    device: Device,
}

impl FidInception {
    /// Loads the weights (`inception-2015-12-05-fid.safetensors`) onto `device`. A missing
    /// file is an [`AeganError::Io`]; a file that is not these weights (a tensor missing,
    /// extra or of another shape) is an error naming the tensor.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let mut weights = Weights::read(path)?;
        let net = FidInception {
            stem: stem(&mut weights, device)?,
            blocks: blocks(&mut weights, device)?,
            batch_size: DEFAULT_BATCH,
            device: device.clone(),
        };
        weights.check_all_used()?;
        Ok(net)
    }

    /// The same network, processing `batch_size` images per forward pass (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The device the weights are on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `pool3` features `(N, 2048)` (f32, on the CPU) of images `(N, 3, H, W)` in [−1, 1],
    /// preprocessed as the module docs say.
    pub fn features(&self, images: &Tensor) -> Result<Tensor> {
        super::image_dims("images", images)?;
        self.in_batches(images, quantise)
    }

    /// `pool3` features `(N, 2048)` (f32, on the CPU) of 8-bit RGB images `(N, H, W, 3)`
    /// (dtype u8, or float holding pixel values 0..=255), preprocessed as the module docs say.
    pub fn features_u8_nhwc(&self, pixels: &Tensor) -> Result<Tensor> {
        match *pixels.dims() {
            [n, h, w, 3] if n > 0 && h > 0 && w > 0 => {}
            _ => {
                return Err(bad_input(
                    "pixels",
                    "(N ≥ 1, H, W, 3) 8-bit RGB images",
                    pixels.dims(),
                ))
            }
        }
        self.in_batches(pixels, |batch| {
            Ok(batch.to_dtype(DType::F32)?.permute((0, 3, 1, 2))?)
        })
    }

    /// `pool3` features `(N, 2048)` (f32, on the CPU) of inputs already prepared as the network
    /// receives them: `(N, 3, 299, 299)` in [−1, 1] (see [`network_input`]).
    pub fn features_from_input(&self, input: &Tensor) -> Result<Tensor> {
        match *input.dims() {
            [n, 3, INPUT_SIZE, INPUT_SIZE] if n > 0 => {}
            _ => {
                return Err(bad_input(
                    "input",
                    "(N ≥ 1, 3, 299, 299) network input",
                    input.dims(),
                ))
            }
        }
        let n = input.dim(0)?;
        let mut parts = Vec::new();
        for start in (0..n).step_by(self.batch_size) {
            let len = self.batch_size.min(n - start);
            let batch = input
                .narrow(0, start, len)?
                .detach()
                .to_dtype(DType::F32)?
                .to_device(&self.device)?;
            parts.push(self.forward(&batch)?.to_device(&Device::Cpu)?);
        }
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// Runs batches of `images` through `to_pixels` (to `(B, 3, H, W)` pixel values),
    /// [`network_input`] and the network.
    fn in_batches(&self, images: &Tensor, to_pixels: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
        let n = images.dim(0)?;
        let mut parts = Vec::new();
        for start in (0..n).step_by(self.batch_size) {
            let len = self.batch_size.min(n - start);
            // Detached: features never need gradients, and a tracked input would make every
            // layer record its graph and keep all activations alive.
            let batch = images.narrow(0, start, len)?.detach().to_device(&self.device)?;
            let input = network_input(&to_pixels(&batch)?)?;
            parts.push(self.forward(&input)?.to_device(&Device::Cpu)?);
        }
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// The network on a prepared batch `(B, 3, 299, 299)`: `(B, 2048)`.
    fn forward(&self, input: &Tensor) -> Result<Tensor> {
        let mut x = input.clone();
        for stage in &self.stem {
            x = stage.forward(&x)?;
        }
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        // pool3: the 8×8 average pool over the last 8×8 map.
        Ok(x.flatten_from(2)?.mean(2)?)
    }
}

/// 8-bit pixel values round(v·127.5 + 127.5), clamped to 0..=255, of images in [−1, 1]
/// (f32, same shape and device).
pub fn quantise(images: &Tensor) -> Result<Tensor> {
    Ok(images
        .to_dtype(DType::F32)?
        .affine(127.5, 127.5)?
        .round()?
        .clamp(0f32, 255f32)?)
}

/// The network's input `(N, 3, 299, 299)` from pixel values `(N, 3, H, W)` in 0..=255 (f32):
/// TF1 legacy bilinear resize to 299×299 when needed, then pixel / 128 − 1 clamped to
/// [−1, 1 − 1/128].
pub fn network_input(pixels: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = match *pixels.dims() {
        [n, 3, h, w] if n > 0 && h > 0 && w > 0 => (n, 3, h, w),
        _ => {
            return Err(bad_input(
                "pixels",
                "(N ≥ 1, 3, H, W) pixel values",
                pixels.dims(),
            ))
        }
    };
    let pixels = pixels.to_dtype(DType::F32)?.contiguous()?;
    let resized = if (h, w) == (INPUT_SIZE, INPUT_SIZE) {
        pixels
    } else {
        let rows = bilinear_resize_matrix(INPUT_SIZE, h, pixels.device())?;
        let cols = bilinear_resize_matrix(INPUT_SIZE, w, pixels.device())?
            .t()?
            .contiguous()?;
        rows.broadcast_matmul(&pixels)?.broadcast_matmul(&cols)?
    };
    Ok(resized
        .affine(1.0 / 128.0, -1.0)?
        .clamp(-1f32, 1f32 - 1.0 / 128.0)?)
}

/// The `(out_len, in_len)` matrix R of TF1's legacy bilinear resize along one axis
/// (`align_corners = false`, no half-pixel offset): output i reads the input at
/// s = i · in_len / out_len, i.e. (1 − f)·x[⌊s⌋] + f·x[min(⌊s⌋ + 1, in_len − 1)] with
/// f = s − ⌊s⌋ (coordinates computed in f64, which reproduces the reference matrices exactly).
/// A resized image is R·img·Cᵀ with C the matrix for the width.
pub fn bilinear_resize_matrix(out_len: usize, in_len: usize, device: &Device) -> Result<Tensor> {
    if out_len == 0 || in_len == 0 {
        return Err(bad_input("resize", "non-empty lengths", &[out_len, in_len]));
    }
    let mut values = vec![0f32; out_len * in_len];
    let scale = in_len as f64 / out_len as f64;
    for i in 0..out_len {
        let source = i as f64 * scale;
        let low = (source.floor() as usize).min(in_len - 1);
        let high = (low + 1).min(in_len - 1);
        let frac = source - low as f64;
        values[i * in_len + low] += (1.0 - frac) as f32;
        values[i * in_len + high] += frac as f32;
    }
    Ok(Tensor::from_vec(values, (out_len, in_len), device)?)
}

/// One step of the stem.
#[derive(Debug, Clone)]
enum Stage {
    Conv(Conv),
    MaxPool3Stride2,
}

impl Stage {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Stage::Conv(conv) => conv.forward(x),
            Stage::MaxPool3Stride2 => Ok(x.max_pool2d_with_stride(3, 2)?),
        }
    }
}

/// A convolution with the batch norm folded in, then ReLU.
#[derive(Debug, Clone)]
struct Conv {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    padding: (usize, usize),
}

impl Conv {
    /// On the CPU in f32: the crate's im2col + gemm convolution (rectangular kernels too) and
    /// one fused bias + ReLU pass; elsewhere candle's operations.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = crate::ops::conv2d_rect(x, &self.weight, self.stride, self.padding)?;
        Ok(crate::ops::bias_leaky_relu(&y, &self.bias, 0.0)?)
    }
}

/// How a branch of a mixed block starts.
#[derive(Debug, Clone, Copy)]
enum Pool {
    /// No pool.
    None,
    /// 3×3 average, stride 1, padding 1, padding not counted.
    Average3Same,
    /// 3×3 max, stride 1, padding 1 (inputs are ReLU outputs, so zero padding is exact).
    Max3Same,
    /// 3×3 max, stride 2, no padding.
    Max3Stride2,
}

impl Pool {
    fn forward(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Pool::None => x.clone(),
            Pool::Average3Same => average_pool_3x3_same(x)?,
            Pool::Max3Same => x
                .pad_with_zeros(2, 1, 1)?
                .pad_with_zeros(3, 1, 1)?
                .max_pool2d_with_stride(3, 1)?,
            Pool::Max3Stride2 => x.max_pool2d_with_stride(3, 2)?,
        })
    }
}

/// 3×3 average pool, stride 1, padding 1, dividing by the number of real (unpadded) inputs.
fn average_pool_3x3_same(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let mean9 = x
        .pad_with_zeros(2, 1, 1)?
        .pad_with_zeros(3, 1, 1)?
        .avg_pool2d_with_stride(3, 1)?;
    let span = |i: usize, n: usize| ((i + 1).min(n - 1) + 1 - i.saturating_sub(1)) as f32;
    let correction: Vec<f32> = (0..h)
        .flat_map(|y| (0..w).map(move |x| 9.0 / (span(y, h) * span(x, w))))
        .collect();
    let correction = Tensor::from_vec(correction, (1, 1, h, w), x.device())?;
    Ok(mean9.broadcast_mul(&correction)?)
}

/// A branch of a mixed block: a pool, then convolutions.
#[derive(Debug, Clone)]
struct Branch {
    pool: Pool,
    convs: Vec<Conv>,
}

impl Branch {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.pool.forward(x)?;
        for conv in &self.convs {
            y = conv.forward(&y)?;
        }
        Ok(y)
    }
}

/// A mixed block: branches whose outputs are concatenated along channels; the last two
/// (`mixed_9`, `mixed_10`) split two branches in two.
#[derive(Debug, Clone)]
enum Block {
    Concat(Vec<Branch>),
    Expanded(Box<Expanded>),
}

/// `mixed_9` / `mixed_10`: a = tower_conv(x), b = tower_1_conv_1(tower_1_conv(x)); output =
/// [conv(x), tower_mixed_conv(a), tower_mixed_conv_1(a), tower_1_mixed_conv(b),
/// tower_1_mixed_conv_1(b), tower_2_conv(pool(x))].
#[derive(Debug, Clone)]
struct Expanded {
    conv: Conv,
    tower: Branch,
    tower_split: [Conv; 2],
    tower_1: Branch,
    tower_1_split: [Conv; 2],
    tower_2: Branch,
}

impl Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let parts = match self {
            Block::Concat(branches) => branches
                .iter()
                .map(|b| b.forward(x))
                .collect::<Result<Vec<_>>>()?,
            Block::Expanded(e) => {
                let a = e.tower.forward(x)?;
                let b = e.tower_1.forward(x)?;
                vec![
                    e.conv.forward(x)?,
                    e.tower_split[0].forward(&a)?,
                    e.tower_split[1].forward(&a)?,
                    e.tower_1_split[0].forward(&b)?,
                    e.tower_1_split[1].forward(&b)?,
                    e.tower_2.forward(x)?,
                ]
            }
        };
        Ok(Tensor::cat(&parts, 1)?)
    }
}

/// The weights file's tensors, with the names used so far.
struct Weights {
    path: PathBuf,
    tensors: std::collections::HashMap<String, Tensor>,
    used: HashSet<String>,
}

impl Weights {
    fn read(path: &Path) -> Result<Self> {
        Ok(Weights {
            path: path.to_path_buf(),
            tensors: read_tensors(path, &Device::Cpu)?,
            used: HashSet::new(),
        })
    }

    /// The tensor `net.layers.<layer>.<field>`, checked to have `shape`.
    fn take(&mut self, layer: &str, field: &str, shape: &[usize]) -> Result<Tensor> {
        let name = format!("net.layers.{layer}.{field}");
        let t = self
            .tensors
            .get(&name)
            .ok_or_else(|| AeganError::TensorSetMismatch {
                path: self.path.clone(),
                tensor: name.clone(),
                problem: "is missing",
            })?
            .clone();
        if t.dims() != shape {
            return Err(AeganError::ShapeMismatch {
                path: self.path.clone(),
                tensor: name,
                expected: shape.to_vec(),
                found: t.dims().to_vec(),
            });
        }
        self.used.insert(name);
        Ok(t)
    }

    /// The convolution `layer` (`in` → `out` channels, `kernel` (h, w)), batch norm folded in.
    fn conv(&mut self, layer: &str, spec: ConvSpec, device: &Device) -> Result<Conv> {
        let ConvSpec {
            input,
            output,
            kernel: (kh, kw),
            stride,
            padding,
        } = spec;
        let weight = self.take(layer, "weight", &[output, input, kh, kw])?;
        let beta = self.take(layer, "beta", &[output])?;
        let mean = self.take(layer, "mean", &[output])?;
        let var = self.take(layer, "var", &[output])?;
        let scale = (var + BN_EPS)?.sqrt()?.recip()?;
        let weight = weight.broadcast_mul(&scale.reshape((output, 1, 1, 1))?)?;
        let bias = (beta - (mean * &scale)?)?;
        Ok(Conv {
            weight: weight.to_device(device)?,
            bias: bias.to_device(device)?,
            stride,
            padding,
        })
    }

    /// Fails if the file holds a tensor the network did not use.
    fn check_all_used(&self) -> Result<()> {
        let mut extra: Vec<&String> = self.tensors.keys().filter(|k| !self.used.contains(*k)).collect();
        extra.sort();
        match extra.first() {
            Some(name) => Err(AeganError::TensorSetMismatch {
                path: self.path.clone(),
                tensor: (*name).clone(),
                problem: "is not part of this network",
            }),
            None => Ok(()),
        }
    }
}

/// A convolution's shape.
#[derive(Debug, Clone, Copy)]
struct ConvSpec {
    input: usize,
    output: usize,
    kernel: (usize, usize),
    stride: usize,
    padding: (usize, usize),
}

/// A stride-1 convolution, "same" padding for odd kernels.
fn same(input: usize, output: usize, kernel: (usize, usize)) -> ConvSpec {
    ConvSpec {
        input,
        output,
        kernel,
        stride: 1,
        padding: (kernel.0 / 2, kernel.1 / 2),
    }
}

/// A 3×3 convolution without padding.
fn valid3(input: usize, output: usize, stride: usize) -> ConvSpec {
    ConvSpec {
        input,
        output,
        kernel: (3, 3),
        stride,
        padding: (0, 0),
    }
}

/// The stem: three convolutions, a max pool, two convolutions, a max pool (299 → 35).
fn stem(w: &mut Weights, device: &Device) -> Result<Vec<Stage>> {
    Ok(vec![
        Stage::Conv(w.conv("conv", valid3(3, 32, 2), device)?),
        Stage::Conv(w.conv("conv_1", valid3(32, 32, 1), device)?),
        Stage::Conv(w.conv("conv_2", same(32, 64, (3, 3)), device)?),
        Stage::MaxPool3Stride2,
        Stage::Conv(w.conv("conv_3", same(64, 80, (1, 1)), device)?),
        Stage::Conv(w.conv("conv_4", valid3(80, 192, 1), device)?),
        Stage::MaxPool3Stride2,
    ])
}

/// The eleven mixed blocks.
fn blocks(w: &mut Weights, device: &Device) -> Result<Vec<Block>> {
    let mut out = Vec::with_capacity(11);
    for (name, input, pool_features) in [("mixed", 192, 32), ("mixed_1", 256, 64), ("mixed_2", 288, 64)] {
        out.push(block_35(w, name, input, pool_features, device)?);
    }
    out.push(block_reduce_35(w, device)?);
    for (name, c7) in [
        ("mixed_4", 128),
        ("mixed_5", 160),
        ("mixed_6", 160),
        ("mixed_7", 192),
    ] {
        out.push(block_17(w, name, c7, device)?);
    }
    out.push(block_reduce_17(w, device)?);
    out.push(block_8(w, "mixed_9", 1280, Pool::Average3Same, device)?);
    out.push(block_8(w, "mixed_10", 2048, Pool::Max3Same, device)?);
    Ok(out)
}

/// A branch of block `block`: `pool`, then the convolutions `(layer suffix, spec)`.
fn branch(
    w: &mut Weights,
    block: &str,
    pool: Pool,
    convs: &[(&str, ConvSpec)],
    device: &Device,
) -> Result<Branch> {
    let convs = convs
        .iter()
        .map(|(layer, spec)| w.conv(&format!("{block}.{layer}"), *spec, device))
        .collect::<Result<Vec<_>>>()?;
    Ok(Branch { pool, convs })
}

/// `mixed`, `mixed_1`, `mixed_2` (35×35): 64 + 64 + 96 + `pool_features` channels.
fn block_35(
    w: &mut Weights,
    name: &str,
    input: usize,
    pool_features: usize,
    device: &Device,
) -> Result<Block> {
    Ok(Block::Concat(vec![
        branch(w, name, Pool::None, &[("conv", same(input, 64, (1, 1)))], device)?,
        branch(
            w,
            name,
            Pool::None,
            &[
                ("tower.conv", same(input, 48, (1, 1))),
                ("tower.conv_1", same(48, 64, (5, 5))),
            ],
            device,
        )?,
        branch(
            w,
            name,
            Pool::None,
            &[
                ("tower_1.conv", same(input, 64, (1, 1))),
                ("tower_1.conv_1", same(64, 96, (3, 3))),
                ("tower_1.conv_2", same(96, 96, (3, 3))),
            ],
            device,
        )?,
        branch(
            w,
            name,
            Pool::Average3Same,
            &[("tower_2.conv", same(input, pool_features, (1, 1)))],
            device,
        )?,
    ]))
}

/// `mixed_3` (35 → 17): 384 + 96 + 288 = 768 channels.
fn block_reduce_35(w: &mut Weights, device: &Device) -> Result<Block> {
    let name = "mixed_3";
    Ok(Block::Concat(vec![
        branch(w, name, Pool::None, &[("conv", valid3(288, 384, 2))], device)?,
        branch(
            w,
            name,
            Pool::None,
            &[
                ("tower.conv", same(288, 64, (1, 1))),
                ("tower.conv_1", same(64, 96, (3, 3))),
                ("tower.conv_2", valid3(96, 96, 2)),
            ],
            device,
        )?,
        Branch {
            pool: Pool::Max3Stride2,
            convs: vec![],
        },
    ]))
}

/// `mixed_4` … `mixed_7` (17×17, factorised 7×7): 4 × 192 = 768 channels.
fn block_17(w: &mut Weights, name: &str, c7: usize, device: &Device) -> Result<Block> {
    Ok(Block::Concat(vec![
        branch(w, name, Pool::None, &[("conv", same(768, 192, (1, 1)))], device)?,
        branch(
            w,
            name,
            Pool::None,
            &[
                ("tower.conv", same(768, c7, (1, 1))),
                ("tower.conv_1", same(c7, c7, (1, 7))),
                ("tower.conv_2", same(c7, 192, (7, 1))),
            ],
            device,
        )?,
        branch(
            w,
            name,
            Pool::None,
            &[
                ("tower_1.conv", same(768, c7, (1, 1))),
                ("tower_1.conv_1", same(c7, c7, (7, 1))),
                ("tower_1.conv_2", same(c7, c7, (1, 7))),
                ("tower_1.conv_3", same(c7, c7, (7, 1))),
                ("tower_1.conv_4", same(c7, 192, (1, 7))),
            ],
            device,
        )?,
        branch(
            w,
            name,
            Pool::Average3Same,
            &[("tower_2.conv", same(768, 192, (1, 1)))],
            device,
        )?,
    ]))
}

/// `mixed_8` (17 → 8): 320 + 192 + 768 = 1280 channels.
fn block_reduce_17(w: &mut Weights, device: &Device) -> Result<Block> {
    let name = "mixed_8";
    Ok(Block::Concat(vec![
        branch(
            w,
            name,
            Pool::None,
            &[
                ("tower.conv", same(768, 192, (1, 1))),
                ("tower.conv_1", valid3(192, 320, 2)),
            ],
            device,
        )?,
        branch(
            w,
            name,
            Pool::None,
            &[
                ("tower_1.conv", same(768, 192, (1, 1))),
                ("tower_1.conv_1", same(192, 192, (1, 7))),
                ("tower_1.conv_2", same(192, 192, (7, 1))),
                ("tower_1.conv_3", valid3(192, 192, 2)),
            ],
            device,
        )?,
        Branch {
            pool: Pool::Max3Stride2,
            convs: vec![],
        },
    ]))
}

/// `mixed_9`, `mixed_10` (8×8): 320 + 2 × 384 + 2 × 384 + 192 = 2048 channels.
fn block_8(w: &mut Weights, name: &str, input: usize, pool: Pool, device: &Device) -> Result<Block> {
    let mut conv = |layer: &str, spec: ConvSpec| w.conv(&format!("{name}.{layer}"), spec, device);
    let expanded = Expanded {
        conv: conv("conv", same(input, 320, (1, 1)))?,
        tower: Branch {
            pool: Pool::None,
            convs: vec![conv("tower_conv", same(input, 384, (1, 1)))?],
        },
        tower_split: [
            conv("tower_mixed_conv", same(384, 384, (1, 3)))?,
            conv("tower_mixed_conv_1", same(384, 384, (3, 1)))?,
        ],
        tower_1: Branch {
            pool: Pool::None,
            convs: vec![
                conv("tower_1_conv", same(input, 448, (1, 1)))?,
                conv("tower_1_conv_1", same(448, 384, (3, 3)))?,
            ],
        },
        tower_1_split: [
            conv("tower_1_mixed_conv", same(384, 384, (1, 3)))?,
            conv("tower_1_mixed_conv_1", same(384, 384, (3, 1)))?,
        ],
        tower_2: Branch {
            pool,
            convs: vec![conv("tower_2_conv", same(input, 192, (1, 1)))?],
        },
    };
    Ok(Block::Expanded(Box::new(expanded)))
}
