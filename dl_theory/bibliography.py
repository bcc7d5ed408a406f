"""The bibliography (references.bib) and the claim sources that cite it.

A claim's `source` is one or more citations separated by "; ", each a bibliography key
optionally followed by a comma and the location in the paper:

    "telgarsky2016, Thm 1.1 (construction in its proof); telgarsky2015, Lemma 2.1"

Every key must be an entry of references.bib (a unit test checks every experiment's claims),
and every entry carries an arXiv id (`eprint`), a `doi` or, for books, software and papers
with neither, a `url`, so the report can link each source to the paper.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import re

BIB_FILE = pathlib.Path(__file__).resolve().parent.parent / "references.bib"
_ENTRY = re.compile(r"@(\w+)\s*\{\s*([^,\s]+)\s*,(.*?)\n\}", re.S)
_FIELD = re.compile(r"(\w+)\s*=\s*\{((?:[^{}]|\{[^{}]*\})*)\}", re.S)


@dataclasses.dataclass(frozen=True)
class Reference:
    """One bibliography entry: its key, type and fields (lower-case names, braces removed)."""

    key: str
    kind: str
    fields: dict[str, str]

    def link(self) -> str | None:
        """The paper's address: arXiv abstract page, else DOI resolver, else its url."""
        if self.fields.get("eprint"):
            return f"https://arxiv.org/abs/{self.fields['eprint']}"
        if self.fields.get("doi"):
            return f"https://doi.org/{self.fields['doi']}"
        return self.fields.get("url")

    def short_label(self) -> str:
        """'Telgarsky 2016', 'Hanin & Rolnick 2019', 'Kaplan et al. 2020'."""
        authors = [a.strip() for a in self.fields.get("author", self.key).split(" and ")]
        surnames = [a.split(",")[0].strip() if "," in a else a.split()[-1] for a in authors]
        if len(surnames) == 1:
            names = surnames[0]
        elif len(surnames) == 2:
            names = f"{surnames[0]} & {surnames[1]}"
        else:
            names = f"{surnames[0]} et al."
        return f"{names} {self.fields.get('year', '')}".strip()


def parse_bibtex(text: str) -> dict[str, Reference]:
    """Entries of a BibTeX text in the plain form references.bib uses (one `field = {value}`
    per line, the entry's closing brace alone on a line); key -> Reference."""
    entries = {}
    for kind, key, body in _ENTRY.findall(text):
        if key in entries:
            raise ValueError(f"references.bib: key {key!r} appears twice")
        fields = {name.lower(): " ".join(value.replace("{", "").replace("}", "").split())
                  for name, value in _FIELD.findall(body)}
        entries[key] = Reference(key, kind.lower(), fields)
    return entries


@functools.cache
def references(path: str = str(BIB_FILE)) -> dict[str, Reference]:
    """The project's bibliography, key -> Reference."""
    return parse_bibtex(pathlib.Path(path).read_text())


def citations(source: str) -> list[tuple[str, str]]:
    """A claim source split into (key, location) pairs, in order; location may be ''."""
    pairs = []
    for segment in source.split(";"):
        key, _, location = segment.strip().partition(",")
        if key.strip():
            pairs.append((key.strip(), location.strip()))
    return pairs


def unknown_keys(source: str, known: dict[str, Reference]) -> list[str]:
    """The keys `source` cites that are not in `known` (a source in free text fails here)."""
    return [key for key, _ in citations(source) if key not in known]
