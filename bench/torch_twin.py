#!/usr/bin/env python3
"""PyTorch twin of aegan's benchmarks: the same four networks, layer for layer, and the same
training step, timed the way `cargo bench --bench train_step` and `--bench forward` time the
crate, so that the two can be compared side by side (see bench/README.md and bench/compare.sh).

What is mirrored from the crate (src/config.rs, src/nets/*.rs, src/objective.rs, src/trainer.rs):

* the config (`AeganConfig` JSON, or the `lean` / `author` presets rebuilt here);
* the layer layout, widths, kernels, paddings, biases and tensor names of G, E, Dx and Dz, so
  that parameter names and shapes can be checked against a checkpoint (`--checkpoint DIR`);
* one training step: discriminator phase (fakes detached, output zeroing, one backward of
  L_Dx + L_Dz, Adam on Dx and Dz), then generator/encoder phase (non-saturating adversarial
  terms, L1 image and squared latent reconstruction, Adam on G and E); both phases read their
  loss values back to the host as the crate does (it checks them for NaN);
* evaluation-mode forward passes of each network at batch 1, 64 and 256.

What is deliberately not mirrored, because it does not change the amount of work:
weight initialisation (PyTorch defaults), the random streams (torch's generator), and the
synthetic images (uniform noise in [-1, 1] instead of drawn lesions). The fakes of the
discriminator phase are computed under `torch.no_grad()` (the idiomatic form of the crate's
`detach()`), and evaluation forwards run under `torch.no_grad()`.

Row names match the crate's criterion ids: `train_step/lean32/64`,
`forward/lean32/generator/64`, ... Throughput is images (or latents) per second, from the
median time over the timed repetitions.

Only the standard library and torch are needed; `--checkpoint` parses safetensors headers
itself.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import struct
import sys
import time
import warnings
from pathlib import Path

# ---------------------------------------------------------------------------------------------
# Config: the presets of src/config.rs, kept in sync by hand.
# ---------------------------------------------------------------------------------------------


def preset_lean(image_size: int) -> dict:
    """`AeganConfig::lean(image_size)` from src/config.rs."""
    return {
        "image_size": image_size,
        "channels": 3,
        "latent_dim": 16,
        "generator": {
            "widths": {"at_32": 32, "min": 16, "max": 64},
            "kernel": 3,
            "head": [],
            "out_kernel": 3,
        },
        "encoder": {
            "widths": {"at_32": 32, "min": 16, "max": 128},
            "kernel": 3,
            "neck": [],
            "hidden": [128],
        },
        "image_discriminator": {"widths": {"at_32": 16, "min": 8, "max": 128}, "kernel": 3},
        "latent_discriminator": {"hidden": [64, 64]},
        "upsample": "nearest_conv",
        "norm": "batch",
        "leaky_slope": 0.2,
        "loss_weights": {
            "image_adversarial": 0.1,
            "latent_adversarial": 0.1,
            "image_reconstruction": 1.0,
            "latent_reconstruction": 0.5,
        },
        "real_target": 0.95,
        "fake_target": 0.05,
        "output_zeroing": 0.1,
        "learning_rates": {
            "generator": 2e-4,
            "encoder": 2e-4,
            "image_discriminator": 1e-4,
            "latent_discriminator": 1e-3,
        },
        "adam_betas": [0.5, 0.999],
        "adam_eps": 1e-8,
        "generator_ema": 0.0,
        "batch_size": 32,
        "seed": 0,
    }


def preset_author(image_size: int) -> dict:
    """`AeganConfig::author(image_size)` from src/config.rs."""
    return {
        "image_size": image_size,
        "channels": 3,
        "latent_dim": 16,
        "generator": {
            "widths": {"at_32": 128, "min": 32, "max": 512},
            "kernel": 4,
            "head": [{"width": 64, "kernel": 4}, {"width": 64, "kernel": 5}],
            "out_kernel": 1,
        },
        "encoder": {
            "widths": {"at_32": 32, "min": 32, "max": 128},
            "kernel": 3,
            "neck": [{"width": 128, "kernel": 3}, {"width": 256, "kernel": 3}],
            "hidden": [128, 128],
        },
        "image_discriminator": {"widths": {"at_32": 64, "min": 16, "max": 512}, "kernel": 3},
        "latent_discriminator": {"hidden": [128, 64, 32, 32]},
        "upsample": "nearest_conv",
        "norm": "batch",
        "leaky_slope": 0.2,
        "loss_weights": {
            "image_adversarial": 0.1,
            "latent_adversarial": 0.1,
            "image_reconstruction": 1.0,
            "latent_reconstruction": 0.5,
        },
        "real_target": 1.0,
        "fake_target": 0.0,
        "output_zeroing": 0.0,
        "learning_rates": {
            "generator": 2e-4,
            "encoder": 2e-4,
            "image_discriminator": 1e-3,
            "latent_discriminator": 1e-3,
        },
        "adam_betas": [0.5, 0.999],
        "adam_eps": 1e-8,
        "generator_ema": 0.0,
        "batch_size": 64,
        "seed": 0,
    }


PRESETS = {
    "lean": preset_lean,
    "default": preset_lean,
    "author": preset_author,
    "author32": preset_author,
}


def width_at(widths: dict, resolution: int) -> int:
    """`WidthSchedule::at`: at_32 * 32 / resolution (integer division), clamped to [min, max]."""
    w = widths["at_32"] * 32 // max(resolution, 1)
    return min(max(w, widths["min"]), widths["max"])


def stages(config: dict) -> int:
    """`AeganConfig::stages`: number of x2 stages between 4x4 and the image size."""
    size = config["image_size"]
    return max((size & -size).bit_length() - 1 - 2, 0)


def validate(config: dict) -> None:
    """The structural checks of `AeganConfig::validate` (enough to build the networks)."""
    s = config["image_size"]
    if s & (s - 1) or not 16 <= s <= 256:
        raise SystemExit(f"config: image_size {s} must be a power of two from 16 to 256")
    if config["upsample"] not in ("nearest_conv", "transposed_conv"):
        raise SystemExit(f"config: unknown upsample {config['upsample']!r}")
    if config["norm"] not in ("batch", "none"):
        raise SystemExit(f"config: unknown norm {config['norm']!r}")
    for field in ("encoder", "image_discriminator"):
        if config[field]["kernel"] % 2 == 0:
            raise SystemExit(f"config: {field}.kernel must be odd")


# ---------------------------------------------------------------------------------------------
# Networks (imports torch lazily so that --help and --print-config work without it).
# ---------------------------------------------------------------------------------------------


def build_networks(config: dict, torch):
    nn = torch.nn
    F = torch.nn.functional
    slope = float(config["leaky_slope"])
    use_bn = config["norm"] == "batch"

    def norm_layer(channels: int):
        # candle_nn::BatchNormConfig::default(): eps 1e-5, momentum 0.1, affine.
        if use_bn:
            return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        return nn.Identity()

    def conv(c_in: int, c_out: int, kernel: int, stride: int, bias: bool):
        """layers.rs `Conv`: total padding k-1, floor half before, the rest after."""
        if stride == 1:
            # PyTorch 'same' pads (k-1)//2 before and the rest after: the crate's rule.
            return nn.Conv2d(c_in, c_out, kernel, stride=1, padding="same", bias=bias)
        if kernel % 2 == 0:
            raise SystemExit("strided convolutions need odd kernels (as the crate's validate says)")
        return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=bias)

    class ConvBlock(nn.Module):
        """layers.rs `ConvBlock`: conv (bias only without norm) -> norm -> leaky ReLU."""

        def __init__(self, c_in, c_out, kernel, stride):
            super().__init__()
            self.conv = conv(c_in, c_out, kernel, stride, bias=not use_bn)
            self.norm = norm_layer(c_out)

        def forward(self, x):
            return F.leaky_relu(self.norm(self.conv(x)), slope)

    class Mlp(nn.Module):
        """layers.rs `Mlp`: `fc.{i}` Linear + leaky ReLU, then `out` Linear."""

        def __init__(self, c_in, hidden, c_out):
            super().__init__()
            widths = [c_in] + list(hidden)
            self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
            self.out = nn.Linear(widths[-1], c_out)

        def forward(self, x):
            for layer in self.fc:
                x = F.leaky_relu(layer(x), slope)
            return self.out(x)

    class Stem(nn.Module):
        def __init__(self, latent, width):
            super().__init__()
            self.linear = nn.Linear(latent, width * 16)
            self.norm = norm_layer(width)

    class TransposedStage(nn.Module):
        """A 4x4 stride-2 transposed conv (never a bias in the crate), norm, leaky ReLU."""

        def __init__(self, c_in, c_out):
            super().__init__()
            self.convt = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False)
            self.norm = norm_layer(c_out)

        def forward(self, x):
            return F.leaky_relu(self.norm(self.convt(x)), slope)

    class NearestStage(ConvBlock):
        def forward(self, x):
            return super().forward(F.interpolate(x, scale_factor=2, mode="nearest"))

    class Generator(nn.Module):
        """generator.rs: stem.linear -> (B, w(4), 4, 4) -> stem.norm -> LReLU -> stages -> head -> out -> tanh."""

        def __init__(self):
            super().__init__()
            g = config["generator"]
            self.stem_width = width_at(g["widths"], 4)
            self.stem = Stem(config["latent_dim"], self.stem_width)
            side, width = 4, self.stem_width
            self.stages = nn.ModuleList()
            for _ in range(stages(config)):
                nxt = width_at(g["widths"], side * 2)
                if config["upsample"] == "nearest_conv":
                    self.stages.append(NearestStage(width, nxt, g["kernel"], 1))
                else:
                    self.stages.append(TransposedStage(width, nxt))
                side, width = side * 2, nxt
            self.head = nn.ModuleList()
            for layer in g["head"]:
                self.head.append(ConvBlock(width, layer["width"], layer["kernel"], 1))
                width = layer["width"]
            self.out = conv(width, config["channels"], g["out_kernel"], 1, bias=True)

        def forward(self, z):
            x = self.stem.linear(z).reshape(z.shape[0], self.stem_width, 4, 4)
            x = F.leaky_relu(self.stem.norm(x), slope)
            for stage in self.stages:
                x = stage(x)
            for block in self.head:
                x = block(x)
            return torch.tanh(self.out(x))

    class Encoder(nn.Module):
        """encoder.rs: down.{i} stride-2 blocks to 4x4, neck.{i} stride-1 blocks, head MLP."""

        def __init__(self):
            super().__init__()
            e = config["encoder"]
            side, width = config["image_size"], config["channels"]
            self.down = nn.ModuleList()
            for _ in range(stages(config)):
                nxt = width_at(e["widths"], side // 2)
                self.down.append(ConvBlock(width, nxt, e["kernel"], 2))
                side, width = side // 2, nxt
            self.neck = nn.ModuleList()
            for layer in e["neck"]:
                self.neck.append(ConvBlock(width, layer["width"], layer["kernel"], 1))
                width = layer["width"]
            self.head = Mlp(width * side * side, e["hidden"], config["latent_dim"])

        def forward(self, x):
            for block in self.down:
                x = block(x)
            for block in self.neck:
                x = block(x)
            return self.head(x.flatten(1))

    class ImageDiscriminator(nn.Module):
        """discriminator.rs: from_image conv (bias, no norm) + LReLU, down.{i} stride-2 blocks, out Linear."""

        def __init__(self):
            super().__init__()
            d = config["image_discriminator"]
            side = config["image_size"]
            width = width_at(d["widths"], side)
            self.from_image = conv(config["channels"], width, d["kernel"], 1, bias=True)
            self.down = nn.ModuleList()
            for _ in range(stages(config)):
                nxt = width_at(d["widths"], side // 2)
                self.down.append(ConvBlock(width, nxt, d["kernel"], 2))
                side, width = side // 2, nxt
            self.out = nn.Linear(width * side * side, 1)

        def forward(self, x):
            x = F.leaky_relu(self.from_image(x), slope)
            for block in self.down:
                x = block(x)
            return self.out(x.flatten(1))

    class LatentDiscriminator(Mlp):
        """discriminator.rs: an MLP at the root: fc.{i}, out."""

        def __init__(self):
            super().__init__(config["latent_dim"], config["latent_discriminator"]["hidden"], 1)

    return {
        "generator": Generator(),
        "encoder": Encoder(),
        "image_discriminator": ImageDiscriminator(),
        "latent_discriminator": LatentDiscriminator(),
    }


NETWORKS = ("generator", "encoder", "image_discriminator", "latent_discriminator")


def trainable_shapes(net) -> dict:
    """Parameter name -> shape, named as in the crate's checkpoint files."""
    return {name: list(p.shape) for name, p in net.named_parameters()}


