#!/usr/bin/env python3
"""PyTorch twin of `cargo bench --bench inception`: the FID Inception-v3 network with the same
layer shapes (built from the layer table `inception-fid-architecture.json`), timed on the same
work: `pool3` features of 32×32 images, resized bilinearly to 299×299 first.

Weights are random (time does not depend on them); every convolution carries a bias and a
ReLU, which is what the crate runs once the batch norm is folded in. Prints one JSON line per
batch size: images per second from the median of the timed repetitions.

    .venv-bench/bin/python bench/inception_twin.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_TABLE = Path(__file__).resolve().parent.parent.parent / "shared/models/inception-fid-architecture.json"


def pair(v):
    return tuple(v) if isinstance(v, list) else (v, v)


class Conv(nn.Module):
    def __init__(self, spec: dict):
        super().__init__()
        self.conv = nn.Conv2d(spec["in"], spec["out"], pair(spec["kernel"]), spec["stride"], pair(spec["padding"]))

    def forward(self, x):
        return F.relu(self.conv(x))


class Pool(nn.Module):
    def __init__(self, spec: dict):
        super().__init__()
        self.spec = spec

    def forward(self, x):
        s = self.spec
        if s["op"] == "max_pool":
            return F.max_pool2d(x, pair(s["kernel"]), pair(s["stride"]), pair(s["padding"]))
        include_pad = "count_include_pad false" not in s.get("notes", "")
        return F.avg_pool2d(x, pair(s["kernel"]), pair(s["stride"]), pair(s["padding"]), count_include_pad=include_pad)


def leaf(spec: dict) -> nn.Module:
    return Conv(spec) if spec["op"] == "conv" else Pool(spec)


def build(spec: dict) -> nn.Module:
    if "op" in spec:
        return leaf(spec)
    kind = spec["kind"]
    children = [build(c) for c in spec["children"]]
    if kind == "sequential":
        return nn.Sequential(*children)
    if kind == "concat_channels":
        return Concat(children)
    return Expanded(spec)


class Concat(nn.Module):
    def __init__(self, children):
        super().__init__()
        self.branches = nn.ModuleList(children)

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], 1)


class Expanded(nn.Module):
    """mixed_9 / mixed_10: the branch dataflow of the layer table."""

    def __init__(self, spec: dict):
        super().__init__()
        prefix = spec["name"] + "."
        self.layers = nn.ModuleDict({c["name"][len(prefix):]: leaf(c) for c in spec["children"]})

    def forward(self, x):
        m = self.layers
        a = m["tower_conv"](x)
        b = m["tower_1_conv_1"](m["tower_1_conv"](x))
        pooled = m["tower_2_conv"](m["tower_2_pool"](x))
        return torch.cat(
            [
                m["conv"](x),
                m["tower_mixed_conv"](a),
                m["tower_mixed_conv_1"](a),
                m["tower_1_mixed_conv"](b),
                m["tower_1_mixed_conv_1"](b),
                pooled,
            ],
            1,
        )


class Inception(nn.Module):
    def __init__(self, table: dict):
        super().__init__()
        self.body = nn.Sequential(*[build(layer) for layer in table["layers"]])

    def forward(self, images):
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        return self.body(x).flatten(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    net = Inception(json.loads(args.table.read_text())).eval()
    for batch in args.batches:
        images = torch.rand(batch, 3, 32, 32) * 2 - 1
        with torch.no_grad():
            features = net(images)
            assert features.shape == (batch, 2048), features.shape
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                net(images)
                times.append(time.perf_counter() - start)
        median = statistics.median(times)
        print(json.dumps({"row": f"inception/features/{batch}", "images_per_second": batch / median,
                          "median_s": median, "threads": args.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
