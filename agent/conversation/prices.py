"""Price limits a shopper states in words, in English, French, German or Spanish.

A stated budget is a hard constraint, so reading it wrong is worse than not reading it: "a
laptop that should not cost more than 800 dollars" once became a *minimum* of 800 because "more
than" was matched without the negation in front of it. So every cue is classified with what
precedes it: a negation ("not", "n't", "no", "nicht", "pas", "no más") turns "more than" into a
ceiling and "less than" into a floor.

What counts as an amount: digits (``1,299``, ``49.99``, ``1.5k``) or number words
(``fifty``, ``a hundred and twenty``), with or without ``$ € £`` or a currency word. A number
glued to a unit (``27 inch``, ``64GB``, ``4K``) is never money. Weak cues ("over", "from",
"ab", "desde") only count with a currency next to the amount, so "over 100 dpi" or "from 2019"
state no price.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from tools.catalog.product import MAX_PRICE, amount_text

_CURRENCY_WORD = (
    r"(?:dollars?|usd|bucks|euros?|eur|pounds?|quid|gbp|€|\$|£|"
    r"d[oó]lares|pesos|franken|francs?)"
)
#: An amount: optional currency sign, a number (``1,299.99``, ``1.5k``), optional currency word.
_NUMBER = r"\d{1,3}(?:[,.]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_UNIT = (
    r"(?:\s*(?:-\s*)?(?:inch(?:es)?|in\b|\"|''|”|cm|mm|m\b|gb|tb|mb|kb|ghz|mhz|hz|w\b|watts?|"
    r"mah|v\b|volts?|k\b(?!\s*(?:dollars?|euros?|bucks))|p\b|dpi|fps|x\b|pcs?|pieces?|"
    r"pack|ports?|%|years?|months?|hours?|days?|kg|g\b|lbs?|ms\b|bit))"
)
#: A minus at a word's start ("under -5") and an exponent ("1e999999999") belong to the number:
#: read whole, such an amount is no price at all, where read in part it was a limit of 5 or 1.
_SIGNED = rf"(?:(?<![\w.,])-)?(?:{_NUMBER})(?:e[+-]?\d+)?"
AMOUNT = (
    rf"(?P<pre>[$€£])?\s*(?P<num>{_SIGNED})(?P<k>k\b)?(?!\d)(?!{_UNIT})"
    rf"(?:\s*(?P<cur>{_CURRENCY_WORD}))?"
)
_AMOUNT_RE = re.compile(AMOUNT, re.IGNORECASE)

#: Words that turn "more than" into a ceiling (and "less than" into a floor).
_NEGATION = r"(?:n't|\b(?:not|no|never|nicht|kein\w*|pas|nunca|ni))"
_GAP = r"(?:\s+[\w']+){0,4}?\s+"  # up to four words between a negation and its cue

# (pattern before the amount, kind, needs a currency) -- checked in this order; the first
# match claims its span, so "not more than" is never read again as "more than".
_BEFORE: list[tuple[str, str, bool]] = [
    (rf"{_NEGATION}{_GAP}(?:more|higher|greater|pricier)\s+(?:than|then)", "max", False),
    (rf"{_NEGATION}{_GAP}(?:over|above|exceed(?:ing)?|beyond)", "max", False),
    (rf"{_NEGATION}\s+(?:plus|mehr|m[aá]s)\s+(?:de|als|que|d')", "max", False),
    (rf"{_NEGATION}{_GAP}(?:less|lower|cheaper)\s+(?:than|then)", "min", False),
    (rf"{_NEGATION}{_GAP}(?:under|below|beneath)", "min", False),
    (
        r"\b(?:under|below|beneath|less\s+than|lower\s+than|cheaper\s+than|max(?:imum)?|"
        r"at\s+most|up\s+to|within|no\s+higher\s+than|tops|"
        r"budget(?:\s+(?:is|of|around|about))?(?:\s+(?:is|of))?|"
        r"moins\s+de|au\s+plus|jusqu'?\s*[àa]|inf[ée]rieur\s+[àa]|en\s+dessous\s+de|sous|"
        r"budget\s+de|maximum\s+de|"
        r"unter|weniger\s+als|h[öo]chstens|maximal|bis(?:\s+zu)?|g[üu]nstiger\s+als|"
        r"billiger\s+als|budget\s+von|"
        r"menos\s+de|como\s+m[áa]ximo|m[áa]ximo(?:\s+de)?|hasta|por\s+debajo\s+de|"
        r"inferior\s+a|presupuesto(?:\s+de)?)",
        "max",
        False,
    ),
    (
        r"\b(?:at\s+least|more\s+than|higher\s+than|min(?:imum)?|"
        r"au\s+moins|plus\s+de|minimum\s+de|"
        r"mindestens|mehr\s+als|"
        r"al\s+menos|m[áa]s\s+de|m[íi]nimo(?:\s+de)?)",
        "min",
        False,
    ),
    (r"\b(?:over|above|from|starting\s+at|[àa]\s+partir\s+de|ab|desde|[üu]ber)", "min", True),
    (
        r"\b(?:around|about|approximately|approx\.?|roughly|circa|ca\.?|environ|"
        r"autour\s+de|etwa|ungef[äa]hr|alrededor\s+de|aproximadamente|unos)|~",
        "around",
        False,
    ),
]
_AFTER: list[tuple[str, str]] = [
    (
        r"(?:or|and)\s+(?:less|under|below|cheaper|lower)|max(?:imum)?\b|tops\b|at\s+most|"
        r"ou\s+moins|oder\s+weniger|o\s+menos|maximum",
        "max",
    ),
    (r"(?:or|and)\s+(?:more|over|above|up)|minimum|at\s+least|ou\s+plus|o\s+m[áa]s", "min"),
    (r"(?:or\s+so|ish)\b", "around"),
]
_BETWEEN = re.compile(
    rf"\b(?:between|entre|zwischen|from)\s+{AMOUNT}\s*(?:and|to|et|und|y|-|–)\s*"
    + AMOUNT.replace("?P<", "?P<b_"),
    re.IGNORECASE,
)
_RANGE = re.compile(
    rf"(?<![\w.]){AMOUNT}\s*(?:-|–|to)\s*" + AMOUNT.replace("?P<", "?P<b_"), re.IGNORECASE
)
_BUDGET_WORD = re.compile(r"\b(?:budget|price|prix|preis|precio|spend|cost)", re.IGNORECASE)
#: "around 100" means 100 give or take this share.
AROUND_SHARE = Decimal("0.2")

_UNITS = {
    "zero": 0, "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000, "grand": 1000}
_NUMBER_WORDS = re.compile(
    r"\b(?:(?:a|an|zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|"
    r"fifty|sixty|seventy|eighty|ninety|hundred|thousand|grand)(?:[\s-]+(?:and[\s-]+)?|\b))+",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class PriceBounds:
    min_price: Decimal | None = None
    max_price: Decimal | None = None

    def is_empty(self) -> bool:
        return self.min_price is None and self.max_price is None


@dataclass(frozen=True, slots=True)
class _Found:
    kind: str  # min | max | around | range | unusable (a cued amount that is no price)
    start: int
    end: int
    low: Decimal
    high: Decimal


def price_bounds(text: str) -> PriceBounds:
    """The price range a message states (``PriceBounds()`` when it states none)."""
    low: Decimal | None = None
    high: Decimal | None = None
    for found in _find(text):
        if found.kind == "unusable":
            continue
        if found.kind in ("range", "around"):
            low, high = found.low, found.high
        elif found.kind == "min":
            low = found.low
        else:
            high = found.high
    if low is not None and high is not None and low > high:
        low, high = high, low
    return PriceBounds(low, high)


def without_prices(text: str) -> str:
    """The message minus its price phrases: what is left is what to search for."""
    text = words_to_digits(text)
    for found in sorted(_find(text), key=lambda f: -f.start):
        text = text[: found.start] + " " + text[found.end :]
    return " ".join(text.split())


def words_to_digits(text: str) -> str:
    """``fifty bucks`` -> ``50 bucks``; ``a hundred and twenty`` -> ``120``. A lone "a"/"an"
    or "one" is left alone ("a mouse", "the second one")."""

    def convert(match: re.Match[str]) -> str:
        words = [w for w in re.split(r"[\s-]+", match.group(0).lower()) if w and w != "and"]
        if all(w in ("a", "an", "one") for w in words):
            return match.group(0)
        total, current = 0, 0
        for word in words:
            if word in _UNITS:
                current += _UNITS[word]
            elif word == "hundred":
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * _SCALES[word]
                current = 0
        trailing = " " if match.group(0)[-1:].isspace() else ""
        return f"{total + current}{trailing}"

    return _NUMBER_WORDS.sub(convert, text)


def _find(text: str) -> list[_Found]:
    """Every price phrase, with spans in ``words_to_digits(text)``."""
    return _find_in(words_to_digits(text))


def _find_in(text: str) -> list[_Found]:
    found: list[_Found] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in taken)

    for pattern in (_BETWEEN, _RANGE):
        for match in pattern.finditer(text):
            if not free(match.start(), match.end()):
                continue
            if pattern is _RANGE and not _money_around(text, match):
                continue
            first, second = _value(match, ""), _value(match, "b_")
            if first is None or second is None:
                continue
            low, high = sorted((first, second))
            found.append(_Found("range", match.start(), match.end(), low, high))
            taken.append((match.start(), match.end()))
    cued = [
        (rf"(?:{cue})\s*(?:of\s+|de\s+|von\s+)?{AMOUNT}", kind, needs_currency)
        for cue, kind, needs_currency in _BEFORE
    ] + [(rf"(?<![\w.]){AMOUNT}\s*(?:{cue})", kind, False) for cue, kind in _AFTER]
    for source, kind, needs_currency in cued:
        for match in re.finditer(source, text, re.IGNORECASE):
            if not free(match.start(), match.end()):
                continue
            if needs_currency and not (match.group("pre") or match.group("cur")):
                continue
            value = _value(match, "")
            if value is None:  # "under -5", "under 1e999999999": no limit, and no query words
                found.append(_Found("unusable", match.start(), match.end(), Decimal(0), Decimal(0)))
            else:
                found.append(_bounded(kind, match.start(), match.end(), value))
            taken.append((match.start(), match.end()))
    if _BUDGET_WORD.search(text) or re.search(r"[$€£]|\b(?:bucks|dollars?|euros?)\b", text, re.I):
        # a bare amount with a currency ("50 euros", "$30") or after a budget word is a ceiling
        for match in _AMOUNT_RE.finditer(text):
            if not free(match.start(), match.end()):
                continue
            priced = match.group("pre") or match.group("cur")
            budget = _BUDGET_WORD.search(text[max(0, match.start() - 25) : match.start()])
            if not (priced or budget):
                continue
            value = _value(match, "")
            if value is None:
                continue
            found.append(_bounded("max", match.start(), match.end(), value))
            taken.append((match.start(), match.end()))
    return sorted(found, key=lambda f: f.start)


def _bounded(kind: str, start: int, end: int, value: Decimal) -> _Found:
    if kind == "around":
        spread = (value * AROUND_SHARE).quantize(Decimal("0.01"))
        return _Found("around", start, end, max(Decimal(0), value - spread), value + spread)
    return _Found(kind, start, end, value, value)


def _money_around(text: str, match: re.Match[str]) -> bool:
    """A bare range like "2-3" is only a price when money is mentioned around it."""
    if match.group("pre") or match.group("cur") or match.group("b_pre") or match.group("b_cur"):
        return True
    window = text[max(0, match.start() - 15) : match.end() + 15]
    return bool(_BUDGET_WORD.search(window))


def _value(match: re.Match[str], prefix: str) -> Decimal | None:
    number = match.group(f"{prefix}num")
    if number is None:
        return None
    amount = _decimal(number)
    if amount is None or not amount.is_finite() or amount < 0 or amount > MAX_PRICE:
        return None
    if match.group(f"{prefix}k"):
        amount *= 1000
    if amount > MAX_PRICE:
        return None
    return amount


def _decimal(number: str) -> Decimal | None:
    """``1,299.99`` / ``1.299,99`` / ``1 299`` / ``49,90`` -> Decimal: the one reading of digit
    groups (``tools.catalog.product.amount_text``), shared with the CLI and tool calls."""
    try:
        return Decimal(amount_text(number))
    except InvalidOperation:
        return None
