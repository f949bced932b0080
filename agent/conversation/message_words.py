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
    """.strip(),
    )
)
#: Words that negate what follows ("without bluetooth", "ohne Kabel"), shared by both readings.
NEGATION = r"not|no|without|except|excluding|avoid|non|sans|ohne|sin"
_WORD = re.compile(r"[\w][\w.'+!&-]*[\w!+]|[\w]", re.UNICODE)


def plain_words(text: str) -> list[str]:
    """``text``'s words, lower-cased, without the dots and quotes around them."""
    return [w.lower().strip(".'") for w in _WORD.findall(text) if w.strip(".'")]
