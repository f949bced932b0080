"""What an import accepted and what it skipped, with row numbers, so nothing is dropped silently."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

#: The longest reason a report keeps for one row.
MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class RowError:
    source: str
    row: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.row}: {self.reason}"


@dataclass(slots=True)
class ImportReport:
    """Counts of accepted and rejected rows; rejected rows keep their source and row number."""

    accepted: int = 0
    errors: list[RowError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)

    def reject(self, source: str, row: int, reason: str) -> None:
        """Record a skipped row; the reason is one line of at most ``MAX_REASON`` characters
        (a rejected row once printed a 3.7 KB nested attribute)."""
        line = " ".join(reason.split())
        if len(line) > MAX_REASON:
            line = line[: MAX_REASON - 1] + "…"
        self.errors.append(RowError(source, row, line))

    def note(self, message: str) -> None:
        """Facts about the import that are not row errors (encoding used, rows added elsewhere)."""
        self.notes.append(message)

    def reasons(self) -> Counter[str]:
        """Rejections grouped by the first clause of their reason (for a short summary)."""
        return Counter(error.reason.split(":")[0] for error in self.errors)

    def summary(self) -> str:
        line = f"{self.accepted} products imported, {self.rejected} rows skipped"
        if self.errors:
            grouped = ", ".join(f"{n} {reason}" for reason, n in self.reasons().most_common())
            line += f" ({grouped})"
        if self.notes:
            line += "; " + "; ".join(self.notes)
        return line
