"""Re-train the embedded diffusion prior ``langfield-prior`` and write its shipped weights.

    .venv/bin/python scripts/train_langfield_prior.py            # the shipped configuration
    .venv/bin/python scripts/train_langfield_prior.py --resume   # continue an interrupted run
    .venv/bin/python scripts/train_langfield_prior.py --help     # every option

Renders the training images of the procedural world (cached under .cache/), trains, and writes
src/langfield/guidance/weights/langfield-prior.safetensors; benchmarks/prior_samples.py then samples it.
"""

from langfield.apps.prior_training import PriorTrainConfig, train_prior
from langfield.cli.main import run_guarded
from langfield.cli.parsing import parse

if __name__ == "__main__":
    config = parse(PriorTrainConfig)
    run_guarded(lambda: print(train_prior(config).info))
