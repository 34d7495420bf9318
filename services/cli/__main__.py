"""`python -m services.cli`: the same as the `scaidrive-connectors` command."""
from services.cli import main

main()
