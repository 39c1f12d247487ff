"""``python -m techmatch`` runs the command line."""

from techmatch.cli import main

main()
