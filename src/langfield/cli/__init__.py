"""The ``langfield`` command line."""
