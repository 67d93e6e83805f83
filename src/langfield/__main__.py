"""``python -m langfield ...`` (and ``torchrun -m langfield train ...``): the ``langfield`` command."""

from langfield.cli.main import main

main()
