"""Speed of the embedded encoder on this CPU: loading, images, text (first call and cached).

    .venv/bin/python benchmarks/encoders.py [--encoder langfield-mini]

Accuracy is measured by `langfield clip eval` (see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from langfield.apps.zeroshot import CLASSES, class_prompts
from langfield.encoders import load_encoder


def timed(function, repeats: int = 1) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--encoder", default="langfield-mini")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    start = time.perf_counter()
    encoder = load_encoder(args.encoder)
    print(f"load {args.encoder}: {time.perf_counter() - start:.2f} s")
    images = torch.rand(64, 64, 64, 3)
    with torch.no_grad():
        first = timed(lambda: encoder.encode_image(images))[0]
        warm = timed(lambda: encoder.encode_image(images), 10)
    print(
        f"encode 64 images of 64x64: first call {first:.3f} s, then median {statistics.median(warm):.3f} s (max "
        f"{max(warm):.3f} s)"
    )
    image = images[:8].clone().requires_grad_(True)
    backward = timed(lambda: encoder.encode_image(image).sum().backward(), 5)
    print(f"encode + backward to the pixels, 8 images: median {statistics.median(backward):.3f} s")
    texts = [class_caption for c, k in CLASSES for class_caption in class_prompts(c, k, "train")]
    first = timed(lambda: encoder.encode_text(texts))[0]
    cached = timed(lambda: encoder.encode_text(texts), 5)
    print(f"encode {len(texts)} captions: first {first:.3f} s, cached median {statistics.median(cached) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
