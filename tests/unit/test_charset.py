"""Bank-file text: the EPC basic Latin set (safe mode) or escaped UTF-8."""

from __future__ import annotations

import html
import unicodedata

import pytest

from include.sepa.charset import BASIC_LATIN, _bank_text, bank_text, basic_latin, plain_texts, xml_text

# The EPC basic Latin set, spelled out independently of the module.
EPC_SET = set("abcdefghijklmnopqrstuvwxyz" "ABCDEFGHIJKLMNOPQRSTUVWXYZ" "0123456789" "/-?:().,'+ ")

NASTY = [
    "Zoë D'Hondt-Vandenbroucke & Søn",
    "Straße 12\n3000 Leuven",
    "<script>alert('x')</script>",
    "Œuvre «spéciale» — 50 € @ 10 %",
    "tab\there\r\nand\x00nul\x07bell\x1b",
    "北京 😀 ﬁn",
    "e\u0301 n\u0303",  # decomposed é ñ
    "\u200bzero\u200dwidth\ufeff",
    "\ufffe\uffff",
]


def test_basic_latin_set_constant() -> None:
    assert set(BASIC_LATIN) == EPC_SET
    assert len(EPC_SET) == 26 + 26 + 10 + 11


@pytest.mark.parametrize(
    "text",
    [
        "".join(sorted(EPC_SET)),
        "Zoe D'Hondt-Vandenbroucke",
        "Invoice 2026/03 (ref. 12,50) : paid? +1",
        "",
        "a",
    ],
)
def test_basic_latin_keeps_the_epc_set_unchanged(text: str) -> None:
    assert basic_latin(text) == text


@pytest.mark.parametrize("char", sorted(EPC_SET))
def test_basic_latin_keeps_each_epc_character(char: str) -> None:
    assert basic_latin(f"x{char}y") == f"x{char}y"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("é", "e"),
        ("ë", "e"),
        ("É", "E"),
        ("ç", "c"),
        ("ß", "ss"),
        ("Ø", "O"),
        ("ø", "o"),
        ("œ", "oe"),
        ("ü", "u"),
        ("ñ", "n"),
        ("Å", "A"),
        ("ł", "l"),
        ("ﬁ", "fi"),
        ("’", "'"),  # typographic apostrophe, as in D’Hondt
        ("–", "-"),  # en dash
        ("Zoë D'Hondt-Vandenbroucke & Søn", "Zoe D'Hondt-Vandenbroucke ? Son"),
        ("François Wéry", "Francois Wery"),
        ("Straße", "Strasse"),
        ("D’Hondt", "D'Hondt"),
    ],
)
def test_basic_latin_transliterates(text: str, expected: str) -> None:
    assert basic_latin(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("&", "?"),
        ("@", "?"),
        ("_", "?"),
        ("<", "?"),
        (">", "?"),
        ('"', "?"),
        ("!", "?"),
        ("#", "?"),
        ("%", "?"),
        (";", "?"),
        ("=", "?"),
        ("*", "?"),
        ("[", "?"),
        ("|", "?"),
        ("\\", "?"),
        ("~", "?"),
        ("$", "?"),
        ("info@example.be", "info?example.be"),
        ("A&B <x>", "A?B ?x?"),
        ("snake_case", "snake?case"),
    ],
)
def test_basic_latin_replaces_the_rest_with_question_marks(text: str, expected: str) -> None:
    assert basic_latin(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Straße 12\n3000 Leuven", "Strasse 12 3000 Leuven"),
        ("a\nb", "a b"),
        ("a\tb", "a b"),
        ("a\r\n\t b", "a b"),
        ("a\n\n\nb", "a b"),
        ("a\u00a0b", "a b"),  # no-break space
    ],
)
def test_basic_latin_collapses_whitespace(text: str, expected: str) -> None:
    assert basic_latin(text) == expected


@pytest.mark.parametrize("text", ["Zoë Müller", "François Wéry", "Señor Ñandú", "Ångström"])
def test_basic_latin_does_not_depend_on_unicode_normalisation(text: str) -> None:
    # The same name typed on another system may arrive decomposed (NFD: "e" +
    # U+0301 COMBINING ACUTE ACCENT). It must reduce to the same letters, not
    # to a letter followed by "?".
    assert basic_latin(unicodedata.normalize("NFD", text)) == basic_latin(unicodedata.normalize("NFC", text))


