"""Opening a clipnerf run for edits (application level: it loads runs and their mapper files)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from langfield.errors import LangfieldError
from langfield.methods.clipnerf.mappers import ClipMappers
from langfield.run import Run, load_run

if TYPE_CHECKING:
    from langfield.methods.clipnerf.model import ClipNerfModel

MAPPERS_FILE = "mappers.safetensors"


def load_clipnerf(path: Path, device: str = "auto") -> tuple[Run, "ClipNerfModel"]:
    """The clipnerf run at ``path`` (a folder, a packed file or a shipped name such as ``chair``) and its model."""
    from langfield.methods.clipnerf.model import ClipNerfModel

    run = load_run(path, device)
    if run.method.name != "clipnerf" or not isinstance(run.model, ClipNerfModel):
        raise LangfieldError(f"{path}: mappers and edits work on clipnerf runs, this is a {run.method.name} run")
    return run, run.model


def load_mappers(run: Run) -> tuple[ClipMappers, str]:
    """The run's text/image → code mappers (moved to the model's device) and the name of the encoder they were
    trained with: a packed run carries them, a run folder has them in RUN/mappers.safetensors."""
    if "mappers" in run.attachments:  # a packed run (e.g. the embedded `chair`)
        tensors, metadata = run.attachments["mappers"]
        mapper, encoder_name = ClipMappers.from_state(tensors, metadata, str(run.path))
    else:
        mapper, encoder_name = ClipMappers.load(Path(run.path) / MAPPERS_FILE)
    return mapper.to(run.model.background.device), encoder_name
