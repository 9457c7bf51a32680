"""What every page with a form shares: the field bound to the browser's cookie (CSRF without
JavaScript), the check that a POST comes from our own pages, reading its body within limits,
the rate limit per client, and the refusal pages. The request pages and "мои заявки" are
subclasses of ``PageBase``."""
from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from aiohttp import web

from maild.web import compose
from maild.web.form import FormError, TooLarge, read_form
from maild.web.site import FORM_COOKIE, MAX_BODY, Site
from maild.web.tokens import Purpose, Refused


def _same_origin(request: web.Request, site: Site) -> bool:
    """The browser says the form was on our own pages: ``Sec-Fetch-Site`` (which no page can
    set), and ``Origin`` when it names one. Chromium sends ``Origin: null`` for a form on a page
    that sends no referrer; that counts only beside its own ``same-origin``. A browser that
    sends neither still needs the signed field and its cookie."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site != "same-origin":
        return False
    origin = request.headers.get("Origin")
    if origin is None or (origin == "null" and fetch_site == "same-origin"):
        return True
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}".lower() in site.origins


def _form_token(request: web.Request, site: Site) -> tuple[str, str]:
    """(the cookie's nonce, the field bound to it): the browser's cookie if it has one."""
    nonce = request.cookies.get(FORM_COOKIE, "")
    if not (16 <= len(nonce) <= 64 and nonce.isascii() and nonce.replace("-", "").replace("_", "").isalnum()):
        nonce = secrets.token_urlsafe(24)
    return nonce, site.signer.dumps(Purpose.FORM, {"n": nonce})


def _with_form_cookie(response: web.Response, nonce: str, site: Site) -> web.Response:
    response.set_cookie(FORM_COOKIE, nonce, max_age=site.link_seconds, httponly=True, samesite="Strict",
                        secure=site.secure, path="/")
    return response


def _form_ok(request: web.Request, site: Site, fields: dict[str, str]) -> bool:
    try:
        payload = site.signer.loads(Purpose.FORM, fields.get("csrf", ""), site.link_seconds)
    except Refused:
        return False
    cookie = request.cookies.get(FORM_COOKIE, "")
    return bool(cookie) and secrets.compare_digest(str(payload.get("n", "")), cookie)


def client_of(request: web.Request) -> str:
    return request.remote or "?"


class PageBase:
    """A group of pages of one site."""

    def __init__(self, site: Site):
        self.site = site
        self.pages = site.pages

    def page(self, request: web.Request, name: str, status: int = 200, **context) -> web.Response:
        """A page with forms: each carries the field bound to the browser's cookie."""
        nonce, token = _form_token(request, self.site)
        return _with_form_cookie(self.pages.render(name, status=status, csrf=token, **context), nonce, self.site)

    def notice(self, status: int, title: str, text: str, link: tuple[str, str] | None = None) -> web.Response:
        return self.pages.render("notice.html.j2", status=status, title=title, text=text, link=link)

    async def posted(self, request: web.Request,
                     files: bool = False) -> tuple[dict[str, str], list[compose.Upload], web.Response | None]:
        """The fields of a POST from our own pages, or the refusal to send instead."""
        site = self.site
        if not _same_origin(request, site):
            return {}, [], self.notice(403, "Форма отправлена не с нашего сайта",
                                       "Откройте страницу службы поддержки заново и отправьте форму с неё.")
        try:
            fields, uploads = await read_form(request, site.max_upload if files else 0, MAX_BODY)
        except TooLarge as exc:
            return {}, [], self.notice(413, "Слишком большой объём", str(exc))
        except FormError as exc:
            return {}, [], self.notice(400, "Форма не прочитана", str(exc))
        if not _form_ok(request, site, fields):
            return fields, uploads, self.notice(
                403, "Форма устарела", "Страница была открыта слишком давно или в другом браузере. "
                "Откройте её заново и отправьте ещё раз.", ("/", "Открыть форму"))
        if not site.per_client.allow(client_of(request)):
            return fields, uploads, self.notice(429, "Слишком много запросов",
                                                "С вашего компьютера было слишком много запросов за час. "
                                                "Попробуйте позже или напишите письмом.")
        return fields, uploads, None

    async def pressed(self, request: web.Request, purpose: Purpose) -> dict | web.Response:
        """A mailed link's button pressed: the POST checked, then the link's payload (or the
        page that refuses one or the other)."""
        _, _, refused = await self.posted(request)
        return refused if refused is not None else self.link(purpose, request.match_info["token"])

    def link(self, purpose: Purpose, token: str) -> dict | web.Response:
        """A mailed link's payload, or the page that refuses it (expired, tampered, revoked)."""
        site = self.site
        again = ("/", "Открыть форму") if purpose is Purpose.CONFIRM else ("/my", "Войти")
        try:
            payload = site.signer.loads(purpose, token, site.link_seconds)
        except Refused as exc:
            if exc.expired:
                return self.notice(410, "Ссылка устарела",
                                   f"Ссылка действует {site.link_seconds // 3600} ч. Запросите новую.", again)
            return self.notice(404, "Ссылка неверна", "Такой ссылки мы не отправляли. Скопируйте её из письма "
                               "целиком.", again)
        if int(payload.get("g", 0)) != site.state.generation(str(payload.get("a", ""))):
            return self.notice(410, "Ссылка отозвана", "Эта ссылка больше не действует: был выполнен выход "
                               "на всех устройствах.", ("/my", "Войти заново"))
        return payload
