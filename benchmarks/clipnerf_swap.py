"""A clipnerf run's codes swapped (BENCHMARKS.md, "clipnerf"): rows keep one object's shape code, columns one
object's appearance code, all seen from the same camera; the diagonal is each object as trained.

    .venv/bin/python benchmarks/clipnerf_swap.py RUN --objects 0 1 2 3 --out docs/images/clipnerf_swap.png

Also prints how much the silhouette moves when only the appearance code changes (mean IoU of opacity masks > 0.5
between a row's renders: 1.0 means appearance never touched the shape) and when only the shape code changes.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--objects", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--resolution", type=int, default=96)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/clipnerf_swap.png"))
    args = parser.parse_args()
    import numpy as np
    import torch
    from PIL import Image

    from langfield.cameras import orbit_cameras
    from langfield.run import load_run

    model = load_run(args.run, "cpu").model
    cameras = orbit_cameras(torch.tensor([30.0]), torch.tensor(25.0), 1.7, 40.0, args.resolution)
    cameras.c2w[:, 2, 3] += 0.35  # look at the middle of the objects, not their feet
    rows, masks = [], {}
    for s in args.objects:
        row = []
        for a in args.objects:
            model.use_codes(model.shape_codes[s], model.appearance_codes[a])
            out = model.render_camera(cameras, 0, outputs=("rgb", "opacity"))
            masks[s, a] = out["opacity"] > 0.5
            row.append(out["rgb"].clamp(0, 1).numpy())
        rows.append(np.concatenate(row, axis=1))
    grid = (np.concatenate(rows, axis=0) * 255 + 0.5).astype(np.uint8)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(args.out)

    def iou(a, b) -> float:
        return float((a & b).sum()) / max(float((a | b).sum()), 1.0)

    same_shape = [
        iou(masks[s, a], masks[s, b]) for s in args.objects for a, b in itertools.combinations(args.objects, 2)
    ]
    same_look = [
        iou(masks[s, a], masks[t, a]) for a in args.objects for s, t in itertools.combinations(args.objects, 2)
    ]
    print(f"wrote {args.out}")
    print(
        f"silhouette IoU, appearance code changed: {sum(same_shape) / len(same_shape):.4f} (min {min(same_shape):.4f})"
    )
    print(f"silhouette IoU, shape code changed: {sum(same_look) / len(same_look):.4f}")


if __name__ == "__main__":
    main()
