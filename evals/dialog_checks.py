"""The checks a scripted dialog makes on what one chat turn showed the shopper.

Why apart from the runner: a check reads only a turn's trajectory record (the reply text and
the products shown, with the catalog's titles, brands and prices), so it is a plain function,
tested without a chat, and the same whether the record came from a pty or a session.

A dialog's ``expect`` maps a check's name to its argument::

    max_price / min_price   every shown product has a price, within the bound
    brands_any              every shown product's brand is one of these (case-insensitive)
    brands_none             no shown product's brand is one of these
    type_words              each of the top 3 titles holds one of these words (a word, not a
                            substring; "drill" matches "Drills" and "Drill/Driver")
    type_lacks              none of the top 3 titles holds these words (an accessory of the
                            type: "lamp", "mount" for a projector)
    titles_any              each of the top 3 titles holds one of these words (a brand on a
                            catalog without a brand field: "only dewalt" on Home Depot)
    titles_none             no shown title holds any of these words
    order                   price_asc / price_desc: shown prices non-decreasing / non-increasing
    no_products             true: nothing shown
    min_products            at least this many shown
    reply_contains          each substring is in the reply (case-insensitive)
    reply_lacks             no substring is in the reply (case-insensitive)
    reply_regex             the reply matches this regular expression
    reply_counts            true: the reply leads with the number shown ("Here are the 5 best
                            matches", "Here is the best match")
    cheaper_than_shown      N: every shown price is below the price of product N of the list
                            the turn before ("like the second one but cheaper")
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

#: How many of the shown products must be of the type asked for.
TOP_N = 3

Check = Callable[[Any, Mapping[str, Any]], str | None]


def shown(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The products the turn showed, in the order shown."""
    products = record.get("recommended") or []
    return sorted(products, key=lambda p: int(p.get("position", 0)))


def price_of(product: Mapping[str, Any]) -> Decimal | None:
    """A shown product's price as a number; None when the catalog has none."""
    raw = product.get("price")
    if raw in (None, ""):
        return None
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        return None


def reply_of(record: Mapping[str, Any]) -> str:
    return str(record.get("final_answer") or "")


def word_pattern(word: str) -> re.Pattern[str]:
    """``word`` as whole words, singular or plural: "drill" finds "Drills", "boxes" finds
    "Box"; the last word of a phrase takes the plural ("ceiling fans")."""
    stem = word.lower().strip()
    if stem.endswith("es") and len(stem) > 4 and stem[-3] in "sxz":
        stem = stem[:-2]
    elif stem.endswith("s") and not stem.endswith("ss") and len(stem) > 3:
        stem = stem[:-1]
    words = [re.escape(w) for w in stem.split()]
    return re.compile(r"\b" + r"[\s-]+".join(words) + r"(?:s|es)?\b", re.I)


def _within(product: Mapping[str, Any], low: Decimal | None, high: Decimal | None) -> bool:
    """A price bound holds only for a product with a price: an unpriced product shown for
    "under 50" is not known to be under 50."""
    price = price_of(product)
    if price is None:
        return False
    return (low is None or price >= low) and (high is None or price <= high)


def _max_price(record: Mapping[str, Any], bound: Any) -> str | None:
    bad = [p for p in shown(record) if not _within(p, None, Decimal(str(bound)))]
    return f"max_price {bound}: " + _titles_prices(bad) if bad else None


def _min_price(record: Mapping[str, Any], bound: Any) -> str | None:
    bad = [p for p in shown(record) if not _within(p, Decimal(str(bound)), None)]
    return f"min_price {bound}: " + _titles_prices(bad) if bad else None


def _brands_any(record: Mapping[str, Any], brands: Sequence[str]) -> str | None:
    allowed = {b.lower() for b in brands}
    bad = [p for p in shown(record) if str(p.get("brand") or "").lower() not in allowed]
    return f"brands_any {list(brands)}: " + _brands(bad) if bad else None


def _brands_none(record: Mapping[str, Any], brands: Sequence[str]) -> str | None:
    banned = {b.lower() for b in brands}
    bad = [p for p in shown(record) if str(p.get("brand") or "").lower() in banned]
    return f"brands_none {list(brands)}: " + _brands(bad) if bad else None


def _type_words(record: Mapping[str, Any], words: Sequence[str]) -> str | None:
    patterns = [word_pattern(w) for w in words]
    top = shown(record)[:TOP_N]
    if not top:
        return f"type_words {list(words)}: nothing shown"
    bad = [p for p in top if not any(x.search(str(p.get("title") or "")) for x in patterns)]
    return f"top {TOP_N} titles need one of {list(words)}: " + _titles(bad) if bad else None


def _type_lacks(record: Mapping[str, Any], words: Sequence[str]) -> str | None:
    patterns = [word_pattern(w) for w in words]
    top = shown(record)[:TOP_N]
    bad = [p for p in top if any(x.search(str(p.get("title") or "")) for x in patterns)]
    return f"type_lacks {list(words)}: " + _titles(bad) if bad else None


