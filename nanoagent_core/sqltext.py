"""How both SQL stores fill their statement templates: ``{name}`` replaced by a fragment.

Fragments are never values: they are other templates of the store's sql.py, or names and
numbers validated by the caller; values always travel as parameters.
"""

from __future__ import annotations

__all__ = ["fill"]


def fill(template: str, **fragments: str) -> str:
    """``template`` with each ``{name}`` replaced by ``fragments[name]``."""
    for name, fragment in fragments.items():
        template = template.replace("{" + name + "}", fragment)
    return template
