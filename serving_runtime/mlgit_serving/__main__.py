"""`python -m mlgit_serving`, the same as the `mlgit-serving` console script."""

from .server import main

main()