def _titles_none(record: Mapping[str, Any], words: Sequence[str]) -> str | None:
    patterns = [word_pattern(w) for w in words]
    bad = [p for p in shown(record) if any(x.search(str(p.get("title") or "")) for x in patterns)]
    return f"titles_none {list(words)}: " + _titles(bad) if bad else None


def _order(record: Mapping[str, Any], order: str) -> str | None:
    found = [price_of(p) for p in shown(record)]
    prices = [p for p in found if p is not None]
    if len(prices) < len(found):
        return f"order {order}: a shown product has no price"
    pairs = list(pairwise(prices))
    if order == "price_asc":
        ok = all(a <= b for a, b in pairs)
    elif order == "price_desc":
        ok = all(a >= b for a, b in pairs)
    else:
        return f"order {order!r}: unknown order"
    return None if ok else f"order {order}: prices {[str(p) for p in prices]}"


def _no_products(record: Mapping[str, Any], wanted: Any) -> str | None:
    count = len(shown(record))
    if bool(wanted) and count:
        return f"no_products: {count} shown"
    if not wanted and not count:
        return "no_products false: nothing shown"
    return None


def _min_products(record: Mapping[str, Any], least: Any) -> str | None:
    count = len(shown(record))
    return f"min_products {least}: {count} shown" if count < int(least) else None


def _reply_contains(record: Mapping[str, Any], parts: Sequence[str]) -> str | None:
    reply = reply_of(record).lower()
    missing = [s for s in parts if s.lower() not in reply]
    return f"reply_contains {missing}" if missing else None


def _reply_lacks(record: Mapping[str, Any], parts: Sequence[str]) -> str | None:
    reply = reply_of(record).lower()
    found = [s for s in parts if s.lower() in reply]
    return f"reply_lacks {found}" if found else None


def _reply_regex(record: Mapping[str, Any], pattern: str) -> str | None:
    return None if re.search(pattern, reply_of(record)) else f"reply_regex {pattern!r}"


def _reply_counts(record: Mapping[str, Any], wanted: Any) -> str | None:
    if not wanted:
        return None
    count = len(shown(record))
    lead = "Here is the best match" if count == 1 else f"Here are the {count} best matches"
    return None if lead in reply_of(record) else f"reply_counts: no {lead!r}"


CHECKS: dict[str, Check] = {
    "max_price": _max_price,
    "min_price": _min_price,
    "brands_any": _brands_any,
    "brands_none": _brands_none,
    "type_words": _type_words,
    "type_lacks": _type_lacks,
    "titles_any": _type_words,
    "titles_none": _titles_none,
    "order": _order,
    "no_products": _no_products,
    "min_products": _min_products,
    "reply_contains": _reply_contains,
    "reply_lacks": _reply_lacks,
    "reply_regex": _reply_regex,
    "reply_counts": _reply_counts,
}


def _cheaper_than_shown(
    record: Mapping[str, Any], position: Any, previous: Mapping[str, Any] | None
) -> str | None:
    """Why against the list before: "like the second one but cheaper" means cheaper than
    what #2 cost on the shopper's screen, a price the dialog cannot know when written."""
    before = [p for p in shown(previous or {}) if int(p.get("position", 0)) == int(position)]
    reference = price_of(before[0]) if before else None
    if reference is None:
        return f"cheaper_than_shown {position}: no priced #{position} on the list before"
    bad = [p for p in shown(record) if not _within(p, None, reference - Decimal("0.01"))]
    return f"cheaper_than_shown {position} ({reference}): " + _titles_prices(bad) if bad else None


#: Checks that read the turn before too.
PREVIOUS_CHECKS = {"cheaper_than_shown": _cheaper_than_shown}


def failed_checks(
    record: Mapping[str, Any],
    expect: Mapping[str, Any],
    previous: Mapping[str, Any] | None = None,
) -> list[str]:
    """What ``record`` breaks of ``expect``, one line per failed check (empty: all pass);
    ``previous`` is the record of the turn before, for the checks that compare with it.

    An unknown check name is a failure too: a typo in a dialog file must not pass silently.
    """
    failures: list[str] = []
    for name, argument in expect.items():
        if name in PREVIOUS_CHECKS:
            problem = PREVIOUS_CHECKS[name](record, argument, previous)
            if problem:
                failures.append(problem)
            continue
        check = CHECKS.get(name)
        if check is None:
            failures.append(f"unknown check {name!r}")
            continue
        problem = check(record, argument)
        if problem:
            failures.append(problem)
    return failures


def _titles(products: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(f"#{p.get('position')} {p.get('title')}" for p in products)


def _titles_prices(products: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(f"#{p.get('position')} {p.get('title')} ({p.get('price')})" for p in products)


def _brands(products: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(f"#{p.get('position')} {p.get('brand') or '(no brand)'}" for p in products)
