"""The command palette's commands: the same actions as the keys, found by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from nanoagent_tui.live import SortMode
from nanoagent_tui.screens.runs import STATUS_FILTERS

if TYPE_CHECKING:
    from nanoagent_tui.app import DashboardApp

__all__ = ["RunCommands"]

Command = tuple[str, str, Callable[[], object]]
T = TypeVar("T")


class RunCommands(Provider):
    """Resume, abort, new run, filters, sort, help, quit."""

    def _commands(self) -> list[Command]:
        app = cast("DashboardApp", self.app)
        commands: list[Command] = [
            ("Resume the selected run", "r: crashed, interrupted, paused, failed or aborted runs",
             app.action_resume),
            ("Abort the selected run", "a: asks first; the worker stops at its next heartbeat",
             app.action_abort),
            ("New run", "n: goal, agent, max iterations, options", app.action_new_run),
            ("Open the selected run", "enter: tasks, events, durations", app.action_open),
            ("Filter runs by text", "/: part of a run id or goal", app.action_filter),
            ("Help", "?: keys and statuses", app.action_help),
            ("Quit", "q: workers keep running", app.action_quit),
        ]  # fmt: skip
        for status in STATUS_FILTERS:
            label = f"Show {status} runs only" if status else "Show runs of every status"
            commands.append((label, "f steps through these", _bind(app.filter_status, status)))
        for mode in SortMode:
            commands.append((f"Sort by {mode}", "s steps through these", _bind(app.set_sort, mode)))
        return commands

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


def _bind(method: Callable[[T], object], value: T) -> Callable[[], object]:
    return lambda: method(value)
