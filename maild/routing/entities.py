"""Numbers read in context, then masked, so that what they look like decides nothing.

"Инвентарный номер принтера 0104-2211", "табельный 2178", "каб. 1205", "10.0.12.7:3389", "вн.
2250" in a signature are an inventory, a personnel, a room number, an address and the writer's
own extension. A factory PBX number (the policy's "номера заводской АТС, начинающиеся на 1 или
2") is a 4-digit number starting with 1 or 2 **in a phone context**: named as a PBX, an internal
number or a telephone line, and not the writer's own contact number. A number's shape alone is
never a PBX number.

``mask`` replaces each recognised span with a token (``__pbx__``, ``__inv__``, ...) that the
model reads as a word; the entities are returned for explanations.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class EntityKind(enum.Enum):
    PBX = "pbx"              # a factory PBX number 1xxx/2xxx in a phone context
    OFFICE_PHONE = "phone"   # another internal or city number in a phone context
    OWN_PHONE = "ext"        # the writer's own extension or contact number
    MOBILE = "mobile"        # a mobile number (+7 9xx ...)
    INVENTORY = "inv"
    PERSONNEL = "tab"
    DOCUMENT = "doc"         # order, invoice, contract, request numbers
    ROOM = "room"            # room, office, workshop, floor, building
    IP = "ip"
    PORT = "port"
    DATE = "date"
    TIME = "time"
    AMOUNT = "amount"
    NUMBER = "num"           # any other number


@dataclass(frozen=True)
class Entity:
    kind: EntityKind
    text: str

    @property
    def token(self) -> str:
        return f"__{self.kind.value}__"


# Between a label and its number: "№", "no." (NFKC's №), "номер", or up to three other words
# ("инвентарный номер принтера 0104-2211").
_N = (r"(?P<mid>(?:(?!тел|атс|вн\.|внутр|доб|звон|аппарат)[^\d\n.!?,;]){0,30}?)"
      r"(?:№|no\.?|n|#|номер\w*|ном\.)?[ \t]*[:.]?[ \t]*")
# "номер" alone is no phone context (a car's, an order's number): it takes one of these.
_PHONE_WORDS = (r"атс|внутренн\w*|внутр\.|вн\.|телефон\w*|тел\.|доб\.|добавочн\w*|аппарат\w*|трубк\w*"
                r"|абонент\w*|звон\w*|дозвон\w*|позвонит\w*|переадрес\w*|гудк\w*|гудок|линия|линии|линию")
# "вн. 2250", "тел. 1180", "доб. 1180" are how people give their own number; only a fault or a
# change named in the same sentence makes such a number the line to be dealt with.
_ABBREVIATED = re.compile(r"(?:вн|внутр|тел|доб)\.?\s*$")
_PHONE_TROUBLE = re.compile(r"не\s+работ|не\s+звон|не\s+дозвон|не\s+соедин|не\s+проход|нет\s+гудк|гудк|гудок"
                            r"|трещ|шипит|пропада|переадрес|перенест|перенес|подключ|отключ|сломал|выдел|атс")
# The writer giving their own number: "мой вн. 2250", "звоните 1180", "тел. для связи 2250",
# "доб. 1180" (a city number's extension is a contact, not a PBX line to fix).
_OWN = re.compile(r"(мо[йия]|моему|мне|для\s+связи|связь|звоните|перезвоните|позвоните\s+мне|доб\.?|добавочн\w*"
                  r"|контакт\w*)\s*(?:\S+\s+){0,2}$")
_PATTERNS: tuple[tuple[EntityKind, re.Pattern], ...] = tuple(
    (kind, re.compile(pattern, re.I)) for kind, pattern in (
        (EntityKind.IP, r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\d.]*\d)"),
        (EntityKind.DATE, r"(?<!\d)\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})(?!\d)"
                          r"|(?<!\d)\d{1,2}\s+(?:январ|феврал|март|апрел|ма[яй]|июн|июл|август|сентябр|октябр|ноябр|декабр)\w*"
                          r"(?:\s+\d{4})?|(?<!\d)(?:19|20)\d{2}\s*(?:году|года|годом|год|г\.|г\b)"),
        (EntityKind.TIME, r"(?<!\d)\d{1,2}[:.]\d{2}(?![\d.])(?=\s*(?:ч|час|утра|вечера|мск|$|[\s,.!?)]))"),
        (EntityKind.AMOUNT, r"(?<!\d)\d[\d\s]{0,12}(?:[.,]\d{1,2})?\s*(?:руб\w*|р\.|₽|тыс\w*|млн\w*|usd|\$|евро|€)"),
        (EntityKind.MOBILE, r"(?:\+7|(?<!\d)8)[\s(-]*9\d{2}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}(?!\d)"),
        (EntityKind.INVENTORY, rf"инв\w*\.?[ \t]*{_N}[\w/-]*\d[\w/-]*"),
        (EntityKind.PERSONNEL, rf"(?:табел\w*|таб\.)[ \t]*{_N}\d[\d-]*"),
        (EntityKind.DOCUMENT, rf"(?:серийн\w*|s/n|sn|зав\.\s*№|заводск\w*\s+№)[ \t]*{_N}[\w-]*\d[\w-]*"),
        (EntityKind.DOCUMENT, rf"(?:заказ\w*|сч[её]т\w*|накладн\w*|договор\w*|заявк\w*|документ\w*|реализаци\w*"
                              rf"|поступлени\w*|платеж\w*|платёж\w*|п/п|упд|тн|ттн|акт\w*|приказ\w*|пропуск\w*"
                              rf"|карт\w*|партии|партия|лот\w*|артикул\w*|арт\.|код\w*)[ \t]*{_N}[\w/-]*\d[\w/-]*"),
        (EntityKind.ROOM, rf"(?:каб\w*\.?|кабинет\w*|комн\w*\.?|офис\w*|цех\w*|этаж\w*|корпус\w*|склад\w*|зал\w*"
                          rf"|пом\.|помещени\w*|стро\w*|кор\.|участ\w*)[ \t]*{_N}\d[\w/-]*"),
        (EntityKind.PORT, rf"порт\w*[ \t]*{_N}\d+"),
    ))
# What must be in a text for each pattern above to match at all (None: no cheap test): one
# substring test instead of a regular-expression pass over the whole text.
_NEEDLES: tuple[tuple[str, ...] | None, ...] = (
    (".",),                                                    # IP
    None,                                                      # DATE
    (":", "."),                                                # TIME
    ("руб", "р.", "₽", "тыс", "млн", "usd", "$", "евро", "€"),   # AMOUNT
    ("+7", "8"),                                               # MOBILE
    ("инв",),                                                  # INVENTORY
    ("табел", "таб."),                                         # PERSONNEL
    ("серийн", "s/n", "sn", "зав.", "заводск"),                 # serial numbers
    None,                                                      # DOCUMENT
    None,                                                      # ROOM
    ("порт",),                                                 # PORT
)
_PHONE_NUMBER = re.compile(rf"(?P<ctx>(?:{_PHONE_WORDS})(?:[^.\n!?]{{0,40}}?))"
                           rf"(?P<num>(?<![\d.-])\d{{3,5}}(?![\d.-]*\d))", re.I)
_PHONE_AFTER = re.compile(rf"(?<![\d.-])(?P<num>\d{{3,5}})(?![\d.-]*\d)(?P<ctx>[^.\n!?]{{0,25}}?(?:{_PHONE_WORDS}))",
                          re.I)
_DIGIT = re.compile(r"\d")
_NUMBER = re.compile(r"(?<![\w.-])\d+(?:[.,]\d+)?(?![\w.-]*\d)")


def _is_pbx(number: str) -> bool:
    return len(number) == 4 and number[0] in "12"


def mask(text: str, own_contact: bool = False) -> tuple[str, tuple[Entity, ...]]:
    """The text with every recognised number replaced by its token, and the entities.
    ``own_contact``: the text is a signature, so phone numbers in it are the writer's.
    Every entity has a digit and stays on its line: only lines with a digit are read."""
    lines = text.split("\n")
    found: list[Entity] = []
    for i, line in enumerate(lines):
        if _DIGIT.search(line):
            lines[i], entities = _mask_line(line, own_contact)
            found += entities
    return "\n".join(lines), tuple(found)


def _mask_line(text: str, own_contact: bool) -> tuple[str, tuple[Entity, ...]]:
    found: list[Entity] = []

    def sub(kind: EntityKind):
        def replace(m: re.Match) -> str:
            found.append(Entity(kind, m.group(0)))
            # The words between a label and its number stay: "инв. номер принтера 0104".
            middle = m.groupdict().get("mid") or ""
            return f" {middle} {Entity(kind, '').token} "
        return replace

    for (kind, pattern), needles in zip(_PATTERNS, _NEEDLES, strict=True):
        if needles is None or any(n in text for n in needles):     # most patterns cannot match: skip
            text = pattern.sub(sub(kind), text)

    def phone(m: re.Match) -> str:
        number, context = m.group("num"), m.group("ctx")
        before = text[:m.start()] + (context if m.re is _PHONE_NUMBER else "")
        # The line it stands on, near it ("вн." ends with a dot: sentences can't be told apart).
        clause = text[max(0, m.start() - 60):m.end() + 60]
        clause = clause[:clause.find("\n", clause.find(number))] if "\n" in clause[clause.find(number):] else clause
        clause = clause[clause.rfind("\n", 0, clause.find(number)) + 1:]
        if own_contact or _OWN.search(before[-40:]) or (
                m.re is _PHONE_NUMBER and _ABBREVIATED.search(context) and not _PHONE_TROUBLE.search(clause)):
            kind = EntityKind.OWN_PHONE
        else:
            kind = EntityKind.PBX if _is_pbx(number) else EntityKind.OFFICE_PHONE
        found.append(Entity(kind, number))
        token = f" {Entity(kind, '').token} "
        return context + token if m.re is _PHONE_NUMBER else token + context

    text = _PHONE_NUMBER.sub(phone, text)
    text = _PHONE_AFTER.sub(phone, text)
    text = _NUMBER.sub(sub(EntityKind.NUMBER), text)
    return text, tuple(found)
