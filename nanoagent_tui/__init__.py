"""nanoagent's terminal dashboard and the ``nanoagent`` command."""
