"""The Authenticator as a FastAPI dependency: a refused token is a bare 401 over HTTP."""

# No ``from __future__ import annotations`` here: FastAPI must resolve the annotations of the
# dependency defined inside demo_app, which a string annotation could not reach.

from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse

from cds_service.auth.tokens import Authenticator, ClientIdentity, Unauthorized

pytestmark = pytest.mark.anyio


def demo_app(authenticator: Authenticator) -> FastAPI:
    app = FastAPI()

    async def client(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> ClientIdentity | None:
        return await authenticator.authenticate(authorization, request.url.path)

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized) -> JSONResponse:
        # The reason stays in the server log; the caller learns nothing about which check failed.
        return JSONResponse(
            {"error": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.get("/cds-services/itb-patient-view")
    async def service(
        identity: Annotated[ClientIdentity | None, Depends(client)],
    ) -> dict[str, str | None]:
        assert identity is not None
        return {"iss": identity.iss}

    return app


@pytest.fixture
async def app_client(authenticator):
    transport = httpx.ASGITransport(app=demo_app(authenticator))
    # The Host header the client sends must not matter: aud is checked against the
    # configured public base URL.
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_a_valid_token_reaches_the_endpoint(app_client, mint, keys, kit):
    response = await app_client.get(
        kit.SERVICE_PATH, headers={"Authorization": mint.bearer(keys.ec256)}
    )

    assert response.status_code == 200
    assert response.json() == {"iss": kit.EHR_ISSUER}


async def test_no_token_is_a_bare_401(app_client, kit):
    response = await app_client.get(kit.SERVICE_PATH)

    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized"}
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_token_for_the_host_header_url_is_a_bare_401(app_client, mint, keys, kit):
    token = mint.bearer(keys.ec256, aud="http://testserver" + kit.SERVICE_PATH)

    response = await app_client.get(kit.SERVICE_PATH, headers={"Authorization": token})

    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized"}


async def test_a_replayed_token_is_a_401_the_second_time(app_client, mint, keys, kit):
    headers = {"Authorization": mint.bearer(keys.ec256)}

    first = await app_client.get(kit.SERVICE_PATH, headers=headers)
    second = await app_client.get(kit.SERVICE_PATH, headers=headers)

    assert (first.status_code, second.status_code) == (200, 401)
