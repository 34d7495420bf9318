"""Admin API service: FastAPI app, the console's static files, token or session auth (see
session.py), error shapes that never echo secrets."""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from services.api.form_errors import plain_message
from services.api.routes import (
    audit,
    conflicts,
    connectors,
    failures,
    identities,
    session,
    shares,
    stats,
)
from services.api.routes import held_deletes as deletes
from shared.app.runtime import Runtime
from shared.config import settings as settings_mod
from shared.config.settings import ApiSettings
from shared.observability import telemetry

CONSOLE = Path(__file__).parent / "console"


async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each bad field in plain words (form_errors), without echoing the submitted
    values (they may be secrets)."""
    detail = [{"loc": list(e.get("loc", ())), "msg": plain_message(dict(e)),
               "type": e.get("type", "")} for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.rt = await Runtime.open(settings)
        yield
        await app.state.rt.close()

    app = FastAPI(title="ScaiDrive Connectors", version="1", lifespan=lifespan,
                  openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs", redoc_url=None)
    app.state.settings = settings
    app.exception_handler(RequestValidationError)(validation_error)
    for module in (shares, connectors, failures, identities, audit, deletes, conflicts, stats):
        app.include_router(module.router, dependencies=[Depends(session.authenticate)])
    app.include_router(session.router)  # login/logout: the token is in the body
    app.mount("/console", StaticFiles(directory=CONSOLE, html=True), name="console")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/console/")

    @app.get("/connectors/{cid}", include_in_schema=False)
    async def connector_page(cid: str) -> RedirectResponse:
        """Where conflict emails link ({console_url}/connectors/{id}): its conflicts tab."""
        return RedirectResponse(f"/console/#/connectors/{quote(cid, safe='')}/conflicts")

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict:
        return {"ok": True}

    return app


def main() -> None:
    settings = settings_mod.load(ApiSettings)
    telemetry.setup("api", settings.log_level, settings.trace_paths)
    app = create_app(settings)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,console")
    try:
        uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_config=None,
                    access_log=False)
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
