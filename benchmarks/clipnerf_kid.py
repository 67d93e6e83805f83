"""Generator quality of clipnerf runs: KID between renders and real images of the category, in the embedded image
encoder's feature space (BENCHMARKS.md, "clipnerf: generator quality").

    .venv/bin/python benchmarks/clipnerf_kid.py RUN [RUN ...] --data DATASET --samples 192

Real: the dataset's held-out views (every 8th view of each object, never trained on by either regime). Generated:
`--samples` renders from random cameras of the training distribution, with codes
- auto-decoder runs: `training codes` (a random training object's codes) and `sampled codes` (drawn from a Gaussian
  fitted to the training codes, per dimension: new objects);
- adversarial runs: codes drawn from the prior the generator was trained with.
Features: langfield-mini's unit image embeddings. KID × 10³ (mean ± std over 10 subsets of 100). Also writes a
contact sheet of the first 16 generated images per run and code source under --out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument(
        "--data", type=Path, required=True, help="the category dataset (its held-out views are the real images)"
    )
    parser.add_argument("--samples", type=int, default=192)
    parser.add_argument("--encoder", default="langfield-mini")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/clipnerf_kid"))
    args = parser.parse_args()
    import numpy as np
    import torch
    from PIL import Image

    from langfield.data import DataConfig, load_dataset
    from langfield.encoders import load_encoder
    from langfield.methods.clipnerf.mappers import render_views
    from langfield.methods.clipnerf.views import ObjectViews
    from langfield.run import load_run
    from langfield.train.metrics import kernel_distance

    encoder = load_encoder(args.encoder)
    dataset = load_dataset(DataConfig(data=args.data))
    real_images = torch.stack([dataset.rgb(i) for i in dataset.test_indices])
    with torch.no_grad():
        real = torch.cat([encoder.encode_image(real_images[i : i + 64]) for i in range(0, len(real_images), 64)])
    resolution = real_images.shape[1]
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"real_images": len(real), "encoder": encoder.name}
    for path in args.runs:
        model = load_run(path, "cpu").model
        views = ObjectViews.of(model.scene.cameras)
        generator = torch.Generator().manual_seed(0)
        sources = {}
        if model.config.regime == "adversarial":
            sources["prior codes"] = model.sample_codes(args.samples, generator)
        else:
            sources["training codes"] = model.sample_codes(args.samples, generator)
            (ms, ss), (ma, sa) = model.code_statistics()
            sources["sampled codes"] = (
                ms + ss * torch.randn(args.samples, len(ms), generator=generator),
                ma + sa * torch.randn(args.samples, len(ma), generator=generator),
            )
        for name, (shape, appearance) in sources.items():
            cameras = views.sample(args.samples, resolution, generator)
            with torch.no_grad():
                images = torch.cat(
                    [
                        render_views(
                            model,
                            cameras[torch.arange(i, min(i + 4, args.samples))],
                            shape[i : i + 4],
                            appearance[i : i + 4],
                        )["rgb"]
                        for i in range(0, args.samples, 4)
                    ]
                )
                fake = torch.cat([encoder.encode_image(images[i : i + 64]) for i in range(0, len(images), 64)])
            mean, std = kernel_distance(real, fake, generator=torch.Generator().manual_seed(1))
            key = f"{path} ({model.config.regime}, {name})"
            results[key] = {"kid_x1000": round(1000 * mean, 3), "std_x1000": round(1000 * std, 3)}
            print(key, results[key])
            sheet = np.concatenate(
                [
                    np.concatenate([np.asarray(im.clamp(0, 1)) for im in images[r * 8 : r * 8 + 8]], axis=1)
                    for r in range(2)
                ],
                axis=0,
            )
            Image.fromarray((sheet * 255 + 0.5).astype(np.uint8)).save(
                args.out / f"{path.name}_{name.replace(' ', '_')}.png"
            )
    # the floor: two disjoint halves of the real images
    half = len(real) // 2
    mean, std = kernel_distance(
        real[:half], real[half:], subset_size=min(100, half), generator=torch.Generator().manual_seed(1)
    )
    results["real vs real (two halves)"] = {"kid_x1000": round(1000 * mean, 3), "std_x1000": round(1000 * std, 3)}
    print("real vs real (two halves)", results["real vs real (two halves)"])
    (args.out / "RESULTS.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
