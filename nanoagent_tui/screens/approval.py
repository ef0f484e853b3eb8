"""The detail screen's approval panel: the run's pending request (what, the arguments
pretty-printed, why) and its keys; and the dialog that asks a denial's optional reason.

A key is taken for a request only if it was typed after that request was on screen (see
widgets/typeahead.py): a ``y`` typed ahead while the detail was still loading, or meant for
the list below, must not approve anything."""

from __future__ import annotations

import json
import math

from rich.console import Group
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from nanoagent_core.approvals import ApprovalRequest
from nanoagent_core.safetext import visible
from nanoagent_tui.formatting import clip
from nanoagent_tui.widgets.typeahead import ShownClock, now

__all__ = ["ApprovalPanel", "DenyScreen", "request_text"]

#: Lines of pretty-printed arguments shown at most (the rest: "… N more lines").
MAX_ARGUMENT_LINES = 12


def _pretty(request: ApprovalRequest, *, compact: bool) -> list[str]:
    """The arguments as lines: JSON indented two spaces, or (``compact``, for short screens)
    one ``key: value`` line per top-level key of an object."""
    try:
        value = request.arguments_value()
        if compact and isinstance(value, dict):
            pairs: dict[str, object] = value  # pyright: ignore[reportUnknownVariableType]
            return [
                visible(f"{key}: {json.dumps(item, ensure_ascii=False, sort_keys=True)}")
                for key, item in pairs.items()
            ]
        text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read: as stored
        return [visible(request.arguments)]
    return [visible(line) for line in text.splitlines()]


def request_text(request: ApprovalRequest, width: int, *, short: bool = False) -> Group:
    """What the request asks: the action, its arguments, why, and the keys."""
    limit = max(20, width - 4)
    head = Text.assemble(
        ("Waiting for approval: ", "bold yellow"),
        (clip(visible(request.what), limit), "bold"),
        (f"  ({visible(request.id)}, task {visible(request.task_id)})", "bright_black"),
    )
    lines = _pretty(request, compact=short)
    keep = 4 if short else MAX_ARGUMENT_LINES
    shown = [Text(clip(line, limit), style="cyan") for line in lines[:keep]]
    if len(lines) > keep:
        shown.append(Text(f"… {len(lines) - keep} more lines", style="bright_black"))
    why = Text.assemble(("why: ", "bright_black"), clip(visible(request.why or "-"), limit))
    keys = Text.assemble(
        ("y", "bold green"), " approve   ", ("d", "bold red"), " deny (asks a reason)"
    )
    return Group(head, *shown, why, keys)


class ApprovalPanel(Static):
    """Shows the pending request (hidden when there is none) and knows since when."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.request: ApprovalRequest | None = None
        self.shown_at = math.inf  #: when the current request was first drawn
        self._drawn: tuple[object, ...] = ()

    def show_request(self, request: ApprovalRequest | None, width: int, short: bool) -> None:
        key = (request, width, short)
        if key == self._drawn:
            return
        self._drawn = key
        if request is None or self.request is None or request.id != self.request.id:
            self.shown_at = math.inf
        self.request = request
        self.set_class(request is not None, "shown")
        if request is not None:
            self.update(request_text(request, width, short=short))
            self.call_after_refresh(self._drawn_now)

    def _drawn_now(self) -> None:
        if self.request is not None and self.shown_at == math.inf:
            self.shown_at = now()

    def typed_before(self, event: events.Key) -> bool:
        """True for a key made before the current request was on screen."""
        return event.time < self.shown_at


class _GuardedInput(Input):
    """An input that drops keys typed before its screen was drawn (an ``enter`` typed ahead
    must not deny)."""

    def __init__(self, clock: ShownClock, *, placeholder: str, id: str) -> None:
        super().__init__(placeholder=placeholder, id=id)
        self._clock = clock

    async def _on_key(self, event: events.Key) -> None:
        # runs before Input's own handler (Textual walks the MRO); stopping here stops both
        # the typing and the ``enter`` binding
        if self._clock.typed_before(event):
            event.prevent_default()
            event.stop()


class DenyScreen(ModalScreen[str | None]):
    """Deny a request: an optional reason; enter denies, escape cancels (None). Keys typed
    before it was drawn are ignored."""

    DEFAULT_CSS = """
    DenyScreen { align: center middle; }
    DenyScreen > Vertical {
        width: 72; max-width: 95%; height: auto;
        border: thick $error; background: $surface; padding: 1 2;
    }
    DenyScreen #question { text-style: bold; }
    DenyScreen #what { color: $accent; margin-top: 1; }
    DenyScreen Input { margin-top: 1; }
    DenyScreen Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    DenyScreen Button { margin-left: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel")]
    #: the reason box has the focus from the start (its keys are guarded); the buttons take
    #: clicks only, so no key reaches them
    AUTO_FOCUS = "#reason"

    def __init__(self, request: ApprovalRequest) -> None:
        super().__init__()
        self.request = request
        self.shown = ShownClock()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                f"Deny {visible(self.request.what)} ({visible(self.request.id)})?",
                id="question",
                markup=False,
            )
            yield Static(clip(visible(self.request.why or ""), 300), id="what", markup=False)
            yield _GuardedInput(
                self.shown, placeholder="reason (optional; the executor gets it)", id="reason"
            )
            with Horizontal():
                for button in (
                    Button("Cancel (esc)", id="cancel"),
                    Button("Deny (enter)", id="deny", variant="error"),
                ):
                    button.can_focus = False
                    yield button

    def on_mount(self) -> None:
        # no blinking cursor in an app without animation (tests, snapshots)
        level: str = self.app.animation_level  # pyright: ignore[reportUnknownMemberType]
        self.query_one("#reason", Input).cursor_blink = level != "none"
        self.shown.start(self)

    def typed_ahead(self, event: events.Key) -> bool:
        """Every key typed before the dialog was drawn (the app drops it)."""
        return self.shown.typed_before(event)

    def on_key(self, event: events.Key) -> None:
        if self.shown.typed_before(event):
            event.stop()
            event.prevent_default()

    @on(Input.Submitted, "#reason")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "deny":
            self.dismiss(self.query_one("#reason", Input).value.strip())
        else:
            self.dismiss(None)
