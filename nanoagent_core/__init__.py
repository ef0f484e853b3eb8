"""nanoagent's headless core: models, store protocols, stores and the checkpointed loop.

Nothing here imports Textual; the dashboard lives in ``nanoagent_tui``.
"""
