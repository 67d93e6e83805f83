"""Text and exemplar edits of clipnerf runs with their mappers (BENCHMARKS.md, "clipnerf: edits").

    .venv/bin/python benchmarks/clipnerf_edit.py RUN [RUN_ABLATION ...] --sources 3 --out benchmarks/out/clipnerf_edit
    .venv/bin/python benchmarks/clipnerf_edit.py chair --graders langfield-vision   # the shipped model

For every run (a run folder with `langfield mappers RUN` done, or a packed run that carries its mappers such as
the shipped `chair`), every prompt of PROMPTS and `--sources` training objects
(seeded): the mean embedded-encoder similarity of 8 views (even azimuths, the training cameras' middle elevation)
to the prompt before the edit and after it — both codes edited, the shape code only and the appearance code only;
for the shape-only edit the change of the object's mean colour, for the appearance-only edit the silhouette IoU
(opacity > 0.5) before/after. Exemplar edits: held-out images of other objects of the run's dataset as exemplars,
similarity of the renders to the exemplar's embedding before/after. The time of one feed-forward edit (embed the
text, run the mappers) is measured on new prompts, so the encoder's text cache never helps. Writes RESULTS.json and
grids of before/after images (first view of each) under --out.

Graders other than the model the mappers learnt from (--graders, default langfield-vision, a real ImageNet backbone
under its own head): the same before/after renders (both codes edited), similarity to the prompt embedded by that
encoder; and for the 12 colour prompts, under every grader, the share of views whose top caption among the 12
"a {colour} chair" captions is the prompt's, before and after. The ImageNet classifier (efficientnet-lite0) grades
whether the object still is a chair: the share of 128×128 views (same ring) with a chair class in its top 5
(`imagenet_hits`), before and after the edit. Exemplar edits need the run's dataset; a packed run has none, so they
are skipped there.
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


def colour_hits(images, prompt: str, grader) -> float:
    """The share of ``images`` whose top caption among the 12 colour captions is ``prompt``."""
    probabilities = grader.classify(images, APPEARANCE)
    return float((probabilities.argmax(dim=1) == APPEARANCE.index(prompt)).float().mean())


def other_grades(model, shape, appearance, edited, prompt: str, before, after, graders: dict, classifier) -> dict:
    """The grades of one edit (both codes) by encoders other than the mappers' own, and by the ImageNet classifier."""
    import torch

    from langfield.apps.text_to_3d import imagenet_hits
    from langfield.methods.clipnerf.mappers import render_views
    from langfield.methods.clipnerf.views import ObjectViews

    row = {}
    with torch.no_grad():
        for name, grader in graders.items():
            text = grader.encode_text(prompt)[0]
            for when, images in (("before", before), ("after", after)):
                if name != "own":
                    row[f"{name}_similarity_{when}"] = float((grader.encode_image(images) @ text).mean())
                if prompt in APPEARANCE:
                    row[f"{name}_colour_hits_{when}"] = colour_hits(images, prompt, grader)
        if classifier is not None:
            cameras = ObjectViews.of(model.scene.cameras).ring(len(before), 128)
            for when, (s, a) in (("before", (shape, appearance)), ("after", edited)):
                rgb = render_views(model, cameras, s.expand(len(before), -1), a.expand(len(before), -1))["rgb"]
                row[f"imagenet_chair_{when}"] = statistics.fmean(imagenet_hits(rgb.cpu(), "chair", classifier))
    return row


def report(model, encoder, mappers, shape, appearance, target, resolution: int, grading=None) -> tuple[dict, dict]:
    """The edit of one source towards one target: both codes, the shape code only, the appearance code only.
    ``grading``: (prompt, graders, classifier) to grade the both-codes edit with :func:`other_grades` too."""
    from langfield.methods.clipnerf.mappers import edit_report

    row, images = {}, {}
    for part in ("both", "shape", "appearance"):
        edited = mappers.edit(target, shape, appearance, part)
        figures, before, after = edit_report(model, encoder, (shape, appearance), edited, target, resolution=resolution)
        if part == "both" and grading is not None:
            prompt, graders, classifier = grading
            row.update(other_grades(model, shape, appearance, edited, prompt, before, after, graders, classifier))
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
    parser.add_argument(
        "--graders", nargs="*", default=["langfield-vision"], help="encoders other than the mappers' own to grade with"
    )
    parser.add_argument("--no-imagenet", action="store_true", help="skip the ImageNet chair-class grade")
    args = parser.parse_args()
    import numpy as np
    import torch
    from PIL import Image

    from langfield.apps.editing import load_clipnerf, load_mappers
    from langfield.data import DataConfig, load_dataset
    from langfield.encoders import load_encoder

    args.out.mkdir(parents=True, exist_ok=True)
    results = {"prompts": PROMPTS, "runs": {}}
    classifier = None if args.no_imagenet else load_encoder("efficientnet-lite0")
    for path in args.runs:
        run, model = load_clipnerf(path, "cpu")
        mappers, encoder_name = load_mappers(run)
        encoder = load_encoder(encoder_name)
        graders = {"own": encoder, **{name: load_encoder(name) for name in args.graders if name != encoder_name}}
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
                    (prompt, graders, classifier),
                )
                rows.append({"prompt": prompt, "source": source, **row})
                if k == 0:
                    grid.append([images[n] for n in ("before", "both", "shape", "appearance")])
        # exemplars: held-out views of other objects
        exemplar_rows = []
        exemplar_views = []
        if Path(run.config.data.data).is_dir():
            dataset = load_dataset(DataConfig(data=run.config.data.data))
            exemplar_views = dataset.test_indices[:: max(1, len(dataset.test_indices) // args.exemplars)]
        else:
            print(f"{path}: no dataset on this machine ({run.config.data.data}); exemplar edits skipped")
        for i, view in enumerate(exemplar_views[: args.exemplars]):
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
            "text": {k: mean(k) for k in rows[0] if k not in ("prompt", "source") and "colour_hits" not in k},
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
                k: mean(k, exemplar_rows)
                for k in (exemplar_rows[0] if exemplar_rows else [])
                if k.startswith(("similarity", "iou", "colour"))
            },
            "colour_prompts": {
                k: mean(k, [r for r in rows if r["prompt"] in APPEARANCE])
                for k in rows[0]
                if "colour_hits" in k or (k.startswith(tuple(graders)) and "similarity" in k)
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
