"""A run: each query's ranked product ids with scores, readable and writable as TREC run files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tools.atomic_write import atomic_open
from tools.errors import BadInput


@dataclass(slots=True)
class Run:
    name: str
    rankings: dict[str, list[tuple[str, float]]] = field(default_factory=dict)

    def add(self, query_id: str, ranked: list[tuple[str, float]]) -> None:
        self.rankings[query_id] = list(ranked)

    def ids(self, query_id: str) -> list[str]:
        return [pid for pid, _ in self.rankings.get(query_id, [])]

    def as_dict(self) -> dict[str, dict[str, float]]:
        """The ``{qid: {doc: score}}`` shape ranx and ir-measures take.

        Scores are replaced by descending rank-based values so that ties in the backend's
        scores cannot reorder documents inside the library.
        """
        return {
            qid: {pid: float(len(ranked) - i) for i, (pid, _) in enumerate(ranked)}
            for qid, ranked in self.rankings.items()
        }

    def write_trec(self, path: Path) -> None:
        """``qid Q0 docid rank score name`` lines, written atomically."""
        with atomic_open(path) as out:
            for qid, ranked in self.rankings.items():
                for rank, (pid, score) in enumerate(ranked, start=1):
                    out.write(f"{qid} Q0 {pid} {rank} {score:.6f} {self.name}\n")

    @classmethod
    def read_trec(cls, path: Path) -> Run:
        run = cls(name=path.stem)
        rows: dict[str, list[tuple[int, str, float]]] = {}
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 6:
                raise BadInput(f"{path}:{line_no}: expected 6 columns, got {len(parts)}")
            qid, _, pid, rank, score, run.name = parts
            rows.setdefault(qid, []).append((int(rank), pid, float(score)))
        for qid, entries in rows.items():
            run.add(qid, [(pid, score) for _, pid, score in sorted(entries)])
        return run

    def restricted_to(self, query_ids: Mapping[str, object]) -> Run:
        return Run(self.name, {q: r for q, r in self.rankings.items() if q in query_ids})
