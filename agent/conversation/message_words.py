"""The words of a message that are not what the shopper wants, and how a message is split.

Why shared: the constraints (``agent.conversation.constraints``), the brand and category
matcher (``agent.conversation.facet_matches``), the model-call check
(``agent.conversation.call_constraints``) and the search calls
(``agent.conversation.search_calls``) must agree on what a word is and which words are
filler, or a word dropped in one place would be searched in another.
"""

from __future__ import annotations

import re

#: Words that say how someone asks, not what they want: never searched.
FILLER = frozenset(
    re.split(
        r"\s+",
        """
    i i'm im i'd i'll i've me my mine myself we us our you your yours he him his she her hers
    they them their it its this that these those there here who whom whose what which when
    where why how a an the some any all each every both either neither no yes not nor and or
    but so if then than as of to in on at by for from with without about into onto over under
    up down out off again also too very really just only still even quite rather maybe
    perhaps please pls plz thanks thank thx hi hello hey ok okay sure well now today
    is are was were be been being am do does did done doing have has had having can could
    would should will shall may might must need needs needed want wants wanted wanting wish
    like likes liked love loves enjoy enjoys prefer prefers looking look looks searching search
    find finding get getting buy buying purchase show showing give recommend recommendation
    suggest suggestion see help tell let lets let's got go going take something anything
    someone somebody thing things stuff kind sort type one ones other another else more less
    most least same similar such own lot lots bit little much many few good great nice best
    better decent cool awesome new use using used uses item items product products option
    options choice choices available store shop sells sell gift gifts present presents
    birthday christmas anniversary dad father mom mother mum parents wife husband son daughter
    kid kids child children friend boyfriend girlfriend grandma grandpa colleague boss
    brother sister uncle aunt cousin nephew niece partner teacher instead actually
    price prices priced cost costs costing budget money dollars dollar bucks euros euro
    pounds cheap cheaper cheapest expensive pricier affordable something's would've idea
    hiya howdy yo greetings everyone anyone guys folks asap lol haha nothing wanna gonna
    """.strip(),
    )
)
#: Words that negate what follows ("without bluetooth", "ohne Kabel"), shared by both readings.
NEGATION = r"not|no|without|except|excluding|avoid|non|sans|ohne|sin"
_WORD = re.compile(r"[\w][\w.'+!&-]*[\w!+]|[\w]", re.UNICODE)


#: How a message opens and asks, rather than what it asks for: a greeting ("hi there",
#: "good morning"), a request idiom that holds a word which elsewhere starts the product's use
#: ("looking for", "shopping for", "trying to find": ``constraints._USE`` splits on "for" and
#: "to"), and a recipient's age ("for my 10 year old"). Taken out of a message before it is
#: read, so "good morning, looking for noise cancelling headphones for flights" seeks
#: headphones, not "morning".
_CHATTER = re.compile(
    r"\b(?:(?:hi|hello|hey|hiya|howdy|yo|greetings|good\s+(?:morning|afternoon|evening|day))"
    r"(?:\s+(?:there|all|guys|folks|everyone|team))?(?![\w-])"  # "hi-fi" is no greeting
    r"|(?:looking|searching|shopping|hunting|hoping|trying|want(?:ing)?|need(?:ing)?|"
    r"going|planning|wanna|gonna)\s+(?:for|to\s+(?:buy|get|find|purchase|order|replace))\b"
    r"|in\s+the\s+market\s+for\b|do\s+(?:you|y'?all)\s+(?:guys\s+)?(?:have|sell|carry|stock)\b"
    r"|(?:a\s+)?\d+[\s-]*(?:year|yr)s?[\s-]*old\b)",
    re.I,
)


def without_chatter(text: str) -> str:
    """``text`` without greetings, request idioms and ages (``_CHATTER``)."""
    return _CHATTER.sub(" ", text)


def plain_words(text: str) -> list[str]:
    """``text``'s words, lower-cased, without the dots, quotes and exclamation marks around
    them ("hi!" is the greeting "hi", not a product word)."""
    return [w.lower().strip(".'!") for w in _WORD.findall(text) if w.strip(".'!")]
