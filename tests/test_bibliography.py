"""The bibliography: every claim source cites keys of references.bib, every entry links to its
paper, and CITATION.cff describes this package."""

import configparser
import pathlib
import re

import pytest

from dl_theory import bibliography, experiment

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Experiments whose claim sources are still free text ("Telgarsky 2016, Thm 1.1"): their files
# were being rewritten when sources became keys. The integrator converts them (the i18 report
# lists each new source) and then removes them here; test_free_text_exceptions_are_current
# fails as soon as one of them is converted, so this list only shrinks.
FREE_TEXT_SOURCES = ()
EXPERIMENTS = {name: experiment.load_experiment(str(path))
               for name, path in experiment.available_experiments().items()}


@pytest.mark.parametrize("name", sorted(set(EXPERIMENTS) - set(FREE_TEXT_SOURCES)))
def test_every_claim_source_cites_bibliography_keys(name):
    refs = bibliography.references()
    unknown = {spec.id: bibliography.unknown_keys(spec.source, refs)
               for spec in EXPERIMENTS[name].CLAIMS}
    assert not {k: v for k, v in unknown.items() if v}, (
        f"{name}: claim sources must start with keys of references.bib "
        "(\"key, location; key2\"); unknown: " + repr({k: v for k, v in unknown.items() if v}))


def test_free_text_exceptions_are_current():
    refs = bibliography.references()
    converted = [name for name in FREE_TEXT_SOURCES
                 if not any(bibliography.unknown_keys(spec.source, refs)
                            for spec in EXPERIMENTS[name].CLAIMS)]
    assert not converted, f"{converted} now cite keys only: remove them from FREE_TEXT_SOURCES"


def test_every_entry_links_to_its_paper():
    for key, ref in bibliography.references().items():
        fields = ref.fields
        assert fields.get("title") and fields.get("author") and fields.get("year"), key
        if "eprint" in fields:
            assert re.fullmatch(r"\d{4}\.\d{4,5}", fields["eprint"]), key
        if "doi" in fields:
            assert re.fullmatch(r"10\.\d{4,9}/\S+", fields["doi"]), key
        assert ref.link() or (ref.kind == "book" and fields.get("publisher")), (
            f"{key}: give an eprint (arXiv id), a doi or a url")


def test_parse_citations_links_and_labels():
    refs = bibliography.parse_bibtex("""
@article{one2020,
  author = {Solo, Han},
  title = {A {Title}},
  year = {2020},
  doi = {10.1000/xyz},
  eprint = {2001.00001},
}

@misc{two2021,
  author = {Ab, Cd and Ef, Gh},
  title = {Two},
  year = {2021},
  url = {https://example.org/two},
}

@misc{many2022,
  author = {A, B and C, D and E, F},
  title = {Many},
  year = {2022},
}
""")
    assert refs["one2020"].fields["title"] == "A Title"
    assert refs["one2020"].link() == "https://arxiv.org/abs/2001.00001"  # arXiv before DOI
    assert refs["two2021"].link() == "https://example.org/two"
    assert refs["many2022"].link() is None
    assert [r.short_label() for r in refs.values()] == ["Solo 2020", "Ab & Ef 2021",
                                                        "A et al. 2022"]
    assert bibliography.citations("one2020, Thm 1, eq. (3); two2021") == [
        ("one2020", "Thm 1, eq. (3)"), ("two2021", "")]
    assert bibliography.unknown_keys("one2020; Smith 1999, Thm 2", refs) == ["Smith 1999"]
    with pytest.raises(ValueError, match="one2020"):
        bibliography.parse_bibtex("@misc{one2020,\n  title = {x},\n}\n" * 2)


def test_citation_cff_describes_this_package():
    # The top-level `key: value` lines (no YAML library needed for these).
    lines = (ROOT / "CITATION.cff").read_text().splitlines()
    cff = dict(re.match(r"([\w-]+): *\"?(.*?)\"?$", line).groups() for line in lines
               if re.match(r"[\w-]+: *\S", line))
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert str(cff["version"]) == setup["metadata"]["version"]
    assert cff["license"] == setup["metadata"]["license"]
    assert cff["title"].startswith("dl_theory") and "  - name: " in "\n".join(lines)
