"""Re-train the embedded encoder ``langfield-mini`` and write its shipped weights.

    .venv/bin/python scripts/train_langfield_mini.py            # the shipped configuration
    .venv/bin/python scripts/train_langfield_mini.py --help     # every option

Renders the training images of the procedural world (cached under .cache/), trains, and writes
src/langfield/encoders/weights/langfield-mini.safetensors; `langfield clip eval` then measures it.
"""

from langfield.apps.mini_training import MiniTrainConfig, train_mini
from langfield.cli.main import run_guarded
from langfield.cli.parsing import parse

if __name__ == "__main__":
    config = parse(MiniTrainConfig)
    run_guarded(lambda: print(train_mini(config).info))
