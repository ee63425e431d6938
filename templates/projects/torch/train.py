"""A small MLP on synthetic data: a starting point to replace with your own training loop."""

from pathlib import Path

import torch

from envbuild import track

device = "cuda" if torch.cuda.is_available() else "cpu"
# no seeding here: `envbuild run` seeds torch with the spec's seed before this script starts
x = torch.randn(512, 16)
y = (x[:, :4].sum(dim=1, keepdim=True) > 0).float()
model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1)).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(50):
    opt.zero_grad()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x.to(device)), y.to(device))
    loss.backward()
    opt.step()
    track.log_metrics({"loss": float(loss)}, step=step)
Path("outputs").mkdir(exist_ok=True)
torch.save(model.state_dict(), "outputs/model.pt")
print(f"final loss {float(loss):.6f}")
