"""The one switch for downloads from the Hugging Face hub: off unless the user passes ``--allow-download``.

A model named by a hub id is read from the local cache only; when it is not there the error says how to fetch it.
The CLI sets the switch once per process (:func:`configure`), in the environment, so that the hub libraries
(which read ``HF_HUB_OFFLINE`` when imported) and any child process agree.
"""

from __future__ import annotations

import os
from typing import Any

FLAG = "--allow-download"
ENV = "LANGFIELD_ALLOW_DOWNLOAD"
HINT = f"pass {FLAG} to fetch it from the hub, or give a local folder"


def configure(allow: bool) -> None:
    os.environ[ENV] = "1" if allow else "0"
    if not allow:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"


def downloads_allowed() -> bool:
    return os.environ.get(ENV, "0") == "1"


def offline() -> dict[str, Any]:
    """Keyword arguments for ``from_pretrained`` / ``hf_hub_download``: local files only unless allowed."""
    return {"local_files_only": not downloads_allowed()}
