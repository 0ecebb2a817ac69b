"""From a status code and the remote server's words to hard or soft and a one-word reason.

The one rule that matters: *hard* means the address or its domain does not
exist, and reading a bounce as hard removes a subscriber for good. So a
reading is hard only when (1) the failure is permanent (no 4.x.x code, no
"temporary" or "delayed" wording) and (2) the code or the words say the
mailbox or domain does not exist and (3) nothing in the words speaks of a
full mailbox, a block, spam, a policy, a size or a timeout. Everything else
that failed is soft; a repeated soft bounce is for the list policy to judge.

Words are matched in English plus the French, German and Spanish phrasings
that European providers (Orange, GMX, web.de, Telefónica) use.
"""

from __future__ import annotations

import re

from .reading import BAD_ADDRESS, HARD, HARD_REASONS, HOST_UNKNOWN, SOFT, USER_UNKNOWN

STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
SMTP_CODE_RE = re.compile(r"(?<![\d.#-])([245])\d\d(?=[ :-]|$)(?![ -]?\d{3})", re.M)


def _words(*phrases: str) -> re.Pattern:
    return re.compile("|".join(f"(?:{p})" for p in phrases), re.I)


# Soft reasons first: when a text says both "user unknown" and "blocked", it is read as blocked.
SOFT_WORDS: list[tuple[str, re.Pattern]] = [
    ("mailbox-full", _words(
        r"mailbox (?:is )?full", r"over ?quota", r"quota (?:exceeded|exceed)", r"exceeded (?:the |its |their )?(?:storage|quota)",
        r"insufficient (?:system )?storage", r"mailbox has exceeded", r"out of storage", r"storage (?:space|limit)",
        r"mailbox size limit", r"bo[iî]te (?:aux lettres |du destinataire )?(?:est )?pleine", r"postfach (?:ist )?voll",
        r"speicherplatz", r"buz[oó]n (?:est[aá] )?lleno", r"quota d[eé]pass[eé]", r"full mailbox",
        r"(?:mailbox|inbox|storage)\b[^\n]{0,80}?\b(?:is )?full\b",
    )),
    ("too-large", _words(
        r"too (?:large|big)", r"size limit", r"exceeds? (?:the )?(?:maximum )?(?:message )?size", r"message size",
        r"trop (?:gros|volumineux)", r"zu gro(?:ß|ss)",
    )),
    ("spam", _words(
        r"\bspam\b", r"\bjunk\b", r"\bUCE\b", r"unsolicited", r"bulk mail", r"content (?:rejected|filter)",
        r"message content", r"looks like", r"suspicious", r"\bvirus\b", r"malware", r"ind[eé]sirable",
    )),
    ("blocked", _words(
        r"\bblock(?:ed|ing|list)?\b", r"black ?list", r"deny ?list", r"spamhaus", r"\brbl\b", r"\bdnsbl\b", r"reputation",
        r"\blisted (?:on|at|by)\b", r"banned", r"throttl", r"rate limit", r"at a rate that prevents", r"too many (?:messages|connections)", r"bloqu[eé]",
        r"gesperrt", r"bloqueado", r"traffic not accepted", r"not accepted from this ip",
        r"unexpected volume", r"\bTSS\d+",
    )),
    ("policy", _words(
        r"polic(?:y|ies)", r"\bdmarc\b", r"\bspf\b", r"\bdkim\b", r"authenticat", r"not (?:permitted|allowed|authori[sz]ed)",
        r"relay(?:ing)? (?:denied|not permitted|access denied)", r"administrative prohibition", r"access denied",
        r"prohibited", r"(?<!connection )refused", r"politique", r"richtlinie", r"pol[ií]tica", r"anti-?spoofing",
    )),
    ("expired", _words(
        r"retry time(?:out)? (?:exceeded|expired)", r"delivery time expired", r"\bexpired\b", r"timed? ?out",
        r"could not be delivered within", r"for (?:the )?past \d+ (?:hours|days)", r"too long in (?:the )?queue",
        r"in the queue too long", r"d[eé]lai (?:expir|d[eé]pass)", r"zeit(?:limit)? [uü]berschritten",
    )),
    ("suppressed", _words(r"suppression list", r"suppressed")),
    ("delayed", _words(
        r"\bdelayed\b", r"not yet (?:been )?delivered", r"will (?:continue|keep) (?:to )?(?:try|trying|retry)",
        r"still trying", r"will be retried", r"retard", r"verz[oö]gert", r"\bretrasad",
    )),
    ("disabled", _words(
        r"disabled", r"deactivated", r"inactive", r"suspended", r"\blocked\b", r"d[eé]sactiv", r"deaktiviert",
        r"no longer (?:active|available)",
    )),
    ("unavailable", _words(r"mailbox (?:temporarily )?unavailable", r"mailbox not available", r"temporar")),
]

