"""What the crop pyramid itself knows: LERF's localisation protocol answered straight from the encoder's crop
embeddings of the *ground-truth* held-out images (no radiance field, no language field). This is the signal lerf
distils, so its accuracy is roughly the ceiling of a trained run; it is also how the query settings (scales,
smoothing) were chosen, on the development scene (seed 0), without training anything.

    .venv/bin/langfield world scene --seed 0 --objects 6 --views 100 --resolution 100 --out /tmp/ws2
    .venv/bin/python benchmarks/lerf_oracle.py /tmp/ws2 [--encoder langfield-mini]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from langfield.apps.localization import mask_path
from langfield.data import DataConfig, load_dataset
from langfield.encoders import load_encoder
from langfield.methods.lerf.config import CANONICAL_PHRASES, LERF_FRACTIONS
from langfield.methods.lerf.pyramid import PyramidSettings, build_pyramid
from langfield.methods.lerf.query import relevancy, smooth

ALL_SCALES = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
DEFAULT_SCALES = (0.1, 0.15, 0.2, 0.25, 0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scene", type=Path)
    parser.add_argument("--encoder", default="langfield-mini")
    parser.add_argument("--smoothing", type=float, nargs="+", default=[0.0, 0.01, 0.02])
    args = parser.parse_args()
    encoder = load_encoder(args.encoder)
    dataset = load_dataset(DataConfig(data=args.scene))
    objects = json.loads((args.scene / "objects.json").read_text())["objects"]
    test = torch.tensor(dataset.test_indices)
    rgba = dataset.images[test].float()
    images = rgba[..., :3] + (1 - rgba[..., 3:]) * dataset.background
    surface = rgba[..., 3].reshape(len(test), -1) > 0.5
    pyramid = build_pyramid(images, encoder, PyramidSettings(LERF_FRACTIONS, 0.5))
    canonical = encoder.encode_text(list(CANONICAL_PHRASES))
    h, w = images.shape[1:3]
    pixels = torch.arange(h * w)
    print("| query scales | smoothing | localisation | training wordings | evaluation wordings |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for scales in (ALL_SCALES, DEFAULT_SCALES):
        for sigma in args.smoothing:
            hits: dict[str, list[bool]] = {"train": [], "eval": []}
            for k, index in enumerate(dataset.test_indices):
                ids = np.asarray(Image.open(mask_path(args.scene, dataset.filenames[index]))).reshape(-1)
                jobs = [
                    (o["id"], wording, text)
                    for o in objects
                    if (ids == o["id"]).mean() >= 0.005
                    for wording in ("train", "eval")
                    for text in o["captions"][wording]
                ]
                if not jobs:
                    continue
                queries = encoder.encode_text([text for _, _, text in jobs])
                best = None
                for fraction in scales:
                    embedding = F.normalize(
                        pyramid.target(torch.full_like(pixels, k), pixels, torch.full((h * w,), fraction)), dim=-1
                    )
                    maps = (
                        smooth(relevancy(embedding, queries, canonical).reshape(-1, h, w), sigma * h).reshape(
                            len(jobs), -1
                        )
                        * surface[k]
                    )
                    if best is None:
                        best = maps
                    else:
                        better = maps.max(1).values > best.max(1).values
                        best[better] = maps[better]
                for (target, wording, _), pixel in zip(jobs, best.argmax(1).tolist()):
                    hits[wording].append(int(ids[pixel]) == target)
            every = hits["train"] + hits["eval"]
            rate = lambda values: 100 * sum(values) / max(len(values), 1)  # noqa: E731
            print(
                f"| {scales[0]:.2f}–{scales[-1]:.2f} | {sigma:.2f} | {rate(every):.1f} % | {rate(hits['train']):.1f} "
                f"% | {rate(hits['eval']):.1f} % |"
            )


if __name__ == "__main__":
    main()
