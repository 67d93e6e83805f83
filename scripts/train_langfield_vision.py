"""Re-train the embedded vision-language model ``langfield-vision`` and write its shipped weights.

    .venv/bin/python scripts/train_langfield_vision.py            # the shipped configuration
    .venv/bin/python scripts/train_langfield_vision.py --help     # every option

Renders the procedural training images and runs the frozen EfficientNet-Lite0 over them once (both cached under
.cache/), trains the head and the text projection, and writes
src/langfield/encoders/weights/langfield-vision.safetensors; `langfield clip eval --encoder langfield-vision` and
`benchmarks/real_photos.py` then measure it.
"""

from langfield.apps.vision_training import VisionTrainConfig, train_vision
from langfield.cli.main import run_guarded
from langfield.cli.parsing import parse

if __name__ == "__main__":
    config = parse(VisionTrainConfig)
    run_guarded(lambda: print(train_vision(config).info))
