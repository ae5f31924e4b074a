"""The ``perceive`` command line."""
