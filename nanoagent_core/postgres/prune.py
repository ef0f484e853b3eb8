"""Pruning on PostgreSQL: choose finished runs by the database's clock, delete each batch in
one short transaction (re-checking what it deletes), count them. A part of ``PostgresStore``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from nanoagent_core import store_rules as rules
from nanoagent_core.errors import DatabaseError
from nanoagent_core.models import RunStatus
from nanoagent_core.postgres import sql_prune
from nanoagent_core.postgres.connection import Engine, Txn
from nanoagent_core.protocols import PruneCount
from nanoagent_core.sqltext import fill

__all__ = ["Pruning"]


class Pruning(Engine):
    """The PruneStore methods of ``PostgresStore``."""

    async def _prune_params(
        self, statuses: Sequence[RunStatus], older_than: timedelta, keep_last: int, limit: int
    ) -> tuple[dict[str, Any], str] | None:
        """The parameters of a prune (cutoff by the database's clock, the keep boundary) and
        its keep fragment; None when nothing is prunable."""
        wanted = rules.prune_statuses(statuses)
        rules.prune_limits(older_than, keep_last, limit)
        params: dict[str, Any] = {
            "statuses": wanted,
            "older_than": older_than,
            "keep_offset": keep_last - 1,
            "limit": limit,
            "channel": self._channel,
        }

        async def read(t: Txn) -> str | None:
            row = await self._one(t, sql_prune.PRUNE_CUTOFF, params)
            assert row is not None
            params["cutoff"] = row[0]
            if not keep_last:
                return ""
            boundary = await self._one(t, sql_prune.PRUNE_BOUNDARY, params)
            if boundary is None:
                return None
            params["keep_at"], params["keep_id"] = boundary
            return sql_prune.PRUNE_KEEP

        keep = await self._snapshot(read)
        return None if keep is None else (params, keep)

    async def delete_finished_runs(
        self,
        *,
        statuses: Sequence[RunStatus],
        older_than: timedelta,
        keep_last: int = 0,
        limit: int = 500,
    ) -> PruneCount:
        if self._read_only:
            raise DatabaseError(f"{self._location}: opened read-only")
        prepared = await self._prune_params(statuses, older_than, keep_last, limit)
        if prepared is None:
            return PruneCount()
        params, keep = prepared

        async def choose(t: Txn) -> list[str]:
            rows = await self._all(t, fill(sql_prune.PRUNE_CANDIDATES, keep=keep), params)
            return [str(row[0]) for row in rows]

        candidates = await self._read(choose)
        if not candidates:
            return PruneCount()
        batch = {**params, "ids": candidates}

        async def txn(t: Txn) -> PruneCount:
            (cur,) = await self._batch(
                t, [(fill(sql_prune.PRUNE_DELETE, keep=keep), batch)], commit=True
            )
            row = await cur.fetchone()
            assert row is not None
            return PruneCount(len(candidates), int(row[0]), int(row[1]), int(row[2]))

        async def recover(xid: str) -> PruneCount:
            # The delete committed but its answer was lost: how many runs went is known.
            async def read(t: Txn) -> int:
                row = await self._one(t, sql_prune.PRUNE_REMAINING, batch)
                return 0 if row is None else int(row[0])

            return PruneCount(len(candidates), len(candidates) - await self._read(read))

        return await self._write(txn, recover)

    async def count_finished_runs(
        self, *, statuses: Sequence[RunStatus], older_than: timedelta, keep_last: int = 0
    ) -> PruneCount:
        prepared = await self._prune_params(statuses, older_than, keep_last, 1)
        if prepared is None:
            return PruneCount()
        params, keep = prepared

        async def read(t: Txn) -> PruneCount:
            row = await self._one(t, fill(sql_prune.PRUNE_COUNT, keep=keep), params)
            assert row is not None
            return PruneCount(int(row[0]), int(row[0]), int(row[1]), int(row[2]))

        return await self._read(read)

    async def reclaim_space(self, *, vacuum: bool = False) -> str:
        self._check_open()
        return (
            "PostgreSQL: autovacuum makes the deleted rows' space reusable by itself;"
            " the files do not shrink (VACUUM FULL would, under an exclusive lock)"
        )
