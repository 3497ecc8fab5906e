"""The rule catalogue (``qnxsim.rules``, ``qnxsim rules``, ``docs/RULES.md``) covers every
rule id that code, tests and docs cite, and its generated page is never stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from qnxsim import rules
from qnxsim.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "qnxsim"
TESTS = ROOT / "tests"
REGENERATE = "python -m qnxsim rules --markdown > docs/RULES.md"

#: Rules that revision 2 of the specification added or changed (ids only), which other
#: parts of the code are citing as they land.
REVISION_2 = (
    "R-SYS-1", "R-CALL-1", "R-CALL-5", "R-MMAP-5", "R-MMAP-11", "R-MMAP-15", "R-MMAP-18",
    "R-MMAP-21", "R-MPROT-5", "R-OBJ-1", "R-MSYNC-2", "R-MSYNC-3", "R-LOCK-1", "R-LOCK-2",
    "R-LOCK-5", "R-LOCK-6", "R-LOCK-7", "R-MOFF-4", "R-DEVIO-1", "R-DEVIO-2",
    *(f"R-TYMEM-{i}" for i in range(1, 6)), *(f"R-SHM-{i}" for i in range(1, 12)),
    "R-FS-1", *(f"R-HANDLE-{i}" for i in range(1, 7)), "R-PROC-6", "R-ABLE-4",
)  # fmt: skip


def _cited_files() -> list[Path]:
    files = [*PACKAGE.glob("*.py"), *TESTS.glob("*.py"), ROOT / "README.md"]
    files += [p for p in (ROOT / "examples").glob("*") if p.suffix in (".py", ".qsim", ".ipynb")]
    files += [p for p in (ROOT / "docs").glob("*.md") if p.name != "RULES.md"]
    files += list((ROOT / "benchmarks").glob("*.py"))
    return files


def test_every_cited_rule_id_is_in_the_catalogue() -> None:
    missing = rules.cited_ids(_cited_files()) - set(rules.RULES)
    assert not missing, f"rule ids cited but not in qnxsim/rules.py: {sorted(missing)}"


def test_revision_2_rules_are_in_the_catalogue() -> None:
    assert not set(REVISION_2) - set(rules.RULES)


def test_each_rule_says_what_it_decides_its_kind_and_source() -> None:
    for rule in rules.RULES.values():
        assert rule.kind in ("QNX", "POSIX", "SIM"), rule.id
        assert len(rule.text) > 20 and rule.text.endswith("."), rule.id
        assert rule.source, rule.id
        assert rules.RULE_ID.fullmatch(rule.id), rule.id


def untested_rules(tests: Path) -> list[str]:
    """The catalogue's rules that no test in ``tests`` is named after (``test_R_PEER_3_...``)."""
    found = rules.naming_tests(tests)

    def named(rule_id: str, test: str) -> bool:
        name = test.split("::")[1]
        return rule_id in {f"R-{a}-{b}" for a, b in rules.TEST_ID.findall(name)}

    return [rid for rid in rules.RULES if not any(named(rid, t) for t in found.get(rid, ()))]


def test_every_rule_in_the_catalogue_has_a_test_named_after_it() -> None:
    missing = untested_rules(TESTS)
    assert not missing, f"rules with no test named after them: {missing}"


def test_a_rule_only_cited_in_a_test_body_counts_as_untested(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text(
        'def test_R_PEER_3_needs_the_ability():\n    assert "R-PEER-2"\n'
    )
    missing = untested_rules(tmp_path)
    assert "R-PEER-3" not in missing and "R-PEER-2" in missing
    assert len(missing) == len(rules.RULES) - 1


def test_docs_rules_md_is_generated_and_fresh() -> None:
    page = ROOT / "docs" / "RULES.md"
    expected = rules.catalogue_markdown(PACKAGE, TESTS)
    assert page.read_text(encoding="utf-8") == expected, f"docs/RULES.md is stale: {REGENERATE}"


def test_readme_links_the_catalogue() -> None:
    assert "(docs/RULES.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_catalogue_names_the_code_and_the_tests_of_a_rule() -> None:
    code = rules.code_citations(PACKAGE)
    assert any(c.path == "qnxsim/peer.py" for c in code["R-PEER-3"])
    checks = rules.naming_tests(TESTS)
    assert checks["R-PEER-3"][0].startswith("test_")
    assert all("R_PEER_3" in name for name in checks["R-PEER-3"][:3])


def test_cli_rules_prints_one_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "R-PEER-3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("R-PEER-3 [QNX]  errno: EPERM")
    assert "PROCMGR_AID_MEM_PEER" in out and "qnxsim/peer.py" in out
    assert "test_peer.py::test_R_PEER_3" in out


def test_cli_rules_lists_all_and_accepts_short_ids(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(rules.RULES)
    assert main(["rules", "mmap-f2"]) == 0
    assert capsys.readouterr().out.startswith("R-MMAP-F2 [QNX]")


def test_cli_rules_unknown_id_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    missing = "R-" + "NOPE-1"  # not written whole: the catalogue check reads this file
    assert main(["rules", missing]) == 2
    assert f"no rule {missing!r}" in capsys.readouterr().err


def test_cited_ids_reads_reasons_and_test_names(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text('def test_R_SHM_7_sealed(): raise E("R-MMAP-F1: ...") # PROCMGR_ADN_NONROOT\n')
    assert rules.cited_ids([f]) == {"R-SHM-7", "R-MMAP-F1"}