def param_count(net) -> int:
    return sum(p.numel() for p in net.parameters())


def macs_per_image(net, example, torch) -> int:
    """Multiply-accumulates of one forward pass per image, counted as the crate's
    `macs_per_image` does: conv out_side^2 * weight size, transposed conv in_side^2 * weight
    size, linear weight size (biases, norms and activations not counted)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        w = module.weight.numel()
        if isinstance(module, torch.nn.Conv2d):
            total += output.shape[-1] * output.shape[-2] * w
        elif isinstance(module, torch.nn.ConvTranspose2d):
            total += inputs[0].shape[-1] * inputs[0].shape[-2] * w
        else:
            total += w

    kinds = (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)
    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, kinds)]
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            net(example)
    finally:
        net.train(was_training)
        for h in handles:
            h.remove()
    return total


def flops_per_image(nets: dict, config: dict, torch, device) -> int:
    """`AeganTrainer::flops_per_image`: 2 * (8 * (G + E) + 15 * (Dx + Dz)) MACs."""
    z = torch.zeros(1, config["latent_dim"], device=device)
    x = torch.zeros(1, config["channels"], config["image_size"], config["image_size"], device=device)
    m = {
        "generator": macs_per_image(nets["generator"], z, torch),
        "encoder": macs_per_image(nets["encoder"], x, torch),
        "image_discriminator": macs_per_image(nets["image_discriminator"], x, torch),
        "latent_discriminator": macs_per_image(nets["latent_discriminator"], z, torch),
    }
    ge = m["generator"] + m["encoder"]
    d = m["image_discriminator"] + m["latent_discriminator"]
    return 2 * (8 * ge + 15 * d)


# ---------------------------------------------------------------------------------------------
# The training step: src/objective.rs + src/trainer.rs.
# ---------------------------------------------------------------------------------------------


class Twin:
    def __init__(self, config: dict, torch, device, adam_impl: str):
        self.torch = torch
        self.config = config
        self.device = device
        nets = build_networks(config, torch)
        self.nets = {k: v.to(device) for k, v in nets.items()}
        lr = config["learning_rates"]
        b1, b2 = config["adam_betas"]
        kwargs = {"betas": (b1, b2), "eps": config["adam_eps"], "weight_decay": 0.0}
        if adam_impl == "foreach":
            kwargs["foreach"] = True
        elif adam_impl == "fused":
            kwargs["fused"] = True
        elif adam_impl == "single":
            kwargs["foreach"] = False
        self.opt = {
            name: torch.optim.Adam(self.nets[name].parameters(), lr=lr[name], **kwargs)
            for name in NETWORKS
        }
        w = config["loss_weights"]
        self.w = (
            w["image_adversarial"],
            w["latent_adversarial"],
            w["image_reconstruction"],
            w["latent_reconstruction"],
        )
        self.latent_dim = config["latent_dim"]
        # The moving average of G (`generator_ema`, `Networks::update_generator_ema`).
        self.ema_decay = float(config.get("generator_ema", 0.0))
        self.ema = None
        self.g_steps = 0
        if self.ema_decay > 0.0:
            import copy

            self.ema = copy.deepcopy(self.nets["generator"]).requires_grad_(False)

    def update_ema(self) -> None:
        """avg <- d*avg + (1-d)*G for parameters and float buffers, d ramped as in the crate."""
        if self.ema is None:
            return
        t = self.g_steps - 1
        decay = min(self.ema_decay, (1.0 + t) / (10.0 + t))
        G = self.nets["generator"]
        with self.torch.no_grad():
            for avg, cur in zip(self.ema.parameters(), G.parameters()):
                avg.lerp_(cur, 1.0 - decay)
            for avg, cur in zip(self.ema.buffers(), G.buffers()):
                if avg.is_floating_point():
                    avg.lerp_(cur, 1.0 - decay)

    def train_mode(self, on: bool) -> None:
        for net in self.nets.values():
            net.train(on)

    def bce(self, logits, target: float):
        """Mean BCE of logits against a constant target (the crate's `bce_with_logits`)."""
        F = self.torch.nn.functional
        return F.binary_cross_entropy_with_logits(logits, self.torch.full_like(logits, target))

    def step(self, x):
        """One `AeganTrainer::step`: discriminator phase, then generator/encoder phase."""
        torch = self.torch
        G, E = self.nets["generator"], self.nets["encoder"]
        Dx, Dz = self.nets["image_discriminator"], self.nets["latent_discriminator"]
        c = self.config
        b = x.shape[0]

        # Discriminator phase (objective.rs `discriminator_loss`, trainer.rs `discriminator_step`).
        z = torch.randn(b, self.latent_dim, device=self.device)
        with torch.no_grad():
            x_hat = G(z)
            z_hat = E(x)
            x_tilde = G(z_hat)
            z_tilde = E(x_hat)
        p = c["output_zeroing"]

        def zeroed(logits):
            if p > 0.0:
                keep = (torch.rand(logits.shape[0], 1, device=self.device) >= p).to(logits.dtype)
                return logits * keep
            return logits

        tr, tf = c["real_target"], c["fake_target"]
        loss_dx = self.bce(zeroed(Dx(x)), tr) + 0.5 * (
            self.bce(zeroed(Dx(x_hat)), tf) + self.bce(zeroed(Dx(x_tilde)), tf)
        )
        loss_dz = self.bce(zeroed(Dz(z)), tr) + 0.5 * (
            self.bce(zeroed(Dz(z_hat)), tf) + self.bce(zeroed(Dz(z_tilde)), tf)
        )
        d_values = (loss_dx.item(), loss_dz.item())  # the crate reads both to check for NaN
        self.opt["image_discriminator"].zero_grad(set_to_none=True)
        self.opt["latent_discriminator"].zero_grad(set_to_none=True)
        (loss_dx + loss_dz).backward()
        self.opt["image_discriminator"].step()
        self.opt["latent_discriminator"].step()

        # Generator/encoder phase (objective.rs `generator_loss`, trainer.rs `generator_step`).
        # Dx and Dz keep requires_grad: candle's backward also computes their gradients here,
        # which are then not applied.
        z = torch.randn(b, self.latent_dim, device=self.device)
        x_hat = G(z)
        z_hat = E(x)
        x_tilde = G(z_hat)
        z_tilde = E(x_hat)
        image_adv = 0.5 * (self.bce(Dx(x_hat), 1.0) + self.bce(Dx(x_tilde), 1.0))
        latent_adv = 0.5 * (self.bce(Dz(z_hat), 1.0) + self.bce(Dz(z_tilde), 1.0))
        image_rec = (x_tilde - x).abs().mean()
        latent_rec = (z_tilde - z).square().mean()
        a_dx, a_dz, a_rx, a_rz = self.w
        total = a_dx * image_adv + a_dz * latent_adv + a_rx * image_rec + a_rz * latent_rec
        g_values = (
            image_adv.item(),
            latent_adv.item(),
            image_rec.item(),
            latent_rec.item(),
            total.item(),
        )
        self.opt["generator"].zero_grad(set_to_none=True)
        self.opt["encoder"].zero_grad(set_to_none=True)
        total.backward()
        self.opt["generator"].step()
        self.opt["encoder"].step()
        self.g_steps += 1
        self.update_ema()
        values = d_values + g_values
        if not all(math.isfinite(v) for v in values):
            raise SystemExit(f"non-finite loss in the twin's training step: {values}")
        return values


# ---------------------------------------------------------------------------------------------
# Timing.
# ---------------------------------------------------------------------------------------------


def timed(fn, sync, warmup: int, reps: int) -> list:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def row(row_id: str, batch: int, times: list) -> dict:
    med = statistics.median(times)
    return {
        "id": row_id,
        "batch": batch,
        "reps": len(times),
        "median_s": med,
        "mean_s": statistics.fmean(times),
        "min_s": min(times),
        "max_s": max(times),
        "images_per_s": batch / med if med > 0 else float("inf"),
    }


def fake_images(torch, n: int, config: dict, device):
    c, s = config["channels"], config["image_size"]
    return torch.rand(n, c, s, s, device=device) * 2.0 - 1.0


def max_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def current_rss_mib() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------------------------------------
# Checkpoint comparison (safetensors headers, no extra package).
# ---------------------------------------------------------------------------------------------


def safetensors_shapes(path: Path) -> dict:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return {name: info["shape"] for name, info in header.items()}


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint root (with a `latest` file naming the snapshot) or a snapshot directory."""
    latest = path / "latest"
    if latest.is_file():
        return path / latest.read_text().strip()
    return path


def compare_with_checkpoint(nets: dict, snapshot: Path, log) -> bool:
    ok = True
    log(f"parameter check against {snapshot}:")
    log(f"  {'network':<22}{'aegan':>12}{'pytorch':>12}  shapes")
    for name in NETWORKS:
        f = snapshot / f"{name}.safetensors"
        if not f.is_file():
            log(f"  {name:<22}{'missing':>12}")
            ok = False
            continue
        theirs = {
            k: v
            for k, v in safetensors_shapes(f).items()
            if not (k.endswith("running_mean") or k.endswith("running_var"))
        }
        ours = trainable_shapes(nets[name])
        n_theirs = sum(math.prod(s) for s in theirs.values())
        n_ours = sum(math.prod(s) for s in ours.values())
        same = theirs == ours
        ok &= same and n_theirs == n_ours
        log(f"  {name:<22}{n_theirs:>12,}{n_ours:>12,}  {'identical' if same else 'DIFFER'}")
        if not same:
            for k in sorted(set(theirs) | set(ours)):
                if theirs.get(k) != ours.get(k):
                    log(f"      {k}: aegan {theirs.get(k)} pytorch {ours.get(k)}")
    return ok


# ---------------------------------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="PyTorch twin of aegan's criterion benchmarks (train_step, forward).",
    )
    src = p.add_argument_group("model")
    src.add_argument("--config", type=Path, help="an AeganConfig JSON (e.g. a checkpoint's config.json)")
    src.add_argument("--preset", choices=sorted(PRESETS), help="a preset of src/config.rs (default: lean)")
    src.add_argument("--size", type=int, help="image size for --preset (default: 32)")
    src.add_argument("--label", help="row label (default: <preset><size>, or config<size> for --config)")
    src.add_argument(
        "--checkpoint",
        type=Path,
        help="compare parameter names/shapes/counts with this aegan checkpoint (root or step dir); "
        "its config.json is used when neither --config nor --preset is given",
    )
    run = p.add_argument_group("run")
    run.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    run.add_argument("--threads", type=int, help="torch.set_num_threads (CPU intra-op threads)")
    run.add_argument("--batch", type=int, action="append", help="training batch size (repeatable; default 64)")
    run.add_argument(
        "--forward-batch",
        type=int,
        action="append",
        help="forward batch size (repeatable; default 1, 64, 256)",
    )
    run.add_argument("--steps", type=int, default=10, help="timed training steps per batch size (default 10)")
    run.add_argument("--reps", type=int, default=10, help="timed forward passes per row (default 10)")
    run.add_argument("--warmup", type=int, default=2, help="untimed warm-up calls before each row (default 2)")
    run.add_argument("--no-train", action="store_true", help="skip the train_step rows")
    run.add_argument("--no-forward", action="store_true", help="skip the forward rows")
    run.add_argument(
        "--adam",
        choices=["default", "single", "foreach", "fused"],
        default="default",
        help="torch.optim.Adam implementation (default: torch's own choice)",
    )
    run.add_argument(
        "--tf32",
        action="store_true",
        help="allow TF32 in CUDA matmuls and convolutions (off by default: the crate computes in f32)",
    )
    run.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True")
    run.add_argument(
        "--bf16",
        action="store_true",
        help="also time the train_step rows under torch.autocast(bfloat16) (f32 weights), as "
        "rows <label>-bf16, the counterpart of AEGAN_BENCH_PRECISION=bf16",
    )
    run.add_argument("--seed", type=int, default=0, help="torch.manual_seed (default 0)")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print one JSON object on stdout (text goes to stderr)")
    out.add_argument("--print-config", action="store_true", help="print the config JSON and exit")
    p.add_argument(
        "--ceiling",
        action="store_true",
        help="only time one f32 matrix product of 1024² and 2048² (median of 10) and print its FLOP rate, "
        "the counterpart of `cargo bench --bench ceiling`",
    )
    mem = p.add_argument_group("peak memory")
    mem.add_argument(
        "--peak-memory",
        action="store_true",
        help="only run --peak-steps training steps at the first --batch (default 64) and report max RSS",
    )
    mem.add_argument("--peak-steps", type=int, default=200, help="training steps for --peak-memory (default 200)")
    mem.add_argument(
        "--peak-dataset",
        type=int,
        default=2048,
        help="images kept in memory during --peak-memory (default 2048, like the ham10000 example's synthetic set)",
    )
    return p.parse_args(argv)


def load_config(args) -> tuple[dict, str]:
    explicit_preset = args.preset is not None or args.size is not None
    if args.config is not None:
        config = json.loads(args.config.read_text())
        label = args.label or f"config{config['image_size']}"
    elif args.checkpoint is not None and not explicit_preset:
        config = json.loads((resolve_checkpoint(args.checkpoint) / "config.json").read_text())
        label = args.label or f"checkpoint{config['image_size']}"
    else:
        preset, size = args.preset or "lean", args.size or 32
        config = PRESETS[preset](size)
        name = {"default": "lean", "author32": "author"}.get(preset, preset)
        label = args.label or f"{name}{size}"
    validate(config)
    return config, label


def main(argv=None) -> int:
    args = parse_args(argv)
    config, label = load_config(args)
    if args.print_config:
        print(json.dumps(config, indent=2))
        return 0

    def log(msg=""):
        print(msg, file=sys.stderr if args.json else sys.stdout, flush=True)

    try:
        import torch
    except ImportError:
        log("error: PyTorch is not installed for this interpreter; see bench/README.md")
        return 2

    rss_after_import = current_rss_mib()
    # Even 'same' kernels (the author preset's 4x4) pad asymmetrically, as the crate does too.
    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            log("error: --device cuda but torch.cuda.is_available() is False")
            return 2
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cudnn.benchmark = args.cudnn_benchmark

        def sync():
            torch.cuda.synchronize(device)

    else:

        def sync():
            pass

    if args.ceiling:
        for n in (1024, 2048):
            a = torch.randn(n, n, device=device)
            b = torch.randn(n, n, device=device)
            times = []
            for i in range(13):
                t0 = time.perf_counter()
                a @ b
                sync()
                if i >= 3:
                    times.append(time.perf_counter() - t0)
            median = sorted(times)[len(times) // 2]
            log(f"ceiling/matmul_flops/{n:<5} {2 * n**3 / median / 1e9:10.1f} GFLOP/s  (median {median * 1e3:.3f} ms)")
        return 0

    train_batches = args.batch or [64]
    forward_batches = args.forward_batch or [1, 64, 256]

    twin = Twin(config, torch, device, args.adam)
    params = {name: param_count(net) for name, net in twin.nets.items()}
    meta = {
        "label": label,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "adam": args.adam,
        "tf32": args.tf32 if device.type == "cuda" else None,
        "steps": args.steps,
        "reps": args.reps,
        "warmup": args.warmup,
    }
    log(
        f"aegan PyTorch twin: {label} on {meta['device']} ({meta['device_name']}), torch {meta['torch']}, "
        f"{meta['threads']} threads"
    )
    flops = flops_per_image(twin.nets, config, torch, device)
    meta["gflop_per_image_step"] = flops / 1e9
    log("parameters: " + ", ".join(f"{k} {v:,}" for k, v in params.items()) + f", total {sum(params.values()):,}")
    log(f"cost: {flops / 1e9:.3f} GFLOP per real image per training step (the crate's flops_per_image formula)")

    ok = True
    if args.checkpoint is not None:
        ok = compare_with_checkpoint(twin.nets, resolve_checkpoint(args.checkpoint), log)

    result = {"meta": meta, "config": config, "params": {label: params}, "rows": []}

    if args.peak_memory:
        batch = train_batches[0]
        dataset = fake_images(torch, args.peak_dataset, config, device)
        twin.train_mode(True)
        gen = torch.Generator(device="cpu").manual_seed(args.seed)
        t0 = time.perf_counter()
        for _ in range(args.peak_steps):
            idx = torch.randint(0, args.peak_dataset, (batch,), generator=gen).to(device)
            twin.step(dataset.index_select(0, idx))
        sync()
        elapsed = time.perf_counter() - t0
        peak = {
            "steps": args.peak_steps,
            "batch": batch,
            "seconds": elapsed,
            "max_rss_mib": max_rss_mib(),
            "rss_after_import_mib": rss_after_import,
            "max_rss_above_import_mib": None if rss_after_import is None else max_rss_mib() - rss_after_import,
        }
        if device.type == "cuda":
            peak["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
            peak["cuda_max_reserved_mib"] = torch.cuda.max_memory_reserved(device) / 2**20
        result["peak_memory"] = peak
        log(
            f"peak memory: {args.peak_steps} steps at batch {batch} in {elapsed:.1f} s; "
            f"max RSS {peak['max_rss_mib']:.1f} MiB (RSS right after `import torch`: "
            f"{rss_after_import if rss_after_import is None else round(rss_after_import, 1)} MiB)"
        )
        if device.type == "cuda":
            log(
                f"  CUDA max allocated {peak['cuda_max_allocated_mib']:.1f} MiB, "
                f"max reserved {peak['cuda_max_reserved_mib']:.1f} MiB"
            )
    else:
        if not args.no_train:
            twin.train_mode(True)
            for batch in train_batches:
                x = fake_images(torch, batch, config, device)
                times = timed(lambda: twin.step(x), sync, args.warmup, args.steps)
                r = row(f"train_step/{label}/{batch}", batch, times)
                result["rows"].append(r)
                log(f"{r['id']:<44} {r['images_per_s']:>12.1f} images/s  (median {r['median_s'] * 1e3:.2f} ms)")
                if args.bf16:

                    def mixed_step(x=x):
                        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                            twin.step(x)

                    times = timed(mixed_step, sync, args.warmup, args.steps)
                    r = row(f"train_step/{label}-bf16/{batch}", batch, times)
                    result["rows"].append(r)
                    log(f"{r['id']:<44} {r['images_per_s']:>12.1f} images/s  (median {r['median_s'] * 1e3:.2f} ms)")
        if not args.no_forward:
            # Fresh networks as in benches/forward.rs (untrained, running stats at 0/1).
            eval_nets = {k: v.to(device).eval() for k, v in build_networks(config, torch).items()}
            for batch in forward_batches:
                z = torch.randn(batch, config["latent_dim"], device=device)
                x = fake_images(torch, batch, config, device)
                inputs = {
                    "generator": z,
                    "encoder": x,
                    "image_discriminator": x,
                    "latent_discriminator": z,
                }
                for name in NETWORKS:
                    net, inp = eval_nets[name], inputs[name]

                    def fwd(net=net, inp=inp):
                        with torch.no_grad():
                            return net(inp)

                    times = timed(fwd, sync, args.warmup, args.reps)
                    r = row(f"forward/{label}/{name}/{batch}", batch, times)
                    result["rows"].append(r)
                    log(f"{r['id']:<44} {r['images_per_s']:>12.1f} images/s  (median {r['median_s'] * 1e3:.3f} ms)")

    if args.json:
        print(json.dumps(result, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
