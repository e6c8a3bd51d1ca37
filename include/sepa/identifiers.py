"""Bank identifiers: IBAN and BIC (schwifty), SEPA creditor identifier (python-stdnum).

Each ``*_problem`` function returns None for a valid value, or a short reason
a finance officer can act on.

>>> iban_problem("BE68539007547034") is None
True
>>> iban_problem("BE68539007547035")
'IBAN BE68 **** **** 7035 is invalid: invalid checksum digits'
>>> creditor_id_problem("BE69ZZZ050D000000008") is None
True
>>> mask_iban("BE68 5390 0754 7034")
'BE68 **** **** 7034'
"""

from __future__ import annotations

import re

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from stdnum.eu import at_02
from stdnum.exceptions import ValidationError

from include.sepa.charset import BASIC_LATIN, bank_text, kept_as_is

_SPACES = re.compile(r"\s+")


def compact(value: str) -> str:
    """Upper case, without spaces."""
    return _SPACES.sub("", value).upper()


def mask_iban(value: str | None) -> str:
    """Country and check digits and the last four characters; the rest hidden (for logs and reports)."""
    if not value:
        return ""
    iban = value if value.isalnum() and value.isupper() else compact(value)
    if len(iban) <= 8:
        return iban[:2] + "*" * (len(iban) - 2)
    return f"{iban[:4]} **** **** {iban[-4:]}"


# A run of letters and digits that starts like an IBAN (country, check digits, 8 or more characters), however
# long and whatever follows it: a value too long to be an IBAN, or glued to a letter, may still be one. Written
# in groups of four, the last group may be shorter and only digits (a word after the IBAN stays a word).
_IBAN_LIKE = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[A-Za-z0-9]{8,}|(?: [A-Za-z0-9]{4}){2,}(?: \d{1,3}(?![A-Za-z0-9]))?)"
)


def mask_ibans_in(text: str) -> str:
    """``text`` with everything that looks like an IBAN masked (for messages that end up in logs).

    >>> mask_ibans_in("The value 'be68539007547034' is not accepted")
    "The value 'BE68 **** **** 7034' is not accepted"
    >>> mask_ibans_in("CODA_BE68539007547034_20261124.xml")
    'CODA_BE68 **** **** 7034_20261124.xml'
    >>> mask_ibans_in("value 'BE6853900754703412345678901234567890'")
    "value 'BE68 **** **** 7890'"
    >>> mask_ibans_in("IBAN BE68 5390 0754 7034 is wrong, NL91 ABNA 0417 1643 00é too")
    'IBAN BE68 **** **** 7034 is wrong, NL91 **** **** 4300é too'
    """
    return _IBAN_LIKE.sub(lambda match: mask_iban(match.group(0)), text)