HARD_WORDS: list[tuple[str, re.Pattern]] = [
    (HOST_UNKNOWN, _words(
        r"host (?:or domain name )?not found", r"domain (?:name )?not found", r"no such domain", r"unknown domain",
        r"domain (?:does not|doesn't) exist", r"\bnxdomain\b", r"no mx", r"non-existent hosts?",
        r"does not accept (?:any )?mail", r"null ?mx", r"unrouteable (?:mail )?domain", r"domaine (?:inexistant|inconnu)",
    )),
    (USER_UNKNOWN, _words(
        r"user unknown", r"unknown user", r"no such (?:user|mailbox|recipient|address|account)", r"(?:does not|doesn't|not) exist",
        r"could ?n[o']t be found", r"recip(?:ient)?not ?found", r"recipient (?:not found|unknown)", r"unknown recipient",
        r"invalid (?:recipient|mailbox|address|user)", r"user (?:not found|doesn't|does not)", r"mailbox not found",
        r"no mailbox", r"not listed in", r"doesn't have an? \S+ account", r"unknown (?:local[- ]part|address|mailbox)",
        r"address rejected: undeliverable", r"unrouteable address", r"not a valid (?:mailbox|recipient|user)",
        r"utilisateur inconnu", r"destinataire (?:invalide|inconnu)", r"adresse (?:\S+ )?(?:invalide|inconnue)",
        r"unbekannt", r"existiert nicht", r"gibt es nicht", r"usuario desconocido", r"no existe", r"nosuchuser",
    )),
]

POLICY_REASONS = ("spam", "blocked", "policy")
TEMPORARY_WORDS = _words(
    r"temporar", r"try again", r"will (?:be )?retr", r"delay", r"warning", r"not yet", r"transient",
    r"still (?:trying|queued)", r"no action is required",
)
PERMANENT_WORDS = _words(
    r"permanent", r"fatal", r"could(?: not|n't) be delivered", r"undeliverable", r"gave up", r"given up",
    r"was(?: not|n't) delivered to", r"did not reach", r"unable to deliver", r"dauerhaft", r"erreur permanente",
)

# What a status code alone says, by its subject.detail (RFC 3463); codes not listed are generic.
STATUS_REASONS = {
    "1.1": USER_UNKNOWN, "1.10": USER_UNKNOWN, "1.6": USER_UNKNOWN, "1.2": HOST_UNKNOWN, "1.3": BAD_ADDRESS,
    "2.1": "disabled", "2.2": "mailbox-full", "2.3": "too-large", "3.4": "too-large",
    "4.7": "expired", "4.6": "loop", "7.1": "policy", "7.26": "policy", "7.25": "policy", "7.23": "policy",
    "7.27": "policy", "7.509": "policy", "7.510": "policy", "7.750": "blocked", "7.606": "blocked", "7.0": "policy",
    "3.0": "mail-system", "3.1": "mail-system", "3.2": "mail-system", "4.1": "network", "4.2": "network",
}


def find_status(text: str) -> str:
    """The first RFC 3463 code in a text, '' when there is none."""
    match = STATUS_RE.search(text or "")
    return ".".join(match.groups()) if match else ""


def text_reason(text: str) -> tuple[str, str]:
    """(soft reason, hard reason) the words speak of; either may be ''."""
    soft = next((reason for reason, pattern in SOFT_WORDS if pattern.search(text)), "")
    hard = next((reason for reason, pattern in HARD_WORDS if pattern.search(text)), "")
    return soft, hard


def _refined(code_reason: str, soft_word: str, status: str) -> str:
    """The reason a soft status code names, or the words' reason where they say more than the code."""
    if not soft_word:
        return code_reason
    if status[2:] in ("7.1", "7.0") and soft_word in POLICY_REASONS:  # "not authorised": spam? a block? a policy?
        return soft_word
    # A transport failure code, or a temporary "disabled" (Gmail's 4.2.1 is a rate limit).
    if code_reason in ("network", "mail-system") or (status[:1] == "4" and code_reason == "disabled"):
        return soft_word
    return code_reason


def classify(status: str, text: str, *, permanent: bool | None = None) -> tuple[str, str, str]:
    """(kind, reason, status) of one failed recipient.

    ``permanent`` is what the report's structure says (a DSN's Action, a
    "permanent error" banner); None when it says nothing.
    """
    text = text or ""
    status = status or find_status(text)
    if not status:
        code = SMTP_CODE_RE.search(text)
        if code:
            status = f"{code.group(1)}.0.0"
    klass = status[:1]
    soft_word, hard_word = text_reason(text)
    code_reason = STATUS_REASONS.get(status[2:], "") if status else ""
    if not code_reason and status[2:4] == "7.":
        code_reason = soft_word if soft_word in POLICY_REASONS else "policy"  # security or policy status (RFC 3463)

    transient = klass == "4" or permanent is False
    if not status and permanent is None:
        transient = bool(TEMPORARY_WORDS.search(text)) and not PERMANENT_WORDS.search(text)
    if code_reason and code_reason not in HARD_REASONS:
        return SOFT, _refined(code_reason, soft_word, status), status
    if soft_word:
        return SOFT, soft_word, status
    reason = code_reason or hard_word
    if transient:
        return SOFT, (reason if reason and reason not in HARD_REASONS else "temporary"), status
    if reason in HARD_REASONS and (klass == "5" or permanent):
        return HARD, reason, status
    return SOFT, reason or "other", status
