"""The wording of generated sessions: two disjoint families of templates, ``seen`` and ``held-out``.

A query writer trained on sessions learns the templates as much as the task. To tell the two
apart, training sessions (the ``train`` split) are phrased only with the ``seen`` family and
evaluation sessions (``dev``, ``test``) with the ``held-out`` family, whose templates, greetings,
closers and usage contexts share no entry with the seen ones (greetings and closers not even a
word). A gain that survives the change of wording is a gain at the task.

Placeholders: ``{q}`` the query (or another query, for a restart's first message), ``{ctx}``
a usage context, ``{head}`` the product noun phrase, ``{mods}`` its modifiers, ``{price}`` a
budget in whole currency units, ``{brand}`` a brand. Product words only ever enter through a
placeholder: templates never paraphrase them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Phrasings:
    """One family of templates, one table per part of a message."""

    name: str
    #: Openers put before a first message now and then.
    greetings: tuple[str, ...]
    #: Politeness put after a message now and then.
    closers: tuple[str, ...]
    #: What the thing is for: filler words a query writer must learn to leave out.
    contexts: tuple[str, ...]
    #: ``wordy``: one chatty message around ``{q}`` (``{ctx}`` optional).
    wordy: tuple[str, ...]
    #: ``product_then_modifiers``: the first message, naming ``{head}``.
    product: tuple[str, ...]
    #: ``product_then_modifiers``: the second message, adding ``{mods}``.
    modifiers: tuple[str, ...]
    #: ``restart``: the second message, dropping the first intent for ``{q}``.
    restart: tuple[str, ...]
    #: ``refinement``: a budget above the wanted product's price, ``{price}``.
    budget: tuple[str, ...]
    #: ``refinement``: the wanted product's ``{brand}``.
    brand: tuple[str, ...]

    def tables(self) -> dict[str, tuple[str, ...]]:
        """Every table by name (what the families are compared on)."""
        return {
            "greetings": self.greetings,
            "closers": self.closers,
            "contexts": self.contexts,
            "wordy": self.wordy,
            "product": self.product,
            "modifiers": self.modifiers,
            "restart": self.restart,
            "budget": self.budget,
            "brand": self.brand,
        }


SEEN = Phrasings(
    name="seen",
    greetings=("hi", "hi!", "hey", "hey there", "hello", "hello!", "hiya", "heya", "hi hi"),
    closers=(
        "thanks",
        "thank you",
        "thx",
        "ty",
        "thanks a lot",
        "cheers",
        "thanks in advance",
    ),
    contexts=(
        "for my garage",
        "for the house",
        "for a weekend project",
        "for my office",
        "for the backyard",
        "for my dad",
        "for work",
    ),
    wordy=(
        "I'm looking for {q} {ctx}",
        "do you guys have {q}? need it asap",
        "I need {q} {ctx}",
        "can you find me {q}",
        "looking for {q}, any ideas?",
        "so I need to buy {q} {ctx}",
        "do you carry {q}?",
        "want to get {q} {ctx}",
        "trying to find {q}",
        "need some help finding {q}",
        "any {q} in stock?",
        "I'd like to buy {q}",
        "show me {q} please",
        "what do you have in {q}?",
    ),
    product=(
        "{head}",
        "looking for {head}",
        "need {head}",
        "do you sell {head}?",
        "shopping for {head}",
        "I want {head}",
    ),
    modifiers=(
        "it should be {mods}",
        "{mods} please",
        "make it {mods}",
        "needs to be {mods}",
        "preferably {mods}",
        "one that is {mods}",
        "{mods}",
    ),
    restart=(
        "actually forget that, I need {q}",
        "scratch that — {q} instead",
        "wait, never mind. {q}",
        "no sorry, change of plan: {q}",
        "hmm actually I want {q}",
        "forget it, show me {q}",
        "oops wrong thing, I meant {q}",
        "never mind that, {q}",
    ),
    budget=(
        "under ${price}",
        "my budget is ${price}",
        "nothing over ${price} please",
        "keep it under ${price}",
        "less than ${price}",
    ),
    brand=(
        "only {brand}",
        "{brand} only please",
        "I prefer {brand}",
        "has to be {brand}",
        "from {brand}",
    ),
)

HELD_OUT = Phrasings(
    name="held-out",
    greetings=(
        "good morning",
        "good afternoon",
        "good evening",
        "yo",
        "howdy",
        "greetings",
        "morning!",
        "evening all",
        "sup",
    ),
    closers=(
        "much appreciated",
        "appreciate it",
        "grateful for any help",
        "ta very much",
        "lifesaver",
        "kind regards",
    ),
    contexts=(
        "for the cabin",
        "for my workshop",
        "as a gift",
        "for the new apartment",
        "for my mum",
        "for the shed",
        "for a client job",
    ),
    wordy=(
        "searching for {q} {ctx}",
        "got any {q}? it's kind of urgent",
        "I'm after {q} {ctx}",
        "would you happen to stock {q}?",
        "where can I get {q}",
        "on the hunt for {q} {ctx}",
        "is there {q} available",
        "hoping to pick up {q} {ctx}",
        "could you point me to {q}",
        "my wife asked me to get {q}",
        "in the market for {q}",
        "help me locate {q}?",
        "what options are there for {q}",
        "I must order {q} {ctx}",
    ),
    product=(
        "got {head}?",
        "I'm after {head}",
        "any {head} around?",
        "in need of {head}",
        "browsing {head}",
        "{head} — what have you got",
    ),
    modifiers=(
        "ideally {mods}",
        "the {mods} kind",
        "something {mods}",
        "{mods} if you have it",
        "must be {mods}",
        "gotta be {mods}",
        "specifically {mods}",
    ),
    restart=(
        "on second thought, what about {q}?",
        "let's drop that — I'm after {q}",
        "ignore my last message, I want {q}",
        "cancel that, looking for {q} now",
        "changed my mind: {q}",
        "different question: got {q}?",
        "disregard the above, {q} is what I need",
        "let me start over. {q}",
    ),
    budget=(
        "can't spend more than ${price}",
        "max ${price}",
        "below ${price}",
        "no more than ${price}",
        "budget tops out at ${price}",
    ),
    brand=(
        "I'm loyal to {brand}",
        "stick to {brand}",
        "{brand} brand if possible",
        "just {brand} stuff",
        "made by {brand}",
    ),
)

#: The families by the name a session's ``phrasing`` field records.
FAMILIES: dict[str, Phrasings] = {SEEN.name: SEEN, HELD_OUT.name: HELD_OUT}
