"""nanoagent's headless core: models, store protocols, stores and the checkpointed loop.

Nothing here imports Textual; the dashboard lives in ``nanoagent_tui``.
"""

import logging as _logging

# A library logs through its modules' loggers and leaves output to the application: without
# this, Python's last-resort handler would print warnings on stderr (the dashboard's screen).
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
