"""Does envbuild's determinism make CUDA training bit-exact? Train a small model twice with the
settings and twice without, and compare the weight hashes.

Needs only torch (+ a CUDA GPU for the real test; no docker, no envbuild install):
    python scripts/gpu_determinism.py [--steps 300] [--out gpu-determinism.json]
The "with" runs call the very functions the in-image hook calls (envbuild_hook.apply_torch etc.).
The model uses ops whose CUDA kernels are nondeterministic by default: index_add_/scatter_add_
(atomics), cuDNN convolution backward, and a TF32-eligible matmul. The figures (digests, torch,
CUDA, cuDNN, driver, GPU) go to --out as JSON. Exits 1 when the two runs with envbuild's settings
differ (or fail), 0 when they are bit-identical; the runs without may differ either way. On a
machine without CUDA it says so and runs the same comparison on CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "envbuild" / "runtime" / "site"))
os.environ.pop("ENVBUILD_SEED", None)  # importing the hook must not install it here
import envbuild_hook  # noqa: E402

SEED = 1234
LABELS = (("without envbuild", False), ("with envbuild", True))


def _net(torch: Any) -> Any:
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
            self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
            self.embed = nn.Parameter(torch.randn(512, 64) * 0.1)
            self.head = nn.Linear(64, 10)

        def forward(self, x: Any, ids: Any) -> Any:
            h = torch.relu(self.conv2(torch.relu(self.conv1(x))))  # cuDNN conv; backward uses atomics
            h = h.mean(dim=(2, 3))
            # scatter into buckets: index_add_ on CUDA is atomic-add, order-dependent in float32
            buckets = torch.zeros(64, 64, device=x.device).index_add_(0, ids % 64, h + self.embed[ids])
            pooled = torch.zeros_like(h).scatter_add_(0, (ids % h.shape[0]).unsqueeze(1).expand_as(h), h)
            return self.head(pooled + buckets[ids % 64])

    return Net()


def train(device: str, steps: int, with_envbuild: bool) -> str:
    import torch
    from torch import nn

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
    model = _net(torch).to(device)
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


def compare(train_fn: Callable[[bool], str]) -> dict[str, Any]:
    """Two runs per label; {label: {"digests": [...], "identical": bool}} (an exception counts as differing)."""
    results: dict[str, Any] = {}
    for label, with_envbuild in LABELS:
        try:
            digests = [train_fn(with_envbuild) for _ in range(2)]
        except RuntimeError as e:  # e.g. an op with no deterministic kernel on this torch
            results[label] = {"digests": [], "identical": False, "error": str(e)}
            continue
        results[label] = {"digests": digests, "identical": digests[0] == digests[1]}
    return results


def report(results: dict[str, Any], facts: dict[str, Any], out: Path) -> int:
    """Print the comparison, write every figure to `out`; 1 unless envbuild's settings gave identical weights."""
    for label, r in results.items():
        shown = "  ".join(d[:16] for d in r["digests"]) or f"failed: {r.get('error')}"
        print(f"{label:>17}: {shown}  -> {'bit-identical' if r['identical'] else 'DIFFERENT'}")
    ok = results["with envbuild"]["identical"]
    print(f"envbuild settings {'gave' if ok else 'did NOT give'} bit-identical weights on {facts['device']} "
          f"({facts['steps']} steps); figures in {out}")
    out.write_text(json.dumps({**facts, "results": results, "bit_identical_with_envbuild": ok}, indent=2) + "\n")
    return 0 if ok else 1


def _driver() -> str | None:
    try:
        proc = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.splitlines()[0].strip() if proc.returncode == 0 and proc.stdout.strip() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("gpu-determinism.json"), help="where the figures go (JSON)")
    args = parser.parse_args(argv)
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what `envbuild run` sets (DESIGN 7)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    facts: dict[str, Any] = {"device": device, "steps": args.steps, "torch": torch.__version__,
                             "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "driver": _driver(),
                             "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None}
    if device == "cpu":
        print(f"torch {torch.__version__}: no CUDA GPU here; skipping the CUDA test, comparing on CPU instead")
        facts["steps"] = args.steps = min(args.steps, 10)
    else:
        print(f"torch {facts['torch']}, CUDA {facts['cuda']}, cuDNN {facts['cudnn']}, driver {facts['driver']}, "
              f"GPU {facts['gpu']}")
    return report(compare(lambda with_envbuild: train(device, args.steps, with_envbuild)), facts, args.out)


if __name__ == "__main__":
    sys.exit(main())
