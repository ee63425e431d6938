#!/usr/bin/env python3
"""Does envbuild's determinism make CUDA training bit-exact? Train a small model twice with the
settings and twice without, and compare the weight hashes.

Needs only torch (+ a CUDA GPU for the real test; no docker, no envbuild install):
    python scripts/gpu_determinism.py [--steps 300]
The "with" runs call the very functions the in-image hook calls (envbuild_hook.apply_torch etc.).
The model uses ops whose CUDA kernels are nondeterministic by default: index_add_/scatter_add_
(atomics), cuDNN convolution backward, and a TF32-eligible matmul. Exits 0 either way; on a
machine without CUDA it says so and runs the same comparison on CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "envbuild" / "runtime" / "site"))
os.environ.pop("ENVBUILD_SEED", None)  # importing the hook must not install it here
import envbuild_hook  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

SEED = 1234


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.embed = nn.Parameter(torch.randn(512, 64) * 0.1)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv2(torch.relu(self.conv1(x))))  # cuDNN conv; backward uses atomics
        h = h.mean(dim=(2, 3))
        # scatter into buckets: index_add_ on CUDA is atomic-add, order-dependent in float32
        buckets = torch.zeros(64, 64, device=x.device).index_add_(0, ids % 64, h + self.embed[ids])
        pooled = torch.zeros_like(h).scatter_add_(0, (ids % h.shape[0]).unsqueeze(1).expand_as(h), h)
        return self.head(pooled + buckets[ids % 64])


def train(device: str, steps: int, with_envbuild: bool) -> str:
    if with_envbuild:
        envbuild_hook.seed_random(SEED)
        envbuild_hook.apply_torch(torch, SEED, deterministic=True)
    else:  # the same seed, PyTorch's default (fast, nondeterministic) kernels
        torch.manual_seed(SEED)
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.deterministic = False
        if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
            torch.backends.cuda.matmul.fp32_precision = "tf32"
            torch.backends.cudnn.conv.fp32_precision = "tf32"
        else:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
    model = Net().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator(device="cpu").manual_seed(SEED)
    for _ in range(steps):
        x = torch.randn(128, 3, 16, 16, generator=gen).to(device)
        ids = torch.randint(0, 512, (128,), generator=gen).to(device)
        y = torch.randint(0, 10, (128,), generator=gen).to(device)
        loss = nn.functional.cross_entropy(model(x, ids), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what `envbuild run` sets (DESIGN 7)
    if torch.cuda.is_available():
        device = "cuda"
        print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
              f"GPU {torch.cuda.get_device_name(0)}")
    else:
        device = "cpu"
        print(f"torch {torch.__version__}: no CUDA GPU here; skipping the CUDA test, comparing on CPU instead")
        args.steps = min(args.steps, 10)
    results = {}
    for label, with_envbuild in (("without envbuild", False), ("with envbuild", True)):
        try:
            hashes = [train(device, args.steps, with_envbuild) for _ in range(2)]
        except RuntimeError as e:  # e.g. an op with no deterministic kernel on this torch
            print(f"{label:>17}: failed: {e}")
            results[label] = ["error", "error2"]
            continue
        results[label] = hashes
        same = "bit-identical" if hashes[0] == hashes[1] else "DIFFERENT"
        print(f"{label:>17}: {hashes[0][:16]}  {hashes[1][:16]}  -> {same}")
    ok = results["with envbuild"][0] == results["with envbuild"][1]
    print(f"envbuild settings {'gave' if ok else 'did NOT give'} bit-identical weights on {device} "
          f"({args.steps} steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
