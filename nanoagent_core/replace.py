"""``replace(model, **changes)``: ``model.model_copy(update=changes)`` at a fraction of its cost.

The loop copies a few frozen models per step (a task with its new status, the step with the
changes that ride along); pydantic's generic copy walks ``__copy__`` and ``copy.copy`` for
each. For a model without private attributes or extra fields, a copy with changes comes down to
a new ``__dict__`` and fields set, which is all this does (no validation, as model_copy).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["replace"]

M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__


def replace(model: M, **changes: Any) -> M:
    """A copy of ``model`` with ``changes``, equal to ``model.model_copy(update=changes)``."""
    cls = type(model)
    if (
        model.__pydantic_extra__ is not None
        or model.__pydantic_private__ is not None
        or cls.__pydantic_root_model__
        or not changes.keys() <= cls.model_fields.keys()
    ):
        return model.model_copy(update=changes)
    copied = cls.__new__(cls)
    _set(copied, "__dict__", {**model.__dict__, **changes})
    _set(copied, "__pydantic_fields_set__", model.__pydantic_fields_set__ | changes.keys())
    _set(copied, "__pydantic_extra__", None)
    _set(copied, "__pydantic_private__", None)
    return copied
