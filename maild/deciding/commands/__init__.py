"""Staff steer tickets by mail: keyword lines at the very top of the body, one class per
command (one file each; ``registry.py`` lists them in #помощь's order):

    #take            #взять                     assign the ticket to me
    #assign WHO      #назначить                 to a colleague of my department (login or address)
    #transfer DEPT   #передать                  to the other department (code or short name)
    #note            #заметка                   the text below is an internal note
    #canned [NAME]   #шаблон                    send a canned answer; alone: list them
    #category NAME   #категория
    #priority P      #приоритет                 low|normal|high|urgent (низкий|обычный|высокий|срочный)
    #close [WHY]     #закрыть
    #reopen          #открыть
    #cc add|remove ADDRESS   #копия добавить|убрать
    #new ADDRESS     #новая                     file a ticket on an employee's behalf (phone)
    #list [mine|open|all]    #список
    #help            #помощь
    #history, #profile       #история, #профиль   anyone's (deciding/selfservice.py answers them)

``parse.read`` (pure) finds the lines; ``commander.Commander`` checks them all, then plans
them all or none, with a receipt.
"""
from maild.deciding.commands.base import CommandLine, CommandMail, Refusal, Step
from maild.deciding.commands.commander import Commander, ReceiptLine, Result
from maild.deciding.commands.parse import is_command_mail, may_start, read
from maild.deciding.commands.registry import BY_KEY, COMMANDS, alert_hints, help_rows

__all__ = ["BY_KEY", "COMMANDS", "CommandLine", "CommandMail", "Commander", "ReceiptLine", "Refusal", "Result",
           "Step", "alert_hints", "help_rows", "is_command_mail", "may_start", "read"]
