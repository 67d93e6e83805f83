"""Throughput of the procedural world's labelled images on this CPU (rendering only, in memory).

.venv/bin/python benchmarks/world_images.py
"""

from __future__ import annotations

import time

import torch

from langfield.world.images import crop_images, object_images


def rate(stream, count: int) -> float:
    start = time.perf_counter()
    n = sum(1 for _ in stream)
    assert n == count
    return count / (time.perf_counter() - start)


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"object images 64x64: {rate(object_images(1000, 2048, 64), 2048):.0f} images/s")
    print(f"object images 128x128: {rate(object_images(1000, 512, 128), 512):.0f} images/s")
    print(f"crop images 64x64: {rate(crop_images(1000, 100, 64), 100):.1f} images/s")


if __name__ == "__main__":
    main()
