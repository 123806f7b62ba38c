"""``/v1/segments``: every segment, a segment's members a page at a time (ids, or a table of
their figures), and its trend."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import AfterValidator

from audience.api.edge import responses
from audience.bootstrap import ProfilesApiDeps
from audience.measure.kpis import stored_kpis
from audience.services.segments import (
    MembersPage,
    MemberTable,
    SegmentDetail,
    SegmentList,
    Trend,
    detail,
    list_segments,
    member_table,
    page,
    trend,
)

SegmentId = Annotated[
    str, Path(max_length=768, description="as GET /v1/segments lists it, e.g. tier:high-value"), AfterValidator(unquote)
]


def router(deps: Callable[[], ProfilesApiDeps]) -> Router:
    routes = Router()  # type: ignore[no-untyped-call]

    @routes.get("/v1/segments", summary="Every segment with its definition, size, model version and KPIs",
                responses=responses(503))  # fmt: skip
    def get_segments() -> SegmentList:
        d, now = deps(), datetime.now(UTC)
        measured = stored_kpis(d.artifacts.measures.kpis())  # sizes included: no count per request
        return list_segments(d.model.get(now), d.rules.get(now), d.profiles, measured, d.currency)

    @routes.get("/v1/segments/<segmentId>", summary="A segment: definition, size, description and KPIs",
                responses=responses(400, 404, 503))  # fmt: skip
    def get_segment(segmentId: SegmentId) -> SegmentDetail:  # noqa: N803
        d, now = deps(), datetime.now(UTC)
        measured = stored_kpis(d.artifacts.measures.kpis())
        return detail(segmentId, d.model.get(now), d.rules.get(now), d.profiles, measured, d.currency)

    @routes.get("/v1/segments/<segmentId>/customers", summary="A segment's members, a page at a time",
                responses=responses(400, 404, 503))  # fmt: skip
    def get_members(
        segmentId: SegmentId,  # noqa: N803
        cursor: Annotated[str | None, Query(max_length=2048, description="nextCursor of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> MembersPage:
        d, now = deps(), datetime.now(UTC)
        return page(segmentId, d.model.get(now), d.rules.get(now), d.profiles, limit, cursor)

    @routes.get("/v1/segments/<segmentId>/members",
                summary="A segment's members with last order, orders, revenue, CLV, churn risk and consent",
                responses=responses(400, 404, 503))  # fmt: skip
    def get_member_table(
        segmentId: SegmentId,  # noqa: N803
        cursor: Annotated[str | None, Query(max_length=2048, description="nextCursor of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 100,
    ) -> MemberTable:
        d, now = deps(), datetime.now(UTC)
        return member_table(segmentId, d.model.get(now), d.rules.get(now), d.profiles, d.profiles, limit, cursor,
                            d.currency)  # fmt: skip

    @routes.get("/v1/segments/<segmentId>/trend",
                summary="The segment's size and share day by day, with the customers entering and leaving",
                responses=responses(400, 404, 503))  # fmt: skip
    def get_trend(segmentId: SegmentId) -> Trend:  # noqa: N803
        d, now = deps(), datetime.now(UTC)
        measures = d.artifacts.measures
        return trend(segmentId, d.model.get(now), d.rules.get(now), stored_kpis(measures.kpis()), measures.trends())

    return routes
