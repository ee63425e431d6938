"""Two gloo workers train one small model; rank 0 saves the weights (envbuild's Slurm test)."""
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(int(os.environ.get("ENVBUILD_SEED", "0")))  # the same initial weights on every rank
model = DDP(torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
data = torch.Generator().manual_seed(1)
X = torch.randn(512, 8, generator=data)
y = (X * torch.arange(8.0)).sum(1, keepdim=True)
batches = torch.Generator().manual_seed(1000 + rank)  # each rank its own, seeded, shard of the batches
for step in range(30):
    idx = torch.randint(0, 512, (32,), generator=batches)
    opt.zero_grad()
    loss = ((model(X[idx]) - y[idx]) ** 2).mean()
    loss.backward()
    opt.step()
if rank == 0:
    os.makedirs("outputs", exist_ok=True)
    torch.save(model.module.state_dict(), "outputs/ddp.pt")
    print(f"world {world} loss {loss.item():.6f}")
dist.destroy_process_group()
