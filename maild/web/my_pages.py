""""Мои заявки": a mailed sign-in link (its button's POST sets the session cookie), the
person's tickets and one ticket's public conversation with a reply box (the reply goes into
the spool as a mail would), and "выйти везде"."""
from __future__ import annotations

import asyncio
import logging
import secrets

from aiohttp import web

from maild.deciding.web_jobs import WebKind
from maild.web import compose
from maild.web.form import Field
from maild.web.guard import PageBase, client_of
from maild.web.site import SESSION_COOKIE
from maild.web.tokens import Purpose, Refused

log = logging.getLogger("maild.web")


class MyPages(PageBase):
    """Signing in by a mailed link, the list, one conversation, a reply, leaving everywhere."""

    def _session(self, request: web.Request) -> str | None:
        site = self.site
        try:
            payload = site.signer.loads(Purpose.SESSION, request.cookies.get(SESSION_COOKIE, ""), site.link_seconds)
        except Refused:
            return None
        address = str(payload.get("a", ""))
        return address if address and int(payload.get("g", -1)) == site.state.generation(address) else None

    async def my(self, request: web.Request) -> web.Response:
        address = self._session(request)
        if address is None:
            return self.page(request, "my_sign_in.html.j2", errors=(), values={})
        records = self.site.records
        tickets = await asyncio.to_thread(records.tickets, address)
        return self.page(request, "my_list.html.j2", address=address, tickets=tickets)

    async def sign_in(self, request: web.Request) -> web.Response:
        site = self.site
        fields, _, refused = await self.posted(request)
        if refused is not None:
            return refused
        org = site.organisation()
        address, errors = Field.address(fields.get("email", ""), org)
        if errors:
            return self.page(request, "my_sign_in.html.j2", status=422, errors=errors, values=fields)
        # The same answer whether or not the address has tickets, or has asked before: the
        # page tells nothing about anyone.
        if site.per_address.allow(address):
            token = site.signer.dumps(Purpose.SIGN_IN, {"a": address, "g": site.state.generation(address),
                                                        "j": secrets.token_hex(8)})
            department = org.departments[0]
            job = compose.job(WebKind.SIGN_IN, address, department.address, f"/my/enter/{token}", site.hostname)
            await asyncio.to_thread(site.spool_put, compose.envelope(address, department.address), job)
        raise web.HTTPSeeOther("/my/sent")

    async def sign_in_sent(self, request: web.Request) -> web.Response:
        return self.notice(200, "Проверьте почту",
                           "Если адрес верен, на него отправлено письмо со ссылкой для входа. Ссылка действует "
                           f"{self.site.link_seconds // 3600} ч.", ("/my", "Назад"))

    async def enter_page(self, request: web.Request) -> web.Response:
        payload = self.link(Purpose.SIGN_IN, request.match_info["token"])
        if isinstance(payload, web.Response):
            return payload
        return self.page(request, "my_enter.html.j2", address=payload["a"], action=request.path)

    async def enter(self, request: web.Request) -> web.Response:
        payload = await self.pressed(request, Purpose.SIGN_IN)
        if isinstance(payload, web.Response):
            return payload
        site = self.site
        # A link signs in once: one that leaks after its use (a forwarded mail, a proxy's log)
        # opens nothing.
        if not await asyncio.to_thread(site.state.use_once, str(payload.get("j", ""))):
            return self.notice(410, "Ссылка уже использована", "По этой ссылке уже выполнен вход. Чтобы войти "
                               "ещё раз, запросите новую ссылку.", ("/my", "Войти"))
        response = web.Response(status=303, headers={"Location": "/my"})
        response.set_cookie(SESSION_COOKIE, site.signer.dumps(Purpose.SESSION, {"a": payload["a"], "g": payload["g"]}),
                            max_age=site.link_seconds, httponly=True, samesite="Strict", secure=site.secure, path="/")
        log.info("%s signed in to the web pages from %s", payload["a"], client_of(request))
        return response

    async def leave(self, request: web.Request) -> web.Response:
        _, _, refused = await self.posted(request)
        if refused is not None:
            return refused
        address = self._session(request)
        response = web.Response(status=303, headers={"Location": "/my"})
        if address is not None:
            await asyncio.to_thread(self.site.state.revoke, address)
            log.info("%s signed out everywhere: every link and session of it ends", address)
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    async def ticket(self, request: web.Request, status: int = 200, errors: tuple[str, ...] = (),
                     sent: bool = False) -> web.Response:
        address = self._session(request)
        if address is None:
            raise web.HTTPSeeOther("/my")
        records = self.site.records
        number = request.match_info["number"].upper()
        found = await asyncio.to_thread(records.conversation, address, number)
        if found is None:           # not there, or not theirs: the same page
            return self.notice(404, "Заявка не найдена", f"Среди ваших заявок нет заявки {number}.",
                               ("/my", "Мои заявки"))
        return self.page(request, "my_ticket.html.j2", status=status, address=address, item=found.ticket,
                         entries=found.entries, errors=errors,
                         sent=sent or request.query.get("sent") == "1")

    async def reply(self, request: web.Request) -> web.Response:
        site = self.site
        fields, uploads, refused = await self.posted(request, files=True)
        if refused is not None:
            return refused
        address = self._session(request)
        if address is None:
            raise web.HTTPSeeOther("/my")
        number = request.match_info["number"].upper()
        records = site.records
        found = await asyncio.to_thread(records.conversation, address, number)
        if found is None:
            return self.notice(404, "Заявка не найдена", f"Среди ваших заявок нет заявки {number}.",
                               ("/my", "Мои заявки"))
        text = fields.get("text", "").strip()
        if not text:
            return await self.ticket(request, 422, ("Напишите текст ответа.",))
        department = site.organisation().department(found.ticket.department)
        if department is None:
            return self.notice(503, "Ответ не отправлен", "Отдел этой заявки сейчас не принимает ответы. "
                               "Напишите письмом.", ("/my", "Мои заявки"))
        raw = compose.reply(address, department.address, found.ticket.number, found.ticket.subject, text,
                            site.hostname, tuple(uploads))
        await asyncio.to_thread(site.spool_put, compose.envelope(address, department.address), raw)
        log.info("reply of %s on %s from the web pages: into the spool", address, number)
        raise web.HTTPSeeOther(f"/my/{number}?sent=1")
