"""Admin API service: FastAPI app, bearer-token auth, error shapes that never echo secrets."""
from __future__ import annotations

import hmac
from contextlib import asynccontextmanager

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shared import settings as settings_mod
from shared import telemetry
from shared.runtime import Runtime
from shared.settings import ApiSettings
from services.api import audit, conflicts, deletes, identities
from services.api.handlers import router


def require_token(request: Request) -> None:
    expected = request.app.state.settings.api_token.get_secret_value()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong bearer token",
                            headers={"WWW-Authenticate": "Bearer"})


async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each bad field, without echoing the submitted values (they may be secrets)."""
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()]
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
    app.add_exception_handler(RequestValidationError, validation_error)
    app.include_router(router, dependencies=[Depends(require_token)])
    app.include_router(identities.router, dependencies=[Depends(require_token)])
    app.include_router(audit.router, dependencies=[Depends(require_token)])
    app.include_router(deletes.router, dependencies=[Depends(require_token)])
    app.include_router(conflicts.router, dependencies=[Depends(require_token)])

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict:
        return {"ok": True}

    return app


def main() -> None:
    settings = settings_mod.load(ApiSettings)
    telemetry.setup("api", settings.log_level)
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port,
                log_config=None, access_log=False)


if __name__ == "__main__":
    main()
