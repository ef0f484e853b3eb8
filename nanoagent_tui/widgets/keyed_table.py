"""A DataTable kept equal to a list of rows by key, without ever reloading it whole.

``sync(rows)`` updates only the cells whose value changed (``update_cell``), adds new rows
(``add_row(key=...)``), removes gone ones (``remove_row``), re-orders with ``sort`` only when
the order changed, and keeps the cursor on the same key at the same line of the screen.
``clear()`` is kept for when most rows are gone (it resets cursor and scroll, and
``remove_row`` costs O(rows) each).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, cast

from rich.text import Text
from textual.app import App
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

__all__ = ["Column", "KeyedTable"]

Render = Callable[[Any, int], Text]


@dataclass(frozen=True)
class Column:
    """A column: ``key`` is also the name of the row field it shows."""

    key: str
    label: str
    width: int
    render: Render


class _KeyedText(Text):
    """The first cell of a row carries the row's key, so that ``sort`` can order by key."""

    row_key: str = ""


def _keyed(text: Text, key: str) -> Text:
    cell = _KeyedText(style=text.style, no_wrap=text.no_wrap, overflow=text.overflow, end="")
    cell.append_text(text)
    cell.row_key = key
    return cell


def _rank_of(rank: dict[str, int]) -> Callable[[tuple[Text, ...]], int]:
    def key(cells: tuple[Text, ...]) -> int:
        first = cells[0]
        return rank.get(first.row_key, len(rank)) if isinstance(first, _KeyedText) else len(rank)

    return key


