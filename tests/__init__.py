"""rubricrl tests: a package, so test modules import as ``tests.*`` and ``tests/replications`` never shadows the
real ``replications`` package (pytest prepend mode would otherwise import it as ``replications``)."""
