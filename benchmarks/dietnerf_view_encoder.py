"""An experiment for BENCHMARKS.md (dietnerf): give the semantic loss an encoder that *does* tell a few-view render
from the truth, and see whether its gradient then helps. It does not (see BENCHMARKS.md); this script reproduces it.

    .venv/bin/python benchmarks/dietnerf_view_encoder.py --out benchmarks/out/view_encoder     # ~25 min
    .venv/bin/python benchmarks/dietnerf_signal.py RUN ... --encoders OUT/views.safetensors OUT/adversarial.safetensors
    langfield train dietnerf ... --model.encoder OUT/views.safetensors

langfield-mini's image tower is fine-tuned (weights saved in langfield-mini's format, so `--model.encoder` loads
them) on multi-view procedural scenes for the two properties DietNeRF assumes of CLIP:

1. `views.safetensors`: InfoNCE where a view of a scene must pick another view of the same scene among the batch's
   other scenes *and* among views with synthetic few-view artifacts (floaters, smears, ghosts, haze, blur);
2. `adversarial.safetensors`: continues 1 with a third set of negatives, flawed views pushed by two signed-gradient
   steps (4/255 each) towards the other view's embedding: images that look clean to the encoder without being so,
   which is what a radiance field optimised through the encoder produces.

Data: 2 × 1,200 random scenes (data seeds 1 and 2; 1-5 objects, white or grey background), 4 views each (elevation
5-85°, 0.9-1.3 × the world's camera radius), 64×64 with 2× supersampling.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from langfield.encoders.mini import MiniClip
from langfield.ui import task_bar

VIEWS, SIZE = 4, 64


def render_scenes(seed: int, count: int) -> torch.Tensor:
    from langfield.world.cameras import hemisphere_poses, pinhole
    from langfield.world.dataset import CAMERA_RADIUS, render_views, supersampled
    from langfield.world.scene import random_scene

    images = torch.empty(count, VIEWS, SIZE, SIZE, 3, dtype=torch.uint8)
    with task_bar(f"rendering {count} scenes (data seed {seed})", count) as advance:
        for i in range(count):
            rng = np.random.default_rng([seed, i])
            scene = random_scene(
                int(rng.integers(2**31)),
                int(rng.integers(1, 6)),
                background=str(rng.choice(["white", "white", "grey"])),
            )
            cameras = pinhole(
                hemisphere_poses(VIEWS, CAMERA_RADIUS * rng.uniform(0.9, 1.3), rng, elevation=(5.0, 85.0)), 2 * SIZE
            )
            for v, view in enumerate(supersampled(render_views(scene, cameras), 2)):
                images[i, v] = (view["rgb"].clamp(0, 1) * 255 + 0.5).to(torch.uint8)
            advance()
    return images


# --- synthetic few-view artifacts on (N, 3, S, S) images in [0, 1] -------------------------------------------------
def blobs(n: int, k: int) -> torch.Tensor:
    """(n, k, S, S) anisotropic Gaussian blobs: random centre, 1-8 px long, 15-100 % as wide, random angle."""
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    cy, cx = torch.rand(n, k, 1, 1) * SIZE, torch.rand(n, k, 1, 1) * SIZE
    long = 1.0 + torch.rand(n, k, 1, 1) * 7
    across = long * (0.15 + torch.rand(n, k, 1, 1) * 0.85)
    angle = torch.rand(n, k, 1, 1) * math.pi
    dy, dx = yy - cy, xx - cx
    u, v = dx * angle.cos() + dy * angle.sin(), -dx * angle.sin() + dy * angle.cos()
    return torch.exp(-0.5 * ((u / long) ** 2 + (v / across) ** 2))


def degrade(x: torch.Tensor) -> torch.Tensor:
    """Each image gets floaters (60 %), a smear (40 %), a ghost (35 %), haze (30 %), a blur (30 %); at least one."""
    n = x.shape[0]
    ops = torch.rand(n, 5) < torch.tensor([0.6, 0.4, 0.35, 0.3, 0.3])
    ops[~ops.any(1), 0] = True
    pick = lambda j, a, b: torch.where(ops[:, j, None, None, None], a, b)  # noqa: E731
    out = x.clone()
    k = 6  # floaters coloured like random pixels of the image
    alpha = (blobs(n, k) * (torch.rand(n, k, 1, 1) < 0.6) * (0.3 + 0.6 * torch.rand(n, k, 1, 1))).unsqueeze(1)
    colours = x.flatten(2).gather(2, torch.randint(0, SIZE * SIZE, (n, k))[:, None, :].expand(n, 3, k))
    floated = out.clone()
    for j in range(k):
        floated = floated * (1 - alpha[:, :, j]) + colours[:, :, j, None, None] * alpha[:, :, j]
    out = pick(0, floated, out)
    length, angle = 6, torch.rand(n) * math.pi  # smear: a directional blur inside soft regions
    smeared = sum(
        torch.stack(
            [
                torch.roll(out[i], (int(round(t * math.sin(angle[i]))), int(round(t * math.cos(angle[i])))), (-2, -1))
                for i in range(n)
            ]
        )
        for t in range(-length, length + 1)
    ) / (2 * length + 1)
    blobs(n, 1)  # (keeps the random stream of the measured run)
    region = (blobs(n, 2).amax(1, keepdim=True) * 1.5).clamp(0, 1)
    out = pick(1, out * (1 - region) + smeared * region, out)
    ghosted = torch.stack(
        [torch.roll(out[i], (int(torch.randint(-8, 9, ())), int(torch.randint(-8, 9, ()))), (-2, -1)) for i in range(n)]
    )
    mix = 0.25 + 0.3 * torch.rand(n, 1, 1, 1)
    out = pick(2, out * (1 - mix) + ghosted * mix, out)
    veil = blobs(n, 1) ** 0.3 * (0.15 + 0.35 * torch.rand(n, 1, 1, 1))
    colour = x.mean(dim=(2, 3), keepdim=True) * (0.7 + 0.3 * torch.rand(n, 1, 1, 1))
    out = pick(3, out * (1 - veil) + colour * veil, out)
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    blurred = F.conv2d(
        F.pad(out, (2, 2, 2, 2), mode="replicate"),
        (taps[:, None] * taps[None, :]).expand(3, 1, 5, 5).contiguous(),
        groups=3,
    )
    return pick(4, blurred, out).clamp(0, 1)


def jitter(x: torch.Tensor) -> torch.Tensor:
    """Random zoom 0.8-1.15, shift, flip (as camera placement varies); the corner colour fills the border."""
    n = x.shape[0]
    scale = 0.8 + 0.35 * torch.rand(n)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = (torch.rand(n, 2) - 0.5) * 0.3
    theta[torch.rand(n) < 0.5, 0, 0] *= -1
    corner = x[:, :, :1, :1]
    return (
        F.grid_sample(x - corner, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)
        + corner
    )


# --- training -------------------------------------------------------------------------------------------------------
def train(model: MiniClip, data: torch.Tensor, steps: int, batch: int, adversarial: bool, label: str) -> None:
    tower, projection = model.image_tower, model.image_projection
    embed = lambda x: F.normalize(projection(tower((x - model.mean) / model.std)[0]), dim=-1)  # noqa: E731
    optimizer = torch.optim.AdamW(list(tower.parameters()) + list(projection.parameters()), lr=5e-4, weight_decay=1e-4)
    scenes, views = data.shape[:2]
    target, tau = torch.arange(batch), 0.1
    model.train()
    start = time.time()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = 5e-4 * min(1, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / steps))
        index = torch.randint(0, scenes, (batch,))
        pair = torch.stack([torch.randperm(views)[:2] for _ in range(batch)])
        a = jitter(data[index, pair[:, 0]].permute(0, 3, 1, 2).float() / 255)
        b = jitter(data[index, pair[:, 1]].permute(0, 3, 1, 2).float() / 255)
        flawed_a, flawed_b = degrade(a), degrade(b)
        negatives_a, negatives_b = [flawed_a], [flawed_b]
        if adversarial:  # flawed views pushed towards the other view's embedding
            model.eval()
            with torch.no_grad():
                goal = torch.cat([embed(b), embed(a)])
            pushed = torch.cat([flawed_a, flawed_b])
            for _ in range(2):
                pushed.requires_grad_(True)
                (grad,) = torch.autograd.grad((embed(pushed) * goal).sum(), pushed)
                pushed = (pushed.detach() + 4 / 255 * grad.sign()).clamp(0, 1)
            pushed_a, pushed_b = pushed.split(batch)
            negatives_a.append(pushed_a)
            negatives_b.append(pushed_b)
            model.train()
        z = embed(torch.cat([a, b, *negatives_a, *negatives_b])).split(batch)
        za, zb, za_neg, zb_neg = z[0], z[1], z[2 : 2 + len(negatives_a)], z[2 + len(negatives_a) :]
        loss = 0.5 * (
            F.cross_entropy(torch.cat([za @ zb.T, *(za @ n.T for n in zb_neg)], 1) / tau, target)
            + F.cross_entropy(torch.cat([zb @ za.T, *(zb @ n.T for n in za_neg)], 1) / tau, target)
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == steps - 1:
            with torch.no_grad():
                print(
                    f"{label} step {step}: loss {loss.item():.3f}, cos(view, other view) "
                    f"{(za * zb).sum(-1).mean():.3f}, "
                    f"cos(view, flawed view) {(zb * zb_neg[0]).sum(-1).mean():.3f}, {time.time() - start:.0f} s",
                    flush=True,
                )
    model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/view_encoder"))
    parser.add_argument("--scenes", type=int, default=1200, help="scenes per data seed (two seeds)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--adversarial-steps", type=int, default=300)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / f"scenes-{args.scenes}.pt"
    if cache.is_file():
        data = torch.load(cache)
    else:
        data = torch.cat([render_scenes(1, args.scenes), render_scenes(2, args.scenes)])
        torch.save(data, cache)
    torch.manual_seed(0)
    model = MiniClip.load()
    train(model, data, args.steps, 96, adversarial=False, label="views")
    model.save(
        args.out / "views.safetensors", {"experiment": "view-consistent, artifact-sensitive", "steps": args.steps}
    )
    torch.manual_seed(0)
    model = MiniClip.load(args.out / "views.safetensors")  # the saved (float16) weights
    train(model, data, args.adversarial_steps, 64, adversarial=True, label="adversarial")
    model.save(
        args.out / "adversarial.safetensors", {"experiment": "+ adversarial negatives", "steps": args.adversarial_steps}
    )


if __name__ == "__main__":
    main()
