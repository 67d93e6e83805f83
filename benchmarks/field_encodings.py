"""Why the `nerf` field is a dense channels-last grid: forward+backward cost per sample of the candidate encodings
on this CPU, at the sizes the method uses.

    .venv/bin/python benchmarks/field_encodings.py
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from langfield.fields import DenseGrid

N = 200_000
torch.manual_seed(0)


def timed(fn, repeats: int = 5) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def report(name: str, seconds: float) -> None:
    print(f"| {name} | {seconds * 1e3:.1f} | {N / seconds / 1e6:.2f} |")


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {N:,} samples, forward + backward\n")
    print("| encoding | ms | M samples/s |")
    print("| --- | --- | --- |")
    x = torch.rand(N, 3) * 2 - 1
    aabb = torch.tensor([[-1.0] * 3, [1.0] * 3])
    for channels in (1, 12):
        volume = torch.randn(1, channels, 128, 128, 128, requires_grad=True)
        coords = x.view(1, 1, 1, N, 3)
        report(
            f"grid_sample 128^3 x {channels}",
            timed(lambda: F.grid_sample(volume, coords, align_corners=True).sum().backward()),
        )
        grid = DenseGrid(channels, (128, 128, 128), aabb, init_std=0.1)
        report(f"DenseGrid (embedding_bag + index_add) 128^3 x {channels}", timed(lambda: grid(x).sum().backward()))
    planes = torch.randn(3, 16, 128, 128, requires_grad=True)
    lines = torch.randn(3, 16, 128, 1, requires_grad=True)

    def vm() -> None:
        pc = torch.stack([x[:, [0, 1]], x[:, [0, 2]], x[:, [1, 2]]]).view(3, -1, 1, 2)
        lc = torch.stack([x[:, 2], x[:, 1], x[:, 0]])
        lc = torch.stack([torch.zeros_like(lc), lc], -1).view(3, -1, 1, 2)
        (F.grid_sample(planes, pc, align_corners=True) * F.grid_sample(lines, lc, align_corners=True)).sum().backward()

    report("TensoRF VM (3 planes + 3 lines, 16 components, grid_sample)", timed(vm))
    for width in (64, 128):
        mlp = torch.nn.Sequential(
            torch.nn.Linear(39, width),
            torch.nn.ReLU(),
            torch.nn.Linear(width, width),
            torch.nn.ReLU(),
            torch.nn.Linear(width, 3),
        )
        features = torch.randn(N, 39)
        report(f"colour MLP 39 -> {width} -> {width} -> 3", timed(lambda: mlp(features).sum().backward()))
    parameters = torch.nn.Parameter(torch.randn(8_000_000))
    parameters.grad = torch.randn_like(parameters)
    optimizer = torch.optim.Adam([parameters], fused=True)
    print(f"\nfused Adam step over 8M grid parameters: {timed(optimizer.step) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
