"""Logging in over HTTP (httpx on the app) for page tests without a browser."""

from __future__ import annotations

import re

import httpx

from tests.factories import Person


async def web_login(client: httpx.AsyncClient, person: Person) -> str:
    """Log ``person`` in with the login form; the client keeps the cookies. Returns the CSRF
    token to put in forms."""
    page = await client.get("/ui/login")
    token = csrf_of(page.text)
    r = await client.post(
        "/ui/login", data={"email": person.email, "password": person.password, "csrf_token": token}
    )
    assert r.status_code == 303, r.text
    return token


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html[:500]
    return found.group(1)
