"""Oversight records: warning-sign alerts, standing approvals and prediction models."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    insert,
    literal_column,
    select,
    update,
)

from bot.core.domain import (
    Alert,
    AuditEvent,
    OutboxMessage,
)
from bot.core.learning import PredictionModel, StandingApproval
from storage import _learning
from storage._sql_base import SqlBase
from storage._sql_rows import (
    _alert_values,
    _append_audit,
    _insert_ignoring_duplicates,
    _outbox_values,
)
from storage._statements import (
    INSERT_OUTBOX,
)
from storage.models import (
    AlertRow,
)


class SqlOversight(SqlBase):
    """Alerts, standing approvals and models."""

    async def flip_alert(self, alert: Alert, outbox: Sequence[OutboxMessage] = ()) -> bool:
        key = (AlertRow.code == alert.code, AlertRow.subject == alert.subject)
        seen: dict[str, Any] = {
            "message": alert.message,
            "figures": dict(alert.figures),
            "updated_at": alert.updated_at,
        }
        async with self._write() as conn:
            # Each branch is one conditional statement: under concurrent evaluation the row
            # lock makes a second replica's WHERE fail after the first commits.
            if alert.active:
                flipped = (
                    await conn.execute(
                        _insert_ignoring_duplicates(conn, AlertRow, _alert_values(alert))
                    )
                ).first() is not None or (
                    await conn.execute(
                        update(AlertRow)
                        .where(*key, AlertRow.active.is_(False))
                        .values(_alert_values(alert))
                        .returning(literal_column("1"))
                    )
                ).first() is not None
                if not flipped:
                    await conn.execute(
                        update(AlertRow).where(*key, AlertRow.active.is_(True)).values(seen)
                    )
            else:
                flipped = (
                    await conn.execute(
                        update(AlertRow)
                        .where(*key, AlertRow.active.is_(True))
                        .values(**seen, active=False, cleared_at=alert.updated_at)
                        .returning(literal_column("1"))
                    )
                ).first() is not None
            if flipped and outbox:
                await conn.execute(INSERT_OUTBOX, [_outbox_values(m) for m in outbox])
            return flipped

    async def alerts(self, *, active_only: bool = False) -> Sequence[Alert]:
        query = select(AlertRow).order_by(
            AlertRow.raised_at.desc(), AlertRow.code.desc(), AlertRow.subject.desc()
        )
        if active_only:
            query = query.where(AlertRow.active.is_(True))
        async with self._read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            Alert(
                code=row["code"],
                subject=row["subject"],
                active=row["active"],
                message=row["message"],
                figures=row["figures"],
                raised_at=row["raised_at"],
                updated_at=row["updated_at"],
                cleared_at=row["cleared_at"],
            )
            for row in rows
        ]

    async def add_standing(self, grant: StandingApproval, audit: Sequence[AuditEvent]) -> None:
        async with self._write() as conn:
            await conn.execute(insert(_learning.GRANTS).values(**_learning.grant_values(grant)))
            await _append_audit(conn, audit, self.audit_key)

    async def standing_approval(self, grant_id: str) -> StandingApproval | None:
        async with self._read() as conn:
            found = await conn.execute(
                select(_learning.GRANTS).where(_learning.GRANTS.id == grant_id)
            )
            row = found.mappings().first()
        return None if row is None else _learning.grant(row)

    async def standing_approvals(
        self,
        *,
        agent_id: str | None = None,
        kind: str | None = None,
        active_at: datetime | None = None,
    ) -> Sequence[StandingApproval]:
        async with self._read() as conn:
            return await _learning.grants(conn, agent_id=agent_id, kind=kind, active_at=active_at)

    async def revoke_standing(
        self, grant_id: str, by: str, now: datetime, audit: AuditEvent
    ) -> StandingApproval | None:
        async with self._write() as conn:
            revoked = await _learning.revoke(conn, grant_id, by, now)
            if revoked is not None:
                await _append_audit(conn, (audit,), self.audit_key)
        return revoked

    async def add_model(self, model: PredictionModel, audit: AuditEvent) -> PredictionModel:
        async with self._write() as conn:
            version = await _learning.next_version(conn)
            stored = dataclasses.replace(model, version=version, active=False, activated_at=None)
            await conn.execute(insert(_learning.MODELS).values(**_learning.model_values(stored)))
            event = dataclasses.replace(audit, data={**audit.data, "version": version})
            await _append_audit(conn, (event,), self.audit_key)
        return stored

    async def prediction_models(self) -> Sequence[PredictionModel]:
        async with self._read() as conn:
            return await _learning.models(conn)

    async def activate_model(self, version: int | None, now: datetime, audit: AuditEvent) -> bool:
        async with self._write() as conn:
            if version is not None:
                found = await conn.execute(
                    select(_learning.MODELS.version).where(_learning.MODELS.version == version)
                )
                if found.first() is None:
                    return False
            await _learning.activate(conn, version, now)
            await _append_audit(conn, (audit,), self.audit_key)
        return True

    async def active_model(self) -> PredictionModel | None:
        async with self._read() as conn:
            found = await _learning.models(conn, active_only=True)
        return found[0] if found else None
