"""How much can an encoder tell a few-view render from the truth? The signal the semantic-consistency loss relies on.

    .venv/bin/python benchmarks/dietnerf_signal.py RUN [RUN ...] [--encoders langfield-mini langfield-mini-random]

For a run trained on few views (`nerf`, say), every held-out view is rendered and embedded next to its ground
truth. DietNeRF's loss compares a render with the training views' embeddings; it can only help when a good image is
closer to them than a flawed render is. Printed per encoder: the mean cosine of the training views with each
other; of the held-out ground truth and of the renders with their nearest training view and with the mean training
embedding; and in how many views the ground truth is the closer of the two.
"""

from __future__ import annotations

import argparse

import torch
from torch.nn import functional as F

from langfield.data import load_dataset
from langfield.encoders import load_encoder
from langfield.run import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--encoders", nargs="+", default=["langfield-mini", "langfield-mini-random"])
    args = parser.parse_args()
    print(
        "| run | encoder | train vs train | truth vs nearest train | render vs nearest train | truth vs mean | "
        "render vs mean | truth closer |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for path in args.runs:
        run = load_run(path, "cpu")
        dataset = load_dataset(run.config.data)
        train, test = dataset.train_indices, dataset.test_indices
        truth = torch.stack([dataset.rgb(i) for i in test])
        with torch.no_grad():
            renders = torch.stack([run.model.render_camera(dataset.cameras, i)["rgb"].cpu() for i in test])
        directions = F.normalize(dataset.cameras.origins - dataset.aabb.mean(dim=0), dim=-1)
        nearest = (directions[test] @ directions[train].T).argmax(dim=1)
        for spec in args.encoders:
            encoder = load_encoder(spec)
            with torch.no_grad():
                t = encoder.encode_image(torch.stack([dataset.rgb(i) for i in train]))
                g, r = encoder.encode_image(truth), encoder.encode_image(renders)
            mean = F.normalize(t.mean(dim=0), dim=0)
            off_diagonal = (t @ t.T)[~torch.eye(len(t), dtype=torch.bool)].mean()
            g_near, r_near = (g * t[nearest]).sum(-1), (r * t[nearest]).sum(-1)
            print(
                f"| {path} | {spec} | {off_diagonal:.3f} | {g_near.mean():.3f} | {r_near.mean():.3f} | "
                f"{(g @ mean).mean():.3f} | "
                f"{(r @ mean).mean():.3f} | {int((g_near > r_near).sum())} / {len(test)} |"
            )


if __name__ == "__main__":
    main()
