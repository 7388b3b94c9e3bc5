"""Infrastructure every room uses: one-line errors, atomic files and JSON, locks, cache paths, data
parallelism, and the CLI generated from typed functions. Imports nothing else of ours."""
