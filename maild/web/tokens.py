"""Signed values of the web pages (itsdangerous): the form's anti-forgery field, the mailed
links and the sign-in session. Each purpose has a salt of its own, so a value made for one
is refused as another; every value carries its time and is refused past its age.

Failure: ``Refused`` with ``expired`` set or not (the page says "устарела" or "неверна").
Security: the key is the installation's secret (``auth.secret`` or ``reply-secret`` in the
data directory), shared with the worker, never sent anywhere.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class Purpose(enum.StrEnum):
    FORM = "form"           # a form's hidden field, bound to the browser's cookie
    CONFIRM = "confirm"     # the mailed link that files a request from the form
    SIGN_IN = "sign-in"     # the mailed link into "мои заявки"
    SESSION = "session"     # the cookie of a signed-in browser


class Refused(Exception):
    def __init__(self, expired: bool):
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


@dataclass(frozen=True)
class Signer:
    secret: bytes

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret, salt=f"maild-web-{purpose.value}")

    def dumps(self, purpose: Purpose, payload: dict[str, str | int]) -> str:
        return str(self._serializer(purpose).dumps(payload))

    def loads(self, purpose: Purpose, token: str, max_age: int) -> dict:
        """The payload, or Refused (tampered, made for another purpose, or too old)."""
        try:
            payload = self._serializer(purpose).loads(token, max_age=max_age)
        except SignatureExpired:
            raise Refused(expired=True) from None
        except (BadSignature, UnicodeError, ValueError):
            raise Refused(expired=False) from None
        if not isinstance(payload, dict):
            raise Refused(expired=False)
        return payload