@pytest.mark.parametrize("text", NASTY)
def test_basic_latin_output_is_inside_the_epc_set(text: str) -> None:
    assert set(basic_latin(text)) <= EPC_SET


# --- xml_text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Zoë & <Co>", "Zoë &amp; &lt;Co&gt;"),
        ("a&&b", "a&amp;&amp;b"),
        ("&amp;", "&amp;amp;"),  # escaped once more, not left as is
        ("\"quoted\" 'text'", "\"quoted\" 'text'"),  # quotes are fine in character data
        ("a\n\tb", "a b"),
        ("a\x00b\x01c\x08d\x0ee\x1bf", "abcdef"),  # C0 controls XML 1.0 forbids
        ("a\ufffeb\uffffc", "abc"),
        ("北京 😀", "北京 😀"),
    ],
)
def test_xml_text(text: str, expected: str) -> None:
    assert xml_text(text) == expected


def test_xml_text_collapses_whitespace_left_around_dropped_characters() -> None:
    # "whitespace runs collapsed, forbidden characters dropped": dropping the
    # NUL must not leave a run of two spaces behind.
    assert xml_text("A \x00 B") == "A B"


# --- bank_text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "max_length", "safe", "expected"),
    [
        (None, 70, True, ""),
        (None, 70, False, ""),
        ("", 70, True, ""),
        ("   \n\t ", 70, False, ""),
        ("Zoë & Co", 70, True, "Zoe ? Co"),
        ("Zoë & Co", 70, False, "Zoë &amp; Co"),
        ("<b>", 70, False, "&lt;b&gt;"),
        ("<b>", 70, True, "?b?"),
        ("  Jan  Peeters  ", 70, True, "Jan Peeters"),
        ("Line1\n\nLine2", 70, True, "Line1 Line2"),
        ("Line1\n\nLine2", 70, False, "Line1 Line2"),
        # truncation after transliteration: "Straße" -> "Strasse" (7) -> 6
        ("Straße", 6, True, "Strass"),
        ("ßßß", 4, True, "ssss"),
        ("Zoë", 3, True, "Zoe"),
        # truncation, then trailing blanks removed
        ("abc def", 4, True, "abc"),
        ("abc def", 5, False, "abc d"),
        # escaping after truncation: no entity is ever cut
        ("A & B", 3, False, "A &amp;"),
        ("AB&CD", 3, False, "AB&amp;"),
        ("<<<<", 2, False, "&lt;&lt;"),
        # control characters are dropped in UTF-8 mode
        ("A\x00B\x07C", 70, False, "ABC"),
    ],
)
def test_bank_text(text: str | None, max_length: int, safe: bool, expected: str) -> None:
    assert bank_text(text, max_length, safe=safe) == expected


def test_bank_text_dropped_characters_do_not_use_up_the_length() -> None:
    # Three visible letters fit in three characters; the NULs XML cannot carry
    # are dropped and must not take their place.
    assert bank_text("A\x00B\x00C\x00D", 3, safe=False) == "ABC"


@pytest.mark.parametrize("text", NASTY)
@pytest.mark.parametrize("max_length", [1, 5, 35, 70, 140])
def test_bank_text_safe_stays_in_the_set_and_the_length(text: str, max_length: int) -> None:
    out = bank_text(text, max_length, safe=True)
    assert set(out) <= EPC_SET
    assert len(out) <= max_length
    assert out == out.strip()


@pytest.mark.parametrize("text", NASTY)
@pytest.mark.parametrize("max_length", [1, 5, 35, 70, 140])
def test_bank_text_utf8_is_escaped_and_within_the_length(text: str, max_length: int) -> None:
    out = bank_text(text, max_length, safe=False)
    unescaped = html.unescape(out)
    assert len(unescaped) <= max_length
    assert "<" not in out and ">" not in out
    assert out.count("&") == out.count("&amp;") + out.count("&lt;") + out.count("&gt;")
    assert not any(ord(c) < 0x20 for c in out)


