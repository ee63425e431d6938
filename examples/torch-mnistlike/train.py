"""A small convnet on synthetic MNIST-like 12x12 digits made from the seed; trains in seconds on CPU.

No seeding here: `envbuild run` seeds torch, numpy and the DataLoader and turns on deterministic
algorithms before this script imports torch. Weights go to outputs/model.pt.
Run: envbuild run train.py [--epochs N] [--lr LR]
"""

import argparse
import os

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from envbuild import track

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--lr", type=float, default=0.05)
parser.add_argument("--samples", type=int, default=2000)
args = parser.parse_args()
track.log_params(vars(args))
torch.set_num_threads(1)  # fewer threads, fewer reduction orders to worry about


PROTOTYPES = (torch.rand(10, 12, 12) > 0.6).float()  # one random binary "digit" per class


def make_digits(n: int) -> TensorDataset:
    """Samples are shifted, noisy copies of their class's prototype."""
    prototypes = PROTOTYPES
    labels = torch.randint(0, len(prototypes), (n,))
    images = prototypes[labels]
    shifts = torch.randint(-1, 2, (n, 2))
    images = torch.stack([torch.roll(img, tuple(s.tolist()), dims=(0, 1)) for img, s in zip(images, shifts)])
    images = images + 0.3 * torch.randn_like(images)
    return TensorDataset(images.unsqueeze(1), labels)


train = make_digits(args.samples)
test = make_digits(500)
model = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(16 * 3 * 3, 10),
)
opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
loader = DataLoader(train, batch_size=64, shuffle=True)

for epoch in range(args.epochs):
    model.train()
    total = 0.0
    for images, labels in loader:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        opt.step()
        total += loss.item() * len(labels)
    model.eval()
    with torch.no_grad():
        x, y = test.tensors
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    track.log_metrics({"train_loss": total / len(train), "test_accuracy": accuracy}, step=epoch)
    print(f"epoch {epoch}: loss {total / len(train):.4f} accuracy {accuracy:.3f}")

os.makedirs("outputs", exist_ok=True)
torch.save(model.state_dict(), "outputs/model.pt")
