"""Shortly as every check talks to it: the config it needs to start, its setup command, its HTTP surface.

The HTTP surface is the contract in CONTRIBUTING.md ("The app: Shortly"). Each helper sends one kind of
request through a client (the app's own, or one shared by several apps as a visitor behind a load
balancer) and turns an answer that breaks the contract into a CheckFailed that says what was seen.
"""

from __future__ import annotations

import re

from ..http import Client, json_of
from ..process import wait_until
from ..runners import ServingApp
from . import CheckFailed

# The config every later app state requires to start at all; a check of an earlier factor adds it so that
# solutions of later factors (which fail fast without it) still pass every earlier check.
REQUIRED_APP_ENV = {"SHORTLY_SECRET_KEY": "factorlab-check-not-a-secret"}
# The documented one-off setup of a freshly attached database (from factor IV on).
SETUP = ["-m", "flask", "--app", "shortly", "init-db"]
SETUP_TEXT = "flask --app shortly init-db"
QUEUED_WITHIN = 20.0  # seconds for a worker to store the title of a page that answers at once
CODE_IN_LOCATION = re.compile(r"/stats/([A-Za-z0-9_-]+)$")


def _on(where: str) -> str:
    return f" on {where}" if where else ""


def create_link(app: ServingApp, url: str, *, client: Client | None = None, where: str = "",
                **extra) -> dict:
    """POST /api/links {"url": url, **extra}: the new link's JSON, or CheckFailed unless 201 with a code."""
    made = (client or app.client).post(app, "/api/links", json={"url": url, **extra})
    link = json_of(made) if made.status_code == 201 else {}
    if not isinstance(link.get("code"), str):
        raise CheckFailed(f"Seen: POST /api/links{_on(where)} answered {made.status_code}.{app.last_words()}\n"
                          "Expected: 201 and the new link as JSON, with its code.")
    return link


def shorten(app: ServingApp, url: str, *, client: Client | None = None, where: str = "") -> str:
    """POST /shorten with the form field url: the new link's code, from the 303 to /stats/<code>."""
    made = (client or app.client).post(app, "/shorten", data={"url": url})
    found = CODE_IN_LOCATION.search(made.headers.get("Location", "")) if made.status_code == 303 else None
    if not found:
        raise CheckFailed(f"Seen: the form (POST /shorten){_on(where)} answered {made.status_code}"
                          f"{' to ' + made.headers['Location'] if 'Location' in made.headers else ''}."
                          f"{app.last_words()}\nExpected: 303 to /stats/<code> of the new link.")
    return found[1]


def link(app: ServingApp, code: str, *, client: Client | None = None) -> dict | None:
    """GET /api/links/<code>: the link's JSON, or None when the app does not know it (404)."""
    shown = (client or app.client).get(app, f"/api/links/{code}")
    return json_of(shown) if shown.status_code == 200 else None


def queued_title(app: ServingApp, code: str, wanted: str, timeout: float = QUEUED_WITHIN) -> str:
    """The title link code shows once a worker has stored it (its page answers at once): the wanted one, or
    whatever it shows when timeout runs out."""
    seen = {"title": ""}

    def stored() -> bool:
        seen["title"] = (link(app, code) or {}).get("title") or ""
        return seen["title"] == wanted

    wait_until(stored, timeout, every=0.1)
    return seen["title"]


def clicks(app: ServingApp, code: str, *, client: Client | None = None) -> int | None:
    """The link's clicks as the app reports them; None when it does not know the link."""
    found = link(app, code, client=client)
    return None if found is None else found.get("clicks")


def recent(app: ServingApp, *, client: Client | None = None, where: str = "") -> list:
    """GET /api/recent: this visitor's recent link codes, or CheckFailed unless 200 with a list."""
    shown = (client or app.client).get(app, "/api/recent")
    codes = json_of(shown).get("recent") if shown.status_code == 200 else None
    if not isinstance(codes, list):
        raise CheckFailed(f"Seen: GET /api/recent{_on(where)} answered {shown.status_code}.{app.last_words()}\n"
                          "Expected: 200 and JSON {\"recent\": [code, …]}.")
    return codes


def follow(app: ServingApp, code: str, *, client: Client | None = None, where: str = "") -> str:
    """GET /<code>: the target it redirects to, or CheckFailed unless 302."""
    followed = (client or app.client).get(app, f"/{code}")
    if followed.status_code != 302:
        raise CheckFailed(f"Seen: following a link made a moment before answered {followed.status_code}"
                          f"{_on(where)}.{app.last_words()}\nExpected: 302 to its target.")
    return followed.headers.get("Location", "")


def clicks_text(count: int | None) -> str:
    return "did not know the link" if count is None else f"reported {count!r}"