# Every BMP character below the CJK blocks, the private-use and non-character ends, and a few astral ones.
_CHARACTERS = [chr(c) for c in (*range(0x3100), *range(0xD7F0, 0xE010), *range(0xFDC0, 0x10000), 0x1F600, 0x10FFFF)]


@pytest.mark.parametrize("safe", [True, False])
def test_bank_text_fast_path_changes_nothing(safe: bool) -> None:
    # The fast path may only skip work that would leave the text as it is.
    shapes = ("{}", "a{}b", "a {}", "{} b", "Jan{}{}Peeters")
    for char in _CHARACTERS:
        for shape in shapes:
            text = shape.format(char, char)
            assert bank_text(text, 70, safe=safe) == _bank_text(text, 70, safe=safe), repr(text)
    for text in ["", " ", "a  b", " a", "a ", "Zoë D'Hondt", *NASTY]:
        assert bank_text(text, 70, safe=safe) == _bank_text(text, 70, safe=safe), repr(text)


# --- plain_texts: one check over a column ---------------------------------------------


@pytest.mark.parametrize("safe", [True, False])
def test_a_column_said_plain_is_left_as_it_is_by_bank_text(safe: bool) -> None:
    # Columns of two: every character in every position of the shapes, beside a plain neighbour, and the
    # separator's own traps ("|" at an end, beside a space).
    shapes = ("{}", "a{}b", "a {}", "{} b", "{}|", "|{}", "a |{}", "{}| b")
    texts = [shape.format(char) for char in _CHARACTERS[::7] for shape in shapes]
    texts += ["", " ", "a  b", " a", "a ", "a | b", "a|b", "Zoë D'Hondt", *NASTY]
    for text in texts:
        for column in ([text], [text, "Jan"], ["Jan", text]):
            if plain_texts(column, 70, safe=safe):
                assert [bank_text(value, 70, safe=safe) for value in column] == column, repr(column)


@pytest.mark.parametrize(
    ("column", "max_length", "safe", "plain"),
    [
        (["fp:BIB:1", "fp:BIB:22", "BIB-M-0000001"], 35, True, True),
        (["Jan Peeters", "An De Smet"], 70, True, True),
        (["Jan Peeters", "Zoë D'Hondt"], 70, True, False),  # é is reduced in SAFESEPA
        (["Jan Peeters", "Zoë D'Hondt"], 70, False, True),  # and kept in UTF-8
        (["Jan", "De Smet & Co"], 70, False, False),  # escaped
        (["Jan", "x" * 36], 35, False, False),  # too long
        (["Jan", "x" * 35], 35, False, True),
        (["Jan", None], 70, False, False),
        ([], 70, False, False),
    ],
)
def test_plain_texts(column: list, max_length: int, safe: bool, plain: bool) -> None:
    assert plain_texts(column, max_length, safe=safe) is plain


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("«Liège»", "?Liege?"),  # one character outside the set is one "?", not one per character of "<<"
        ("A @ B ≠ C", "A ? B ? C"),
        ("Jan 😀", "Jan ?"),  # an emoji is no letter of a name: "?", not its short code ":grinning:"
        ("😀🎉", "??"),
        ("\ufeffJan", "Jan"),  # invisible format characters are no characters of the name: dropped, not "?"
        ("Vanden\u00adbroucke", "Vandenbroucke"),  # soft hyphen
        ("A\u200bB\u200dC\u200e", "ABC"),
        ("€ 5, № 3, ½, ©", "EUR 5, No 3, 1/2, (C)"),  # transliterations that land in the set are kept
    ],
)
def test_basic_latin_one_question_mark_per_character_and_nothing_for_invisible_ones(text: str, expected: str) -> None:
    assert basic_latin(text) == expected
    assert bank_text(text, 70, safe=True) == expected


def test_utf8_bank_text_drops_invisible_format_characters() -> None:
    assert bank_text("\ufeffZoë\u200b D\u00ad'Hondt\u200e", 70, safe=False) == "Zoë D'Hondt"