class KeyedTable(DataTable[Text]):
    """Rows are NamedTuples; each column shows the field named like its key.

    Besides the arrows and page keys: ``j``/``k`` down and up, ``g``/``home`` to the first
    row, ``G``/``end`` to the last."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g,home", "scroll_top", "First", show=False),
        Binding("G,end", "scroll_bottom", "Last", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._spec: list[Column] = []
        self._rows: dict[str, NamedTuple] = {}
        self._order: list[str] = []

    @property
    def keys(self) -> list[str]:
        """Row keys, top to bottom."""
        return list(self._order)

    @property
    def cursor_key(self) -> str | None:
        if not self._order:
            return None
        return self._order[min(self.cursor_row, len(self._order) - 1)]

    def row(self, key: str) -> NamedTuple | None:
        return self._rows.get(key)

    def set_columns(self, columns: Sequence[Column]) -> None:
        """Replace the columns (on resize): the one time the table is rebuilt whole."""
        if list(columns) == self._spec:
            return
        if [(c.key, c.width, c.render) for c in columns] == [
            (c.key, c.width, c.render) for c in self._spec
        ]:
            # only the headers changed (the sort mark): relabel them, keep the rows
            for column in columns:
                self.columns[ColumnKey(column.key)].label = Text(column.label, style="bold")
            self._spec = list(columns)
            self._update_count += 1  # the rendered lines cached hold the old headers
            self._clear_caches()  # pyright: ignore[reportPrivateUsage]
            self.refresh()
            return
        rows = [(key, self._rows[key]) for key in self._order]
        key, offset = self.cursor_key, self._cursor_offset()
        with self._app().batch_update():
            self.clear(columns=True)
            self._rows, self._order = {}, []
            self._spec = list(columns)
            for column in self._spec:
                self.add_column(
                    Text(column.label, style="bold"), width=column.width, key=column.key
                )
            self._apply(rows)
            self._restore(key, offset)

    def sync(self, rows: Sequence[tuple[str, NamedTuple]]) -> None:
        """Make the table show ``rows`` (key, row) in this order."""
        key, offset = self.cursor_key, self._cursor_offset()
        with self._app().batch_update():
            self._apply(rows)
            self._restore(key, offset)

    def patch(self, rows: Sequence[tuple[str, NamedTuple]], order: Sequence[str]) -> None:
        """Bring some rows up to date without looking at the others: ``rows`` (key, row)
        are updated cell by cell or added, rows whose key is not in ``order`` are removed,
        and the table then shows its rows in ``order`` (every key, top to bottom), moving
        only those between the first and the last line whose key changed."""
        key, offset = self.cursor_key, self._cursor_offset()
        with self._app().batch_update():
            self._patch(rows, order)
            self._restore(key, offset)

    def move_to(self, key: str) -> bool:
        """Put the cursor on ``key`` (scrolling it into view); False if there is no such row."""
        if key not in self._rows:
            return False
        self.move_cursor(row=self._order.index(key))
        return True

    def in_view(self, margin: int = 2) -> list[str]:
        """Keys of the rows on screen (and ``margin`` more either side), top to bottom."""
        top = max(0, round(self.scroll_y) - margin)
        height = max(1, self.size.height - self.header_height)
        return self._order[top : top + height + 2 * margin]

    def update_rows(self, rows: Sequence[tuple[str, NamedTuple]]) -> None:
        """Update the cells that changed in these rows (rows the table does not hold are
        left out; nothing is added, removed or moved)."""
        first = self._spec[0].key if self._spec else ""
        with self._app().batch_update():
            for key, row in rows:
                old = self._rows.get(key)
                if old is not None and old != row:
                    self._update(key, old, row, first)
                    self._rows[key] = row

    # -- internals -------------------------------------------------------------------------

    def _update(self, key: str, old: NamedTuple, row: NamedTuple, first: str) -> None:
        for column in self._spec:
            value = getattr(row, column.key)
            if value != getattr(old, column.key):
                cell = column.render(value, column.width)
                self.update_cell(
                    key, column.key, _keyed(cell, key) if column.key == first else cell
                )

    def _app(self) -> App[object]:
        return cast("App[object]", self.app)

    def _cursor_offset(self) -> int:
        return self.cursor_row - round(self.scroll_y)

    def _cells(self, key: str, row: NamedTuple) -> list[Text]:
        cells = [column.render(getattr(row, column.key), column.width) for column in self._spec]
        if cells:
            cells[0] = _keyed(cells[0], key)
        return cells

    def _apply(self, rows: Sequence[tuple[str, NamedTuple]]) -> None:
        wanted = dict(rows)
        gone = [key for key in self._order if key not in wanted]
        if len(gone) > 32 and 2 * len(gone) > len(self._order):
            self.clear()
            self._rows, self._order = {}, []
        elif gone:
            for key in gone:
                self.remove_row(key)
                del self._rows[key]
            self._order = [key for key in self._order if key in wanted]
        first = self._spec[0].key if self._spec else ""
        for key, row in rows:
            old = self._rows.get(key)
            if old is None:
                self.add_row(*self._cells(key, row), key=key)
                self._order.append(key)
            elif old != row:
                self._update(key, old, row, first)
            self._rows[key] = row
        order = [key for key, _ in rows]
        if order != self._order:
            self.sort(key=_rank_of({key: index for index, key in enumerate(order)}))
            self._order = order

    def _patch(self, rows: Sequence[tuple[str, NamedTuple]], order: Sequence[str]) -> None:
        wanted = set(order)
        for key in [key for key in self._order if key not in wanted]:
            self.remove_row(key)
            del self._rows[key]
            self._order.remove(key)
        first = self._spec[0].key if self._spec else ""
        for key, row in rows:
            old = self._rows.get(key)
            if old is None:
                self.add_row(*self._cells(key, row), key=key)
                self._order.append(key)
            elif old != row:
                self._update(key, old, row, first)
            self._rows[key] = row
        order = list(order)
        if order == self._order:
            return
        if len(order) != len(self._order) or wanted != set(self._order):
            raise ValueError("order must name every row of the table once")
        lo = next(i for i, (a, b) in enumerate(zip(order, self._order, strict=True)) if a != b)
        hi = len(order) - next(
            i
            for i, (a, b) in enumerate(zip(reversed(order), reversed(self._order), strict=True))
            if a != b
        )
        # the rows between lo and hi change lines among themselves: only they are renumbered
        locations = self._row_locations  # pyright: ignore[reportPrivateUsage]
        for index in range(lo, hi):
            locations[RowKey(order[index])] = index
        self._order = order
        self._update_count += 1  # the cached row order and lines are stale
        self.refresh()

    def _restore(self, key: str | None, offset: int) -> None:
        """Cursor back on ``key``, on the same screen line; a view at the top stays at the
        top (so that new rows above show) while the cursor stays in sight."""
        if not self._order:
            return
        was_top = round(self.scroll_y) == 0
        if key is not None and key in self._rows:
            index = self._order.index(key)
        else:
            index = min(self.cursor_row, len(self._order) - 1)
        if index != self.cursor_row:
            self.move_cursor(row=index, scroll=False)
        visible = max(1, self.size.height - self.header_height)
        target = 0 if was_top and index < visible else max(0, index - offset)
        if target != round(self.scroll_y):
            self.call_after_refresh(self.scroll_to, y=target, animate=False)
