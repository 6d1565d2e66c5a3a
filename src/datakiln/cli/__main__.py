"""``python -m datakiln.cli`` runs the ``kiln`` command."""

from datakiln.cli.app import main

main()
