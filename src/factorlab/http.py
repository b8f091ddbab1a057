"""One HTTP client for talking to running apps, as one visitor with one cookie jar.

A browser sends a cookie to a host whatever its port, so one Client talking to several apps on
127.0.0.1 shows every one of them the same session cookie, as a load balancer in front of them would.
"""

from __future__ import annotations

import requests

TIMEOUT = 10.0


class Client:
    """One visitor: a requests.Session whose cookies go to every app on 127.0.0.1, whatever its port."""

    def __init__(self, *, keep_cookies: bool = False) -> None:
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy between the check and a loopback app
        # keep_cookies: send every cookie again whatever its Expires says, as a copied cookie would be: what
        # the app then refuses, it refuses itself (and a cookie whose Expires the app rounded down to the
        # second is not lost a moment after it was set)
        self.keep_cookies = keep_cookies

    @property
    def cookies(self):
        return self.session.cookies

    def request(self, app, method: str, path: str, **kwargs) -> requests.Response:
        """Send a request to app (anything with .url and .last_words()); AppFailed when nothing answers."""
        from .runners import AppFailed

        kwargs.setdefault("timeout", TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        try:
            answer = self.session.request(method, app.url + path, **kwargs)
        except requests.RequestException as exc:
            raise AppFailed(f"{method} {path} got no answer from the app ({type(exc).__name__})"
                            f"{app.last_words()}") from None
        if self.keep_cookies:
            for cookie in self.session.cookies:
                cookie.expires = None
        return answer

    def get(self, app, path: str, **kwargs) -> requests.Response:
        return self.request(app, "GET", path, **kwargs)

    def post(self, app, path: str, **kwargs) -> requests.Response:
        return self.request(app, "POST", path, **kwargs)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def json_of(response: requests.Response) -> dict:
    """A response's JSON object, or {} when it is not one."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
