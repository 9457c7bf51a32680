"""``#история`` / ``#history`` and ``#профиль`` / ``#profile``: anyone's, not only staff's.
They are read by the same parser as the staff commands; deciding/selfservice.py answers
them (the dispatch table's ``self_service`` case comes before staff commands)."""
from __future__ import annotations

from maild.deciding.commands.base import Command


class History(Command):
    key = "history"
    words = ("история", "history")
    usage, usage_en = "#история [номер]", "#history [number]"
    help = "ваши заявки; с номером — переписка по одной из них"
    section = "anyone"
    on_ticket = False
    staff_only = False


class Profile(Command):
    key = "profile"
    words = ("профиль", "profile")
    usage, usage_en = "#профиль", "#profile"
    help = "ваши телефон, кабинет и компания; строки «Телефон: …» ниже меняют их"
    section = "anyone"
    on_ticket = False
    staff_only = False
