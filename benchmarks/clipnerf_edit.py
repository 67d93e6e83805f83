"""Text and exemplar edits of clipnerf runs with their mappers (BENCHMARKS.md, "clipnerf: edits").

    .venv/bin/python benchmarks/clipnerf_edit.py RUN [RUN_ABLATION ...] --sources 3 --out benchmarks/out/clipnerf_edit

For every run (each needs `langfield mappers RUN` first), every prompt of PROMPTS and `--sources` training objects
(seeded): the mean embedded-encoder similarity of 8 views (even azimuths, the training cameras' middle elevation)
to the prompt before the edit and after it — both codes edited, the shape code only and the appearance code only;
for the shape-only edit the change of the object's mean colour, for the appearance-only edit the silhouette IoU
(opacity > 0.5) before/after. Exemplar edits: held-out images of other objects of the run's dataset as exemplars,
similarity of the renders to the exemplar's embedding before/after. The time of one feed-forward edit (embed the
text, run the mappers) is measured on new prompts, so the encoder's text cache never helps. Writes RESULTS.json and
grids of before/after images (first view of each) under --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

APPEARANCE = [
    f"a {c} chair"
    for c in ("red", "orange", "yellow", "green", "blue", "cyan", "purple", "pink", "brown", "white", "black", "grey")
]
MATERIAL = ["a glossy black chair", "a shiny white chair", "a matte green chair"]
SIZE = ["a small chair", "a large chair", "a big chair", "a small red chair", "a large blue chair"]
EVALUATION = [
    "a crimson chair",
    "an emerald chair",
    "a navy blue chair",
    "a tiny chair",
    "a huge chair",
]  # words never trained on
PROMPTS = APPEARANCE + MATERIAL + SIZE + EVALUATION


def report(model, encoder, mappers, shape, appearance, target, resolution: int) -> tuple[dict, dict]:
    """The edit of one source towards one target: both codes, the shape code only, the appearance code only."""
    from langfield.methods.clipnerf.mappers import edit_report

    row, images = {}, {}
    for part in ("both", "shape", "appearance"):
        figures, before, after = edit_report(
            model,
            encoder,
            (shape, appearance),
            mappers.edit(target, shape, appearance, part),
            target,
            resolution=resolution,
        )
        row["similarity_before"] = figures["similarity_before"]
        row[f"similarity_{part}"] = figures["similarity_after"]
        row[f"iou_{part}_edit"] = figures["silhouette_iou"]
        row[f"colour_change_{part}_edit"] = figures["mean_colour_change"]
        images["before"], images[part] = before[0], after[0]
    return row, images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--sources", type=int, default=3, help="source objects per prompt")
    parser.add_argument("--exemplars", type=int, default=6)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/clipnerf_edit"))
    args = parser.parse_args()
    import numpy as np
    import torch
    from PIL import Image

    from langfield.data import DataConfig, load_dataset
    from langfield.encoders import load_encoder
    from langfield.methods.clipnerf.mappers import ClipMappers
    from langfield.run import load_run

    args.out.mkdir(parents=True, exist_ok=True)
    results = {"prompts": PROMPTS, "runs": {}}
    for path in args.runs:
        run = load_run(path, "cpu")
        model = run.model
        mappers, encoder_name = ClipMappers.load(path / "mappers.safetensors")
        encoder = load_encoder(encoder_name)
        sources = torch.randperm(model.objects, generator=torch.Generator().manual_seed(0))[: args.sources].tolist()
        rows, grid = [], []
        started = time.perf_counter()
        for prompt in PROMPTS:
            target = encoder.encode_text(prompt)[0]
            for k, source in enumerate(sources):
                row, images = report(
                    model,
                    encoder,
                    mappers,
                    model.shape_codes.detach()[source],
                    model.appearance_codes.detach()[source],
                    target,
                    args.resolution,
                )
                rows.append({"prompt": prompt, "source": source, **row})
                if k == 0:
                    grid.append([images[n] for n in ("before", "both", "shape", "appearance")])
        # exemplars: held-out views of other objects
        dataset = load_dataset(DataConfig(data=run.config.data.data))
        exemplar_rows = []
        for i, view in enumerate(
            dataset.test_indices[:: max(1, len(dataset.test_indices) // args.exemplars)][: args.exemplars]
        ):
            with torch.no_grad():
                target = encoder.encode_image(dataset.rgb(view))[0]
            source = sources[i % len(sources)]
            row, images = report(
                model,
                encoder,
                mappers,
                model.shape_codes.detach()[source],
                model.appearance_codes.detach()[source],
                target,
                args.resolution,
            )
            exemplar_rows.append(
                {"exemplar_view": view, "exemplar_object": int(dataset.objects[view]), "source": source, **row}
            )
            grid.append([dataset.rgb(view)] + [images[n] for n in ("before", "both", "appearance")])
        # one feed-forward edit, timed on prompts the text cache has not seen
        timings = []
        for prompt in ("a violet chair with a tall back", "a wide scarlet chair", "a small glossy pink chair"):
            t0 = time.perf_counter()
            mappers.edit(
                encoder.encode_text(prompt)[0], model.shape_codes.detach()[0], model.appearance_codes.detach()[0]
            )
            timings.append(time.perf_counter() - t0)

        def mean(key, subset=rows) -> float:
            return round(statistics.fmean(r[key] for r in subset), 4)

        def by(prompts) -> dict:
            subset = [r for r in rows if r["prompt"] in prompts]
            return {
                k: mean(k, subset)
                for k in ("similarity_before", "similarity_both", "similarity_shape", "similarity_appearance")
            }

        summary = {
            "objects": model.objects,
            "disentangled": bool(run.config.model.field.disentangled),
            "sources": sources,
            "seconds": round(time.perf_counter() - started, 1),
            "text": {k: mean(k) for k in rows[0] if k not in ("prompt", "source")},
            "rising": sum(r["similarity_both"] > r["similarity_before"] for r in rows) / len(rows),
            "by_group": {
                name: by(group)
                for name, group in (
                    ("colour", APPEARANCE),
                    ("material", MATERIAL),
                    ("size", SIZE),
                    ("evaluation_words", EVALUATION),
                )
            },
            "exemplar": {
                k: mean(k, exemplar_rows) for k in exemplar_rows[0] if k.startswith(("similarity", "iou", "colour"))
            },
            "edit_seconds": [round(t, 4) for t in timings],
        }
        results["runs"][str(path)] = {"summary": summary, "rows": rows, "exemplar_rows": exemplar_rows}
        print(json.dumps({str(path): summary}, indent=2))
        sheet = np.concatenate(
            [np.concatenate([np.asarray(im.clamp(0, 1)) for im in line], axis=1) for line in grid], axis=0
        )
        Image.fromarray((sheet * 255 + 0.5).astype(np.uint8)).save(args.out / f"{path.name}_grid.png")
    (args.out / "RESULTS.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
