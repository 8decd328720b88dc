"""Liveness and readiness: 200 once the database answers, 503 otherwise."""

from litestar import MediaType, Response, get

from portal import db


@get("/healthz", media_type=MediaType.JSON, opt={"public": True})
async def healthz() -> Response:
    if await db.ping():
        return Response({"status": "ok", "database": "ok"}, status_code=200)
    return Response({"status": "unavailable", "database": "down"}, status_code=503)
