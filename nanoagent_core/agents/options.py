"""Rules for agent options that hold for every agent.

Options are stored with the run and shown by ``show`` and the dashboard, so a secret must
never be one: provider keys come from the environment only. An option whose name looks like
a secret is refused before any agent is built or anything is stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from nanoagent_core.errors import ValidationError

__all__ = ["is_secret_name", "refuse_secret_options"]

# api_key / apikey / api-key, anything with token (but a count of tokens such as max_tokens
# is not a secret), secret, password / passwd, credential(s), private key
_SECRET = re.compile(
    r"api[_\-]?key|token(?!s(?![a-z]))|secret|passw(?:or)?d|credential|private[_\-]?key",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """Whether an option called ``name`` would hold a secret (case-insensitive)."""
    return _SECRET.search(name) is not None


def refuse_secret_options(names: Iterable[str]) -> None:
    """ValidationError, naming the first secret-like option (never its value)."""
    for name in names:
        if is_secret_name(name):
            raise ValidationError(
                f"option {name[:60]!r} looks like a secret and is refused: options are stored and "
                "shown; give provider keys through the environment (e.g. OPENAI_API_KEY)"
            )
