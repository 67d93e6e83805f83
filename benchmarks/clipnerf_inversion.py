"""Inversion of held-out images of a clipnerf run (BENCHMARKS.md, "clipnerf"): time and photometric error.

    .venv/bin/python benchmarks/clipnerf_inversion.py RUN DATA [--views 3]

For the first held-out views of DATA (a category dataset): invert the image at 32x32 and at 64x64 (the full
image) with the default InversionConfig, print seconds, recovered azimuth / elevation and the final mean squared
error against the error of the first pose-search step.
"""

import argparse
import time
from pathlib import Path

from langfield.data import DataConfig, load_dataset
from langfield.methods.clipnerf.inversion import InversionConfig, invert
from langfield.run import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--views", type=int, default=3)
    args = parser.parse_args()
    model = load_run(args.run, "cpu").model
    dataset = load_dataset(DataConfig(data=args.data))
    for index in dataset.test_indices[: args.views]:
        image = dataset.rgb(index)
        for resolution in (32, 64):
            started = time.perf_counter()
            result = invert(model, image, InversionConfig(resolution=resolution))
            seconds = time.perf_counter() - started
            print(f"{dataset.filenames[index]} at {resolution}x{resolution}: {seconds:.1f} s, azimuth {result.azimuth:.0f}, "
                  f"elevation {result.elevation:.0f}, error {result.error:.5f} (first search step {result.losses['search'][0]:.5f})")


if __name__ == "__main__":
    main()
