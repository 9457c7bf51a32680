"""The pages that file a request: the catalogue, the form, and the confirmation a mailed
link leads to (a GET shows, the button's POST files it into the spool)."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from maild.deciding.web_jobs import WebKind
from maild.web import catalogue, compose
from maild.web.form import Field
from maild.web.guard import PageBase, client_of
from maild.web.tokens import Purpose

log = logging.getLogger("maild.web")


class RequestPages(PageBase):
    """The catalogue, the form and the confirmation."""

    async def categories(self, request: web.Request) -> web.Response:
        org = self.site.organisation()      # the rules in force (run() re-reads them when they change)
        return self.pages.render("categories.html.j2", sections=catalogue.build(org, self.site.organisation.rules),
                                 hints=catalogue.KIND_HINT_RU)

    async def stylesheet(self, request: web.Request) -> web.Response:
        return web.Response(text=self.pages.stylesheet, content_type="text/css", charset="utf-8")

    # -- the form ------------------------------------------------------------------------------
    def _form(self, request: web.Request, status: int = 200, errors: tuple[str, ...] = (),
              values: dict[str, str] | None = None) -> web.Response:
        org = self.site.organisation()
        return self.page(request, "form.html.j2", status=status, sections=catalogue.build(org, ()),
                         errors=errors, values=values or {}, domains=org.domains,
                         max_mb=self.site.max_upload // (1024 * 1024))

    async def form(self, request: web.Request) -> web.Response:
        return self._form(request)

    async def submit(self, request: web.Request) -> web.Response:
        site = self.site
        fields, uploads, refused = await self.posted(request, files=True)
        if refused is not None:
            return refused
        org = site.organisation()
        request_form = Field.request(fields, org)
        if request_form.errors:
            return self._form(request, 422, request_form.errors, fields)
        address, department, category = request_form.address, request_form.department, request_form.category
        if not site.per_address.allow(address):
            return self.notice(429, "Слишком много обращений с этого адреса",
                               "За последний час с этого адреса отправлено много форм. Подтвердите уже "
                               "отправленные по ссылкам из писем или попробуйте позже.")
        to = f"{department.local_part}+{category.tag}@{department.domain}" if category else department.address
        raw = compose.request(address, to, request_form.subject, request_form.text, tuple(uploads), site.hostname,
                              category.name if category else "")
        pending = await asyncio.to_thread(site.state.hold, compose.envelope(address, to), raw)
        token = site.signer.dumps(Purpose.CONFIRM, {"p": pending, "a": address,
                                                    "g": site.state.generation(address)})
        job = compose.job(WebKind.CONFIRM, address, department.address, f"/confirm/{token}", site.hostname,
                          category.name if category else "")
        await asyncio.to_thread(site.spool_put, compose.envelope(address, department.address), job)
        log.info("form from %s: %s, waiting for confirmation (%s)", client_of(request), address, pending)
        raise web.HTTPSeeOther("/sent")

    async def sent(self, request: web.Request) -> web.Response:
        return self.notice(200, "Проверьте почту",
                           "Письмо со ссылкой для подтверждения отправлено на указанный адрес. Заявка будет "
                           "подана, когда вы откроете ссылку и нажмёте кнопку. Письмо может прийти через "
                           "несколько минут; проверьте и папку «Спам».", ("/", "Новое обращение"))

    # -- confirming a request --------------------------------------------------------------
    async def confirm_page(self, request: web.Request) -> web.Response:
        payload = self.link(Purpose.CONFIRM, request.match_info["token"])
        if isinstance(payload, web.Response):
            return payload
        state = self.site.state
        if state.filed(payload["p"]):
            return self._filed()
        waiting = await asyncio.to_thread(state.waiting, payload["p"])
        if waiting is None:
            return self.notice(410, "Ссылка устарела", "Обращение не найдено: ссылка устарела. Отправьте форму "
                               "ещё раз.", ("/", "Открыть форму"))
        summary = compose.summary(waiting[1])
        return self.page(request, "confirm.html.j2", summary=summary, action=request.path)

    async def confirm(self, request: web.Request) -> web.Response:
        payload = await self.pressed(request, Purpose.CONFIRM)
        if isinstance(payload, web.Response):
            return payload
        state = self.site.state
        if await asyncio.to_thread(state.file_into, payload["p"], self.site.spool_put):
            log.info("request of %s confirmed: into the spool (%s)", payload["a"], payload["p"])
            return self._filed(first=True)
        if state.filed(payload["p"]):
            return self._filed()
        return self.notice(410, "Ссылка устарела", "Обращение не найдено: ссылка устарела. Отправьте форму ещё раз.",
                           ("/", "Открыть форму"))

    def _filed(self, first: bool = False) -> web.Response:
        return self.notice(200, "Заявка подана" if first else "Заявка уже подана",
                           "Письмо с номером заявки придёт на ваш адрес через минуту. Отвечайте на него, "
                           "чтобы дополнить заявку. Все ваши заявки — в «Моих заявках».", ("/my", "Мои заявки"))

    # -- "мои заявки" -------------------------------------------------------------------------
