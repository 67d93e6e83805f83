"""The embedded prior on its own (BENCHMARKS.md, "The embedded prior"): samples, and how the embedded CLIP reads them.

    .venv/bin/python benchmarks/prior_samples.py                   # langfield-prior, 2 samples per caption
    .venv/bin/python benchmarks/prior_samples.py --prior PATH.safetensors --guidance-scale 5

Samples (DDIM, 50 steps, classifier-free guidance) one image per seed for every "a {colour} {kind}" caption of the
procedural world (108), classifies each among the same 108 captions with langfield-mini and prints top-1, colour
and kind accuracy. OUT/prior_views.png: six prompts (rows) with the suffixes front / side / back / overhead
(columns), 4x enlarged.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", default="langfield-prior")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/prior"))
    parser.add_argument("--samples", type=int, default=2, help="samples per caption")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--guidance-scale", type=float, default=3.0)
    args = parser.parse_args()
    import numpy as np
    import torch
    from PIL import Image

    from langfield.apps.text_to_3d import candidate_captions
    from langfield.encoders import load_encoder
    from langfield.guidance import load_prior
    from langfield.guidance.sampling import sample_images

    args.out.mkdir(parents=True, exist_ok=True)
    prior, encoder = load_prior(args.prior), load_encoder("langfield-mini")
    candidates = candidate_captions()
    texts = [c[0] for c in candidates]
    started = time.perf_counter()
    hits = {"top1": 0, "colour": 0, "kind": 0}
    for seed in range(args.samples):
        images = sample_images(
            prior, texts, args.steps, args.guidance_scale, generator=torch.Generator().manual_seed(seed)
        )
        top = encoder.classify(images, texts).argmax(dim=1).tolist()
        for truth, guess in zip(candidates, (candidates[i] for i in top)):
            hits["top1"] += truth == guess
            hits["colour"] += truth[1] == guess[1]
            hits["kind"] += truth[2] == guess[2]
    total = len(candidates) * args.samples
    result = {
        "prior": args.prior,
        "samples": total,
        "steps": args.steps,
        "guidance_scale": args.guidance_scale,
        **{k: round(v / total, 4) for k, v in hits.items()},
        "seconds": round(time.perf_counter() - started, 1),
        "chance_top1": round(1 / len(candidates), 4),
    }
    print(json.dumps(result))
    (args.out / "results.json").write_text(json.dumps(result, indent=2))

    rows = ["a red sphere", "a blue cube", "an orange torus", "a yellow chair", "a green mug", "a purple cone"]
    views = ("front", "side", "back", "overhead")
    prompts = [f"{r}, {v} view" for r in rows for v in views]
    images = sample_images(prior, prompts, args.steps, args.guidance_scale, generator=torch.Generator().manual_seed(0))
    grid = (
        images.reshape(len(rows), len(views), *images.shape[1:])
        .permute(0, 2, 1, 3, 4)
        .reshape(len(rows) * images.shape[1], len(views) * images.shape[2], 3)
    )
    picture = Image.fromarray((grid.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8))
    picture.resize((picture.width * 4, picture.height * 4), Image.NEAREST).save(args.out / "prior_views.png")


if __name__ == "__main__":
    main()
