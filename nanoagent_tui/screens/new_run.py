"""The new-run form: goal, agent, max iterations, options; starts a detached worker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.validation import Integer
from textual.widgets import Button, Input, Label, Select, Static

from nanoagent_core.defaults import DEFAULT_MAX_ITERATIONS
from nanoagent_core.errors import NanoagentError
from nanoagent_core.models import RunState
from nanoagent_core.safetext import visible
from nanoagent_tui.operations import build_run
from nanoagent_tui.widgets.typeahead import ShownClock

if TYPE_CHECKING:
    from nanoagent_tui.app import DashboardApp

__all__ = ["NewRunScreen"]


class NewRunScreen(ModalScreen[str | None]):
    """Dismissed with the new run's id once its worker started, or None."""

    CSS_PATH = Path(__file__).with_name("new_run.tcss")

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel")]

    def __init__(self, agents: list[str]) -> None:
        super().__init__()
        self.agents = agents
        self.shown = ShownClock()
        self._refused = False  #: a start was refused: the error stays until it is fixed

    @property
    def dash(self) -> DashboardApp:
        return cast("DashboardApp", self.app)

    def compose(self) -> ComposeResult:
        blink = self.dash.animated
        default = "demo" if "demo" in self.agents else self.agents[0] if self.agents else None
        with Vertical():
            yield Static("New run", id="title")
            yield Label("goal")
            goal = Input(placeholder="what the run should achieve", id="goal")
            goal.cursor_blink = blink
            yield goal
            with Horizontal(id="row"):
                with Vertical():
                    yield Label("agent")
                    yield Select(
                        [(name, name) for name in self.agents],
                        value=default if default is not None else Select.NULL,
                        allow_blank=default is None,
                        id="agent",
                    )
                with Vertical():
                    yield Label("max iterations")
                    # Not type="integer" (it drops other keys with a bell): a wrong
                    # character shows, and so does why it is wrong.
                    iterations = Input(
                        str(DEFAULT_MAX_ITERATIONS),
                        id="iterations",
                        validators=[
                            Integer(
                                minimum=1,
                                failure_description="max iterations: a whole number, 1 or more",
                            )
                        ],
                    )
                    iterations.cursor_blink = blink
                    yield iterations
            yield Label("options (KEY=VALUE, separated by spaces)")
            options = Input(placeholder="e.g. tasks=5 delay=0.5 fail=2", id="options")
            options.cursor_blink = blink
            yield options
            yield Static("", id="form-error", markup=False)
            yield Static(
                "enter start · tab next field · escape cancel", id="form-keys", markup=False
            )
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Start", id="start", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#goal", Input).focus()
        self.shown.start(self)

    def on_key(self, event: events.Key) -> None:
        """Keys typed right after ``n``, before the form was drawn, reach the screen rather
        than a field: printable ones go into the goal, in order; the others are dropped
        (an early enter must not submit, nor a key reach the runs list below)."""
        if not self.shown.typed_before(event):
            return
        event.stop()
        event.prevent_default()
        if event.is_printable and event.character is not None:
            self.query_one("#goal", Input).insert_text_at_cursor(event.character)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#start")
    @on(Input.Submitted)
    def _submit(self) -> None:
        agent = self._agent()
        try:
            run = build_run(
                self.query_one("#goal", Input).value,
                agent,
                self.query_one("#iterations", Input).value,
                self.query_one("#options", Input).value,
            )
        except NanoagentError as exc:
            self._refused = True
            self.show_error(str(exc))
            return
        self._refused = False
        self.show_error("")
        self.query_one("#start", Button).disabled = True
        self._start(run)

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        """Checked as it is typed: the iterations field at once, the whole form once a
        start was refused (its error stays until what it names is fixed)."""
        problem = self._problem()
        if self._refused or event.input.id == "iterations":
            self.show_error(problem)

    def _problem(self) -> str:
        """Why the form cannot start a run as it stands ("" when it can)."""
        check = self.query_one("#iterations", Input).validate(
            self.query_one("#iterations", Input).value
        )
        if check is not None and not check.is_valid:
            return "; ".join(check.failure_descriptions)
        if not self._refused:
            return ""
        try:
            build_run(
                self.query_one("#goal", Input).value,
                self._agent(),
                self.query_one("#iterations", Input).value,
                self.query_one("#options", Input).value,
            )
        except NanoagentError as exc:
            return str(exc)
        return ""

    def _agent(self) -> str:
        value = cast("Select[str]", self.query_one("#agent")).value
        return value if isinstance(value, str) else ""

    def show_error(self, message: str) -> None:
        self.query_one("#form-error", Static).update(visible(message, lines=True))

    @work(group="new-run", exclusive=True)
    async def _start(self, run: RunState) -> None:
        try:
            message = await self.dash.start_run(run)
        except (NanoagentError, OSError) as exc:
            self.show_error(str(exc))
            self.query_one("#start", Button).disabled = False
            return
        self.dash.say(message, title="New run")
        self.dismiss(run.run_id)
