"""Issue 15, items 4 and 8: hostile catalog files and search inputs, through the CLI.

Deep nesting, ids that are not ids, unclosed quotes, empty files, folders without a catalog,
``--format`` against the extension, queries with no searchable words, ``--brand ''`` and
rejected-row messages: each is one reported row or one error line, and no good row is lost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hostile_helpers import import_catalog, shopagent, write_jsonl
from tools.catalog.import_report import MAX_REASON

DEEP_JSON = "[" * 100_000 + "]" * 100_000


def stored_ids(home: Path, name: str) -> list[str]:
    catalog = home / "datasets" / name / "catalog.jsonl"
    return [json.loads(line)["id"] for line in catalog.read_text(encoding="utf-8").splitlines()]


def one_error_line(result: object) -> str:
    assert result.returncode == 1, result.stdout  # type: ignore[attr-defined]
    lines = result.stderr.decode().strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert "unexpected" not in lines[0] and "Errno" not in lines[0], lines[0]
    return lines[0]


# -- item 4: deep nesting -------------------------------------------------------------------


def test_deeply_nested_jsonl_lines_cost_one_row_each(tmp_path: Path) -> None:
    catalog = write_jsonl(
        tmp_path / "deep.jsonl",
        [
            {"id": "before", "title": "Mouse before"},
            '{"id": "d1", "title": "x", "attributes": {"k": ' + "[" * 1500 + "]" * 1500 + "}}",
            '{"id": "d2", "title": "x", "extra": ' + DEEP_JSON + "}",
            DEEP_JSON,
            {"id": "after", "title": "Mouse after"},
        ],
    )
    result = import_catalog(tmp_path / "home", catalog, "jsonl", "deep")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert "RecursionError" not in out + result.stderr.decode()
    assert "2 products imported, 3 rows skipped" in out
    for row in (2, 3, 4):
        assert f"deep.jsonl:{row}: malformed JSON: nested too deeply" in out
    assert stored_ids(tmp_path / "home", "deep") == ["before", "after"]


def test_a_deeply_nested_csv_attributes_cell_costs_one_row(tmp_path: Path) -> None:
    nested = '{"a":' * 3000 + "1" + "}" * 3000
    cell = '"' + nested.replace('"', '""') + '"'
    catalog = tmp_path / "deep.csv"
    catalog.write_text(
        f"id,title,attributes\nbefore,Mouse before,\ndeep,Deep mouse,{cell}\nafter,Mouse after,\n",
        encoding="utf-8",
    )
    result = import_catalog(tmp_path / "home", catalog, "csv", "deepcsv")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert "deep.csv:3: bad attributes: nested too deeply" in out
    assert stored_ids(tmp_path / "home", "deepcsv") == ["before", "after"]


# -- item 8: ids, quotes, empty files, folders, --format --------------------------------------


def test_ids_that_are_lists_objects_or_booleans_are_refused(tmp_path: Path) -> None:
    catalog = write_jsonl(
        tmp_path / "ids.jsonl",
        [
            {"id": ["a", "b"], "title": "List id"},
            {"id": {"x": 1}, "title": "Object id"},
            {"id": True, "title": "Boolean id"},
            {"id": 1.5, "title": "Fractional id"},
            {"id": 7, "title": "Integer id"},
            {"id": "s", "title": "Text id"},
        ],
    )
    result = import_catalog(tmp_path / "home", catalog, "jsonl", "ids")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert "ids.jsonl:1: bad id: a list" in out
    assert "ids.jsonl:2: bad id: a dict" in out
    assert "ids.jsonl:3: bad id: a bool" in out
    assert "ids.jsonl:4: bad id: a float" in out
    assert stored_ids(tmp_path / "home", "ids") == ["7", "s"]


def test_an_unclosed_quote_costs_its_own_row_only(tmp_path: Path) -> None:
    catalog = tmp_path / "quotes.csv"
    catalog.write_text(
        'id,title,price\n1,Mouse,9.99\n2,"Unclosed title,5\n3,Keyboard,19.99\n4,"Pad",5\n'
        '5,"Multi\nline title",7\n',
        encoding="utf-8",
    )
    result = import_catalog(tmp_path / "home", catalog, "csv", "quotes")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert "quotes.csv:3: malformed CSV" in out and "unclosed quote" in out
    assert stored_ids(tmp_path / "home", "quotes") == ["1", "3", "4", "5"]


@pytest.mark.parametrize(("name", "fmt"), [("empty.jsonl", "jsonl"), ("empty.csv", "csv")])
def test_an_empty_catalog_is_an_error_whatever_its_format(
    tmp_path: Path, name: str, fmt: str
) -> None:
    catalog = tmp_path / name
    catalog.write_bytes(b"")
    line = one_error_line(import_catalog(tmp_path / "home", catalog, fmt, "empty"))
    assert "empty" in line or "no products" in line
    assert not (tmp_path / "home" / "datasets" / "empty").exists()


def test_a_catalog_of_only_bad_rows_is_an_error_that_names_one(tmp_path: Path) -> None:
    catalog = write_jsonl(tmp_path / "bad.jsonl", [{"id": "x"}, "not json"])
    line = one_error_line(import_catalog(tmp_path / "home", catalog, "jsonl", "bad"))
    assert "no products to import" in line and "bad.jsonl:1: missing title" in line


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "chorus", "homedepot", "esci", "wands"])
def test_a_folder_with_no_catalog_is_one_clear_line(tmp_path: Path, fmt: str) -> None:
    folder = tmp_path / "nothing-here"
    folder.mkdir()
    line = one_error_line(import_catalog(tmp_path / "home", folder, fmt, "nothing"))
    assert str(folder) in line


def test_format_wins_over_the_extension(tmp_path: Path) -> None:
    jsonl_named_csv = tmp_path / "catalog.csv"
    jsonl_named_csv.write_text(
        json.dumps({"id": "j1", "title": "JSON lines in a .csv"}) + "\n", encoding="utf-8"
    )
    result = import_catalog(tmp_path / "home", jsonl_named_csv, "jsonl", "fmt")
    assert result.returncode == 0, result.stderr
    assert stored_ids(tmp_path / "home", "fmt") == ["j1"]
    csv_named_txt = tmp_path / "catalog.txt"
    csv_named_txt.write_text("id,title\nc1,CSV in a .txt\n", encoding="utf-8")
    result = import_catalog(tmp_path / "home", csv_named_txt, "csv", "fmt2")
    assert result.returncode == 0, result.stderr
    assert stored_ids(tmp_path / "home", "fmt2") == ["c1"]


def test_a_rejected_rows_message_is_capped(tmp_path: Path) -> None:
    huge = {"k": [[["x" * 50] * 20] * 5]}
    catalog = write_jsonl(
        tmp_path / "big.jsonl",
        [{"id": "big", "title": "Big", "attributes": huge}, {"id": "ok", "title": "Ok"}],
    )
    result = import_catalog(tmp_path / "home", catalog, "jsonl", "big")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "home/datasets/big/dataset.json").read_text())
    (error,) = manifest["errors"]
    assert error.startswith("big.jsonl:1: bad attribute value")
    assert len(error) <= len("big.jsonl:1: ") + MAX_REASON
    skipped = [ln for ln in result.stdout.decode().splitlines() if "skipped big.jsonl" in ln]
    assert skipped and all(len(line) < 300 for line in skipped)


# -- item 8: searches with no words, blank brand ---------------------------------------------


@pytest.fixture(scope="module")
def mice_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("hostile-search")
    catalog = write_jsonl(
        home.parent / "mice.jsonl",
        [
            {"id": "m1", "title": "Wireless mouse", "brand": "Logitech", "price": "20"},
            {"id": "m2", "title": "Gaming mouse", "brand": "Razer", "price": "50"},
            {"id": "k1", "title": "Keyboard", "brand": "Logitech", "price": "30"},
        ],
    )
    assert import_catalog(home, catalog, "jsonl", "mice").returncode == 0
    assert shopagent(home, "index", "--dataset", "mice", "--no-concepts").returncode == 0
    return home


@pytest.mark.parametrize("query", ["", "*", "(((", "the", "  "])
def test_a_query_with_no_searchable_words_matches_nothing(mice_home: Path, query: str) -> None:
    result = shopagent(mice_home, "search", query, "--dataset", "mice")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert "no products matched" in out
    assert "Wireless mouse" not in out and "1.000" not in out


def test_no_words_with_a_filter_still_browses_the_filter(mice_home: Path) -> None:
    result = shopagent(mice_home, "search", "*", "--dataset", "mice", "--brand", "Razer")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert "Gaming mouse" in out and "Wireless mouse" not in out


def test_a_blank_brand_is_no_brand_filter(mice_home: Path) -> None:
    result = shopagent(mice_home, "search", "mouse", "--dataset", "mice", "--brand", "")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert "Wireless mouse" in out and "Gaming mouse" in out


def test_the_elasticsearch_query_agrees_no_words_no_filter_matches_nothing() -> None:
    from tools.search.es_mapping import search_body
    from tools.search.request import SearchFilters, SearchRequest

    assert search_body(SearchRequest(""))["query"]["bool"]["must"] == [{"match_none": {}}]
    (clause,) = search_body(SearchRequest("((("))["query"]["bool"]["must"]
    assert clause["multi_match"]["zero_terms_query"] == "none"
    browse = SearchRequest("(((", filters=SearchFilters(brands=("Razer",)))
    (clause,) = search_body(browse)["query"]["bool"]["must"]
    assert clause["multi_match"]["zero_terms_query"] == "all"
    blank = SearchRequest("", filters=SearchFilters(brands=("",), category=" "))
    assert search_body(blank)["query"]["bool"] == {"must": [{"match_none": {}}]}