def _reason(exc: Exception) -> str:
    """The kind of error in words, from its class: schwifty's own messages repeat the whole number."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", type(exc).__name__)
    return words.lower().replace("bban", "BBAN")


def iban_problem(value: str | None) -> str | None:
    return _parsed_iban(value)[1]


def _parsed_iban(value: str | None) -> tuple[IBAN | None, str | None]:
    """The IBAN, or None and why not."""
    if not value or not value.strip():
        return None, "IBAN missing"
    try:
        return IBAN(value), None
    except SchwiftyException as exc:
        return None, f"IBAN {mask_iban(value)} is invalid: {_reason(exc)}"


# The EEA, by IBAN country code: the EU, Iceland, Liechtenstein and Norway, and EU regions with codes of their own.
EEA = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK IS LI NO AX GF GP MQ RE YT MF"
    .split()
)


def debtor_iban_problem(value: str | None) -> str | None:
    """:func:`iban_problem`, and whether a SEPA direct debit from Innen can reach the account.

    Outside the SEPA zone (schwifty's registry) no SEPA direct debit can. In
    SEPA but outside the EEA (Switzerland, the United Kingdom, Monaco, …) the
    SDD rulebook wants the debtor's address and the BIC of the debtor's bank
    in the collection, and Innen sends no debtor address.

    >>> debtor_iban_problem("NL91ABNA0417164300") is None
    True
    >>> debtor_iban_problem("SA0380000000608010167519")
    'IBAN SA03 **** **** 7519 is of SA, outside the SEPA zone: no SEPA direct debit can reach it'
    >>> print(debtor_iban_problem("CH9300762011623852957"))
    IBAN CH93 **** **** 2957 is of CH, in SEPA but outside the EEA: the rulebook then wants the debtor's address and bank BIC in each collection, and Innen sends no debtor address; collect it another way
    """
    iban, problem = _parsed_iban(value)
    if iban is None:
        return problem
    country, shown = iban.country_code, mask_iban(value)
    if not iban.in_sepa_zone:
        return f"IBAN {shown} is of {country}, outside the SEPA zone: no SEPA direct debit can reach it"
    if country not in EEA:
        return (f"IBAN {shown} is of {country}, in SEPA but outside the EEA: the rulebook then wants the debtor's "
                "address and bank BIC in each collection, and Innen sends no debtor address; collect it another way")
    return None


UMR_MAX = 35
_UMR_CHARACTERS = "a-z A-Z 0-9 / - ? : ( ) . , ' + and the space"


def mandate_reference_problem(value: str | None) -> str | None:
    """Why ``value`` cannot go into a bank file as the mandate's id (MndtId, the UMR), or None.

    The EPC's rules for identifiers: at most 35 characters of the basic Latin
    set, not starting or ending with "/", never "//". The file must carry
    the very id the debtor signed, so :func:`~include.sepa.charset.bank_text`
    must leave it as it is (it would otherwise cut, transliterate or collapse it).

    >>> mandate_reference_problem("BIB-M-0000042") is None
    True
    >>> mandate_reference_problem("BIB/2019//42")
    "mandate reference 'BIB/2019//42' holds '//': an id may not start or end with '/' or hold '//'"
    >>> mandate_reference_problem("Mandaat Zoë")
    "mandate reference 'Mandaat Zoë' holds 'ë': an id takes only a-z A-Z 0-9 / - ? : ( ) . , ' + and the space"
    >>> mandate_reference_problem("MND_7#")
    "mandate reference 'MND_7#' holds '#', '_': an id takes only a-z A-Z 0-9 / - ? : ( ) . , ' + and the space"
    """
    if value and value[0] != "/" and value[-1] != "/" and "//" not in value and kept_as_is(value, UMR_MAX, safe=True):
        return None  # the common case, checked once: what bank_text keeps as it is, without a slash at an end or two
    if not value or not value.strip():
        return "mandate reference (UMR) missing"
    if len(value) > UMR_MAX:
        return f"mandate reference {value[:UMR_MAX]!r}… has {len(value)} characters: an id has at most {UMR_MAX}"
    slash = value.startswith("/") or value.endswith("/") or "//" in value
    if not slash and bank_text(value, UMR_MAX, safe=True) == value:
        return None
    if outside := ", ".join(map(repr, sorted(set(value) - BASIC_LATIN))):  # each on its own: '#', '_'
        return f"mandate reference {value!r} holds {outside}: an id takes only {_UMR_CHARACTERS}"
    if slash:
        where = "'//'" if "//" in value else "'/' at an end"
        return f"mandate reference {value!r} holds {where}: an id may not start or end with '/' or hold '//'"
    return f"mandate reference {value!r} starts or ends with a space or holds two in a row: the bank file would carry another id"


def bic_problem(value: str | None, *, required: bool = False) -> str | None:
    if not value or not value.strip():
        return "BIC missing" if required else None
    try:
        BIC(value)
    except SchwiftyException as exc:
        return f"BIC {compact(value)} is invalid: {_reason(exc)}"
    return None


def creditor_id_problem(value: str | None) -> str | None:
    """Reason why ``value`` is not a SEPA creditor identifier (AT-02), or None."""
    if not value or not value.strip():
        return "creditor identifier missing"
    try:
        at_02.validate(value)
    except ValidationError as exc:
        return f"creditor identifier {compact(value)} is invalid: {str(exc).strip().rstrip('.').lower()}"
    return None


def enterprise_number(base: int) -> str:
    """A Belgian enterprise (KBO) number: eight digits (0 or 1 first), then 97 minus their remainder mod 97.

    >>> enterprise_number(2074625)  # 02074625 mod 97 = 86
    '0207462511'
    """
    if not 0 <= base < 20_000_000:
        raise ValueError("an enterprise number has eight digits starting with 0 or 1")
    digits = f"{base:08d}"
    return digits + f"{97 - int(digits) % 97:02d}"


def creditor_id(country: str, national_id: str) -> str:
    """A SEPA creditor identifier (AT-02) with business code ZZZ over a national identifier.

    >>> creditor_id("BE", "0207462511")
    'BE66ZZZ0207462511'
    """
    return country + at_02.calc_check_digits(f"{country}00ZZZ{national_id}") + "ZZZ" + national_id
