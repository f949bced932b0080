"""Is a message written in a language other than English? Then it is not searched.

Why: the catalogs are English, and the lexical index matches words, so "busco un ratón
inalámbrico" searched as keywords finds whatever holds "un" or a brand-like token (serial-port
cables, in a test on Chorus), and the shopper sees unrelated products with no hint why. No
multilingual embedding model ships in a package here, so the honest answer is one sentence:
the catalog is searched in English, with an example (``compose.compose_in_english``).

How: the share of a message's words that are the everyday words of one language (articles,
pronouns, prepositions, the verbs of asking: "busco", "je cherche", "ich suche") against those
of English; a message mostly in another script (Cyrillic, Greek, CJK, Arabic...) is foreign at
once. Brand and model names ("Sony WH-1000XM4") are neither, so they count for no language.
An English message with one loan word ("a sombrero for my dog") stays English: a language
needs two of its words and more of them than English has.
"""

from __future__ import annotations

import re
import unicodedata

#: Everyday words that are not English words too (no "a", "de"-like shared tokens that an
#: English shopper also types, e.g. model names; "de" and "la" are kept: English requests
#: rarely hold them as words of their own).
LANGUAGE_WORDS: dict[str, frozenset[str]] = {
    "Spanish": frozenset(
        [
            "el",
            "la",
            "los",
            "las",
            "un",
            "una",
            "unos",
            "unas",
            "de",
            "del",
            "para",
            "con",
            "sin",
            "por",
            "que",
            "y",
            "o",
            "es",
            "son",
            "busco",
            "buscando",
            "quiero",
            "necesito",
            "tienes",
            "tienen",
            "hay",
            "algo",
            "barato",
            "barata",
            "baratos",
            "mejor",
            "mi",
            "mis",
            "hola",
            "gracias",
            "por",
            "favor",
            "menos",
            "más",
            "muy",
            "ratón",
            "teclado",
            "auriculares",
            "inalámbrico",
            "inalámbricos",
        ]
    ),
    "French": frozenset(
        [
            "le",
            "la",
            "les",
            "un",
            "une",
            "des",
            "du",
            "de",
            "pour",
            "avec",
            "sans",
            "et",
            "ou",
            "est",
            "je",
            "cherche",
            "veux",
            "voudrais",
            "besoin",
            "avez-vous",
            "vous",
            "pas",
            "moins",
            "cher",
            "chère",
            "bonjour",
            "merci",
            "mon",
            "ma",
            "mes",
            "souris",
            "clavier",
            "casque",
            "écouteurs",
            "sans-fil",
        ]
    ),
    "German": frozenset(
        [
            "der",
            "die",
            "das",
            "ein",
            "eine",
            "einen",
            "einem",
            "für",
            "mit",
            "ohne",
            "und",
            "oder",
            "ist",
            "ich",
            "suche",
            "brauche",
            "möchte",
            "haben",
            "sie",
            "nicht",
            "billig",
            "günstig",
            "günstiger",
            "hallo",
            "danke",
            "mein",
            "meine",
            "maus",
            "tastatur",
            "kopfhörer",
            "kabellos",
        ]
    ),
    "Italian": frozenset(
        [
            "il",
            "lo",
            "la",
            "gli",
            "le",
            "un",
            "una",
            "per",
            "con",
            "senza",
            "e",
            "o",
            "che",
            "cerco",
            "voglio",
            "vorrei",
            "ho",
            "bisogno",
            "avete",
            "economico",
            "economica",
            "ciao",
            "grazie",
            "mio",
            "mia",
            "cuffie",
            "tastiera",
            "senza-fili",
        ]
    ),
    "Portuguese": frozenset(
        [
            "o",
            "a",
            "os",
            "as",
            "um",
            "uma",
            "para",
            "com",
            "sem",
            "e",
            "ou",
            "que",
            "procuro",
            "quero",
            "preciso",
            "tem",
            "barato",
            "barata",
            "olá",
            "obrigado",
            "obrigada",
            "meu",
            "minha",
            "fones",
            "teclado",
            "sem-fio",
        ]
    ),
}
#: English words of the same kinds: a request holding them is English whatever else it holds.
ENGLISH_WORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "for",
        "with",
        "without",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "my",
        "i",
        "i'm",
        "im",
        "me",
        "is",
        "are",
        "need",
        "want",
        "looking",
        "find",
        "show",
        "any",
        "some",
        "under",
        "below",
        "over",
        "than",
        "that",
        "this",
        "it",
        "one",
        "cheap",
        "cheaper",
        "please",
        "hi",
        "hello",
        "hey",
        "thanks",
    ]
)
_WORD = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)
#: A message this much in letters outside the Latin script is foreign whatever its words.
OTHER_SCRIPT_SHARE = 0.5


def foreign_language(text: str) -> str | None:
    """The language a message is written in when it is not English (its English name, or
    "another language" for a script the table has no words for); None for English or when
    the words cannot tell."""
    letters = [c for c in text if c.isalpha()]
    if letters:
        other = sum(1 for c in letters if not _latin(c))
        if other / len(letters) >= OTHER_SCRIPT_SHARE:
            return "another language"
    words = [w.lower() for w in _WORD.findall(text)]
    english = sum(1 for w in words if w in ENGLISH_WORDS)
    best, hits = None, 0
    for language, vocabulary in LANGUAGE_WORDS.items():
        count = sum(1 for w in words if w in vocabulary and w not in ENGLISH_WORDS)
        if count > hits:
            best, hits = language, count
    if best is not None and hits >= 2 and hits > english:
        return best
    return None


def _latin(character: str) -> bool:
    try:
        return "LATIN" in unicodedata.name(character)
    except ValueError:
        return False
