"""The floor of a launch: what its irreducible parts cost, each measured alone."""
