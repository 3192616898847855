"""SQL of standing approvals and prediction models (bot.core.learning), used by sql.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal_column, select, update
from sqlalchemy.engine import Result, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.errors import StandingExhausted
from bot.core.learning import PredictionModel, StandingApproval, StandingUse
from routing import Risk
from storage.models import PredictionModelRow, StandingApprovalRow

GRANTS = StandingApprovalRow
MODELS = PredictionModelRow


async def use_standing(conn: AsyncConnection, use: StandingUse) -> None:
    """Count one use of a grant, or raise StandingExhausted.

    One conditional UPDATE: on PostgreSQL a second writer blocks on the row lock and then
    re-checks `uses < max_uses` against the committed row, so of N replicas racing for the
    last use exactly one matches; SQLite serialises writers outright.
    """
    counted: Result[Any] = await conn.execute(
        update(GRANTS)
        .where(
            GRANTS.id == use.grant_id,
            GRANTS.revoked_at.is_(None),
            GRANTS.expires_at > use.at,
            GRANTS.uses < GRANTS.max_uses,
        )
        .values(uses=GRANTS.uses + 1)
        .returning(literal_column("1"))
    )
    if counted.first() is None:
        raise StandingExhausted(f"standing approval {use.grant_id} has no use left")


def grant_values(grant: StandingApproval) -> dict[str, Any]:
    return {
        "id": grant.id,
        "grantor": grant.grantor,
        "agent_id": grant.agent_id,
        "kind": grant.kind,
        "condition": grant.when,
        "max_risk": grant.max_risk.value,
        "max_uses": grant.max_uses,
        "uses": grant.uses,
        "reason": grant.reason,
        "created_at": grant.created_at,
        "expires_at": grant.expires_at,
        "revoked_at": grant.revoked_at,
        "revoked_by": grant.revoked_by,
    }


def grant(row: RowMapping) -> StandingApproval:
    return StandingApproval(
        id=row["id"],
        grantor=row["grantor"],
        agent_id=row["agent_id"],
        kind=row["kind"],
        when=row["condition"],
        max_risk=Risk(row["max_risk"]),
        max_uses=row["max_uses"],
        uses=row["uses"],
        reason=row["reason"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        revoked_by=row["revoked_by"],
    )


async def grants(
    conn: AsyncConnection,
    *,
    agent_id: str | None,
    kind: str | None,
    active_at: datetime | None,
) -> list[StandingApproval]:
    query = select(GRANTS).order_by(GRANTS.created_at, GRANTS.id)
    if agent_id is not None:
        query = query.where(GRANTS.agent_id == agent_id)
    if kind is not None:
        query = query.where(GRANTS.kind == kind)
    if active_at is not None:
        query = query.where(
            GRANTS.revoked_at.is_(None),
            GRANTS.expires_at > active_at,
            GRANTS.uses < GRANTS.max_uses,
        )
    return [grant(row) for row in (await conn.execute(query)).mappings()]


async def revoke(
    conn: AsyncConnection, grant_id: str, by: str, now: datetime
) -> StandingApproval | None:
    revoked = await conn.execute(
        update(GRANTS)
        .where(GRANTS.id == grant_id, GRANTS.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=by)
        .returning(*GRANTS.__table__.columns)
    )
    row = revoked.mappings().first()
    return None if row is None else grant(row)


def model_values(model: PredictionModel) -> dict[str, Any]:
    return {
        "version": model.version,
        "created_at": model.created_at,
        "created_by": model.created_by,
        "window_start": model.window_start,
        "window_end": model.window_end,
        "features": list(model.features),
        "parameters": dict(model.parameters),
        "metrics": dict(model.metrics),
        "sha256": model.sha256,
        "active": model.active,
        "activated_at": model.activated_at,
    }


def model(row: RowMapping) -> PredictionModel:
    return PredictionModel(
        version=row["version"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        features=tuple(row["features"]),
        parameters=row["parameters"],
        metrics=row["metrics"],
        sha256=row["sha256"],
        active=row["active"],
        activated_at=row["activated_at"],
    )


async def next_version(conn: AsyncConnection) -> int:
    found = await conn.execute(select(func.coalesce(func.max(MODELS.version), 0)))
    return int(found.scalar_one()) + 1


async def models(conn: AsyncConnection, *, active_only: bool = False) -> list[PredictionModel]:
    query = select(MODELS).order_by(MODELS.version.desc())
    if active_only:
        query = query.where(MODELS.active.is_(True))
    return [model(row) for row in (await conn.execute(query)).mappings()]


async def activate(
    conn: AsyncConnection, version: int | None, now: datetime
) -> Sequence[PredictionModel]:
    """Make `version` the only active model (None: none). Returns the rows activated."""
    await conn.execute(
        update(MODELS).where(MODELS.active.is_(True)).values(active=False, activated_at=None)
    )
    if version is None:
        return []
    found = await conn.execute(
        update(MODELS)
        .where(MODELS.version == version)
        .values(active=True, activated_at=now)
        .returning(*MODELS.__table__.columns)
    )
    return [model(row) for row in found.mappings()]
