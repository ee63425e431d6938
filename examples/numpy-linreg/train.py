"""Linear regression by minibatch SGD on data/points.csv, with label noise and init from the seed.

No seeding here: `envbuild run` seeds numpy before this script imports it, so the same seed gives
the same weights, bit for bit. Run: envbuild run train.py [--epochs N] [--lr LR]
"""

import argparse
import json
import os

import numpy as np

from envbuild import track

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--batch", type=int, default=16)
args = parser.parse_args()
track.log_params(vars(args))

data = np.loadtxt("data/points.csv", delimiter=",", skiprows=1)
x, y = data[:, :3], data[:, 3] + np.random.normal(0, 0.05, len(data))  # noise drawn from the seed
w, b = np.random.normal(0, 1, 3), 0.0
for epoch in range(args.epochs):
    order = np.random.permutation(len(x))
    for i in range(0, len(x), args.batch):
        idx = order[i:i + args.batch]
        err = x[idx] @ w + b - y[idx]
        w -= args.lr * x[idx].T @ err / len(idx)
        b -= args.lr * err.mean()
    loss = float(np.mean((x @ w + b - y) ** 2))
    track.log_metrics({"loss": loss}, step=epoch)

os.makedirs("outputs", exist_ok=True)
np.save("outputs/weights.npy", np.append(w, b))
with open("outputs/metrics.json", "w") as f:
    json.dump({"final_loss": loss, "w0": float(w[0])}, f)
print(f"weights {np.round(w, 4).tolist()} bias {b:.4f} loss {loss:.6f}")
