import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("COLUMNS", "200")
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    # a suite started in the background by a non-interactive shell (`bash .ci/run &`) inherits SIGINT ignored, and an
    # ignored signal stays ignored across exec: every command the tests start would ignore the Ctrl-C they press
    signal.signal(signal.SIGINT, signal.default_int_handler)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per test worker (and per command a test runs): the workers share the machine's cores
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"

import torch  # noqa: E402

from helpers import write_blender  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def sphere_scene(tmp_path_factory) -> Path:
    """A Blender-format sphere: 24 views of 32x32 (every 8th held out)."""
    return write_blender(tmp_path_factory.mktemp("sphere"), count=24, size=32)
