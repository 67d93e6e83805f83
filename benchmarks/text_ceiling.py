"""How far can a frozen all-MiniLM-L6-v2 text tower carry zero-shot classification with *unseen* wordings?

Replaces the image tower by a perfect one — a free embedding per attribute combination (colour, kind, material,
size) — and trains it with langfield-mini's text head and loss on the training captions only. The zero-shot
accuracy of these ideal image embeddings against the evaluation wordings is then a ceiling that no image tower
trained this way can pass: it measures what MiniLM knows about the unseen synonyms.

    .venv/bin/python benchmarks/text_ceiling.py      # about 1 minute
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from langfield.apps.mini_training import COMBOS, caption_table, contrastive_loss
from langfield.apps.zeroshot import CLASSES, class_embeddings
from langfield.encoders.mini import TEXT_WIDTH, MiniClip
from langfield.world.vocabulary import COLORS, KINDS


def nearest_words(encoder: MiniClip) -> None:
    """Each evaluation synonym's nearest training word in raw MiniLM space, within a short sentence."""
    for label, table, frame, split in (("colour", COLORS, "a {} cube", (1, 2)), ("kind", KINDS, "a red {}", (0, 1))):
        names = list(table)
        train = encoder.text_features([frame.format(table[n][split[0]][0]) for n in names])
        unseen = encoder.text_features([frame.format(table[n][split[1]][0]) for n in names])
        nearest = (unseen @ train.T).argmax(1).tolist()
        wrong = [f"{table[n][split[1]][0]} -> {names[j]}" for n, j in zip(names, nearest) if names[j] != n]
        print(
            f"{label}: {len(names) - len(wrong)}/{len(names)} unseen words nearest their own class; wrong: "
            f"{', '.join(wrong)}"
        )


def main(steps: int = 1500, dim: int = 256) -> None:
    torch.manual_seed(0)
    encoder = MiniClip().eval()  # MiniLM + a fresh text projection
    nearest_words(encoder)
    texts, positive = caption_table()
    features = torch.cat([encoder.text_features(texts[i : i + 512]) for i in range(0, len(texts), 512)])
    encoder.text_projection = nn.Linear(TEXT_WIDTH, dim, bias=False)
    ideal = nn.Parameter(torch.randn(len(COMBOS), dim))
    log_scale = nn.Parameter(torch.tensor(2.66))
    optimizer = torch.optim.Adam([ideal, log_scale, *encoder.text_projection.parameters()], lr=1e-2)
    for _ in range(steps):
        combos = torch.randint(len(COMBOS), (256,))
        caption = torch.multinomial(positive[combos].float(), 1).squeeze(1)
        text = F.normalize(encoder.text_projection(features[caption]), dim=-1)
        loss = contrastive_loss(F.normalize(ideal[combos], dim=-1), text, positive[combos][:, caption], log_scale.exp())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    truth = torch.tensor([CLASSES.index((a.color, a.kind)) for a in COMBOS])
    with torch.no_grad():
        for wording in ("train", "eval"):
            encoder._text_cache.clear()
            predicted = (F.normalize(ideal, dim=-1) @ class_embeddings(encoder, CLASSES, wording).T).argmax(1)
            kinds = len({k for _, k in CLASSES})
            print(
                f"{wording} wording, ideal image embeddings: top-1 {100 * (predicted == truth).float().mean():.1f} %, "
                f"colour {100 * (predicted // kinds == truth // kinds).float().mean():.1f} %, "
                f"kind {100 * (predicted % kinds == truth % kinds).float().mean():.1f} %"
            )


if __name__ == "__main__":
    main()
