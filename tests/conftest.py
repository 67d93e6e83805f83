import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("COLUMNS", "200")

from helpers import write_blender  # noqa: E402


@pytest.fixture(scope="session")
def sphere_scene(tmp_path_factory) -> Path:
    """A Blender-format sphere: 24 views of 32x32 (every 8th held out)."""
    return write_blender(tmp_path_factory.mktemp("sphere"), count=24, size=32)
