"""Inversion of held-out images of a clipnerf run (BENCHMARKS.md, "clipnerf"): time and photometric error.

    .venv/bin/python benchmarks/clipnerf_inversion.py RUN DATA [--views 3] [--every 1] [--resolutions 32 64]

For held-out views of DATA (a category dataset; the first --views, taking every --every-th: 32 with 3 views per
object gives one view of each of several objects): invert the image at each resolution (64: the full image) with
the default InversionConfig, print seconds, recovered azimuth / elevation against the truth (from the view's
camera) and the final mean squared error against the error of the first pose-search step.
"""

import argparse
import time
from pathlib import Path

import torch

from langfield.data import DataConfig, load_dataset
from langfield.methods.clipnerf.inversion import InversionConfig, invert
from langfield.run import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[32, 64])
    args = parser.parse_args()
    import math

    from langfield.methods.clipnerf.views import ObjectViews

    model = load_run(args.run, "cpu").model
    dataset = load_dataset(DataConfig(data=args.data))
    center = ObjectViews.of(model.scene.cameras).center
    for index in dataset.test_indices[:: args.every][: args.views]:
        image = dataset.rgb(index)
        eye = dataset.cameras.c2w[index][:, 3] - torch.tensor(center)
        # azimuth 0 in front of the object (-y), counter-clockwise seen from above
        azimuth = math.degrees(math.atan2(float(eye[0]), float(-eye[1]))) % 360
        elevation = math.degrees(math.asin(float(eye[2] / eye.norm())))
        for resolution in args.resolutions:
            started = time.perf_counter()
            result = invert(model, image, InversionConfig(resolution=resolution))
            seconds = time.perf_counter() - started
            off = abs((result.azimuth - azimuth + 180) % 360 - 180)
            print(
                f"{dataset.filenames[index]} at {resolution}x{resolution}: {seconds:.1f} s, azimuth "
                f"{result.azimuth % 360:.0f} "
                f"(true {azimuth:.0f}, off by {off:.0f}), elevation {result.elevation:.0f} (true {elevation:.0f}), "
                f"error {result.error:.5f} (first search step {result.losses['search'][0]:.5f})"
            )


if __name__ == "__main__":
    main()
