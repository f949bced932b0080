"""Which messages are read as another language (``agent.conversation.languages``)."""

from __future__ import annotations

import pytest

from agent.conversation.languages import foreign_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("busco un ratón inalámbrico barato", "Spanish"),
        ("una lampara para la mesa", "Spanish"),
        ("je cherche une souris sans fil pour moins de 30 euros", "French"),
        ("ich suche kabellose Kopfhörer unter 50 Euro", "German"),
        ("cerco delle cuffie senza fili", "Italian"),
        ("procuro um teclado sem fio", "Portuguese"),
        ("ищу беспроводную мышь", "another language"),
        ("ワイヤレスマウス", "another language"),
    ],
)
def test_other_languages_are_told_apart(text: str, language: str) -> None:
    assert foreign_language(text) == language


@pytest.mark.parametrize(
    "text",
    [
        "wireless mouse under 30",
        "a sombrero for my dog",  # one loan word
        "la crosse technology weather station",  # a brand that starts like Spanish
        "de walt drill",
        "casa de campo curtains",
        "Sony WH-1000XM4",
        "hi there! do you have hdmi cables?",
        "",
        "42",
    ],
)
def test_english_requests_and_names_are_not_foreign(text: str) -> None:
    assert foreign_language(text) is None
