"""One module per command; each is a thin Typer function over the plain modules of mlgit."""
