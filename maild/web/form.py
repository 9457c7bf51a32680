"""Reading a POST of the web pages, and checking what was typed.

A body is read as it streams in and refused as soon as it passes its limit (``TooLarge``),
never read whole first: text fields together up to ``MAX_BODY``, files up to the size a
mail may have. What was typed comes back as typed values (``RequestForm``) or as the
sentences, in Russian, that the form shows above itself.
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from aiohttp import BodyPartReader, web

from maild.deciding.organisation import Category, Department, Organisation
from maild.web.compose import Upload

MAX_FILES = 10
BODY_SECONDS = 300          # as smtp.data_timeout: the longest a form with files may take to arrive
MAX_TEXT = 20_000           # characters of a description or reply
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


class FormError(Exception):
    """Not a form our pages send (the page says so in Russian)."""


class TooLarge(FormError):
    pass


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} МБ"


async def read_form(request: web.Request, max_files: int, max_fields: int) -> tuple[dict[str, str], list[Upload]]:
    """The text fields and the files; files only where ``max_files`` allows them. A body that
    trickles in is given up after ``BODY_SECONDS`` (a slow client must not hold the pages)."""
    try:
        async with asyncio.timeout(BODY_SECONDS if max_files else BODY_SECONDS // 10):
            return await _read(request, max_files, max_fields)
    except TimeoutError:
        raise FormError("Форма передавалась слишком долго. Попробуйте ещё раз.") from None


async def _read(request: web.Request, max_files: int, max_fields: int) -> tuple[dict[str, str], list[Upload]]:
    limit = max_files + max_fields
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(_too_large(max_files))
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            posted = await request.post()          # the app's client_max_size (MAX_BODY) bounds it
        except web.HTTPRequestEntityTooLarge:
            raise TooLarge(_too_large(0)) from None
        except (UnicodeError, LookupError, ValueError):      # not UTF-8, or a charset nobody knows
            raise FormError("Форма пришла в неизвестной кодировке. Откройте страницу заново.") from None
        return {k: v for k, v in posted.items() if isinstance(v, str)}, []
    if request.content_type != "multipart/form-data":
        raise FormError("Форма пришла в неизвестном виде. Откройте страницу заново.")
    fields: dict[str, str] = {}
    uploads: list[Upload] = []
    text_size = file_size = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or not part.name:
                continue
            data = bytearray()
            while chunk := await part.read_chunk(64 * 1024):
                if part.filename is None:
                    text_size += len(chunk)
                else:
                    file_size += len(chunk)
                if text_size > max_fields or file_size > max_files:
                    raise TooLarge(_too_large(max_files))
                data += chunk
            if part.filename is None:
                fields.setdefault(part.name, bytes(data).decode("utf-8", "replace"))
                continue
            if part.filename or data:        # an empty file input sends an empty part
                if len(uploads) >= MAX_FILES:
                    raise TooLarge(f"Можно приложить не больше {MAX_FILES} файлов.")
                uploads.append(Upload(part.filename, part.headers.get("Content-Type", ""), bytes(data)))
    except (ValueError, AssertionError, UnicodeError, LookupError) as exc:      # a broken multipart body
        raise FormError("Форма пришла повреждённой. Откройте страницу заново.") from exc
    return fields, uploads


def _too_large(max_files: int) -> str:
    if max_files <= 0:
        return "Форма слишком велика."
    return f"Файлы вместе больше {_megabytes(max_files)} — столько же, сколько можно приложить к письму. " \
           "Уменьшите их или пришлите ссылку на общую папку."


@dataclass(frozen=True)
class RequestForm:
    address: str
    department: Department
    category: Category | None
    subject: str
    text: str
    errors: tuple[str, ...] = ()


class Field:
    @staticmethod
    def address(value: str, org: Organisation) -> tuple[str, tuple[str, ...]]:
        address = value.strip().lower()
        if not _ADDRESS.match(address):
            return address, ("Укажите адрес электронной почты, например ivanov@torex.ru.",)
        if "+" in address.split("@", 1)[0]:
            # One mailbox has one address here: a +tag would get round the per-address limit
            # and put a stranger's words into the To: of a genuine helpdesk mail.
            return address, ("Укажите свой адрес без «+…», например ivanov@torex.ru.",)
        if not org.is_corporate(address) or org.is_department_address(address):
            return address, (f"Заявки принимаются только с корпоративных адресов ({', '.join(org.domains)}). "
                             "Укажите свой рабочий адрес.",)
        return address, ()

    @staticmethod
    def request(fields: dict[str, str], org: Organisation) -> RequestForm:
        address, errors = Field.address(fields.get("email", ""), org)
        code, _, tag = fields.get("category", "").partition(":")
        department = org.department(code) if code else None
        category = department.category(tag) if department is not None and tag else None
        problems = list(errors)
        if department is None or (tag and category is None):
            problems.append("Выберите отдел и категорию обращения из списка.")
        subject = " ".join(fields.get("subject", "").split())
        text = fields.get("text", "").strip()
        if not subject:
            problems.append("Напишите тему: коротко, в чём дело.")
        if not text:
            problems.append("Опишите проблему или просьбу.")
        if len(subject) > 200 or len(text) > MAX_TEXT:
            problems.append(f"Тема — до 200 знаков, описание — до {MAX_TEXT} знаков.")
        return RequestForm(address, department or org.departments[0], category, subject, text, tuple(problems))
