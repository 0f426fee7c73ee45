"""The documentation stands on its own: everything it cites ships in this repository.

* every attack-catalogue id a reader meets (docs, README, SECURITY.md, code comments,
  test names and docstrings) is defined in the catalogue table of ``docs/security.md``,
  and every test the security page names exists;
* no page points outside the repository (a sibling checkout, this machine's paths);
* no page cites private names (underscore modules, names defined only in them, the
  provisioning planner's internals): readers get the public API;
* every relative link resolves, anchors included;
* ``docs/performance.md`` is a reader's page: its commands and options exist, and it
  reads as method and figures, not as a work log;
* the ``register_provider`` example of ``docs/testing.md`` runs as printed;
* ``CHANGELOG.md`` exists in Keep a Changelog form and the storage page points at it.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

import federation
from federation.testing import registered_providers, unregister_provider

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHANGELOG = ROOT / "CHANGELOG.md"
PAGES = [ROOT / "README.md", ROOT / "SECURITY.md", *sorted(DOCS.rglob("*.md"))]
# The contributors' page names the library's own files (where a change goes); readers' pages never do.
CONTRIBUTORS_PAGE = DOCS / "architecture.md"
READERS_PAGES = [page for page in PAGES if page != CONTRIBUTORS_PAGE]

# The eleven families of the attack catalogue that docs/security.md defines.
FAMILIES = ("ENC", "JSON", "ALG", "HDR", "JWE", "KEY", "FETCH", "CLM", "OIDC", "MAP", "DOS")
# Anything shaped like a catalogue id; a few ordinary words share the shape.
ID_SHAPED = re.compile(r"\b[A-Z]{2,6}-[0-9]{2}\b")
NOT_IDS = {"UTF-16", "UTF-32"}
# Test names carry ids in lower case: test_enc_01_..., test_oidc03a_...
TEST_NAME_ID = re.compile(r"\bdef test_(" + "|".join(f.lower() for f in FAMILIES) + r")_?(\d{2})(?!\d)")
TABLE_ROW = re.compile(r"^\| ((?:" + "|".join(FAMILIES) + r")-\d{2}) \| ([^|]*)\|", re.M)

CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```[^\n]*\n.*?^```", re.M | re.S)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _sources() -> Iterator[Path]:
    """Python files a reader of the repository meets: library, profiles, tests, tools."""
    for folder in ("federation", "providers", "tests", "benchmarks", "examples"):
        yield from sorted((ROOT / folder).rglob("*.py"))


# -- catalogue ids ---------------------------------------------------------------------


def _catalogue() -> dict[str, str]:
    """id -> threat, from the table under "## Coverage of the attack catalogue"."""
    section = _text(DOCS / "security.md").split("## Coverage of the attack catalogue", 1)[1]
    return {m.group(1): m.group(2).strip() for m in TABLE_ROW.finditer(section)}


def test_the_catalogue_table_defines_each_id_once_with_its_threat() -> None:
    section = _text(DOCS / "security.md").split("## Coverage of the attack catalogue", 1)[1]
    ids = [m.group(1) for m in TABLE_ROW.finditer(section)]
    assert len(ids) == len(set(ids)) == 145
    assert all(threat for threat in _catalogue().values())


def _ids_met_by_a_reader() -> Iterator[tuple[str, str]]:
    for page in [*PAGES, CHANGELOG]:
        if page.exists():
            for match in ID_SHAPED.finditer(_text(page)):
                yield _rel(page), match.group(0)
    for source in _sources():
        text = _text(source)
        for match in ID_SHAPED.finditer(text):
            yield _rel(source), match.group(0)
        for family, number in TEST_NAME_ID.findall(text):
            yield _rel(source), f"{family.upper()}-{number}"


def test_every_catalogue_id_a_reader_meets_is_defined_in_the_security_page() -> None:
    defined = _catalogue()
    met = set(_ids_met_by_a_reader())
    undefined = sorted((where, found) for where, found in met if found not in NOT_IDS | set(defined))
    assert not undefined, f"ids used but not defined in docs/security.md: {undefined}"


def _test_exists(reference: str) -> bool:
    """``[path::]test_name[*]``: the test is defined (a trailing ``*`` matches a prefix)."""
    path, _, name = reference.rpartition("::")
    if path.startswith("tests/"):
        files = [ROOT / path]
    elif path:
        files = list((ROOT / "tests").rglob(path))
    else:
        files = sorted((ROOT / "tests").rglob("test_*.py"))
    pattern = re.escape(name.rstrip("*")) + (r"\w*" if name.endswith("*") else "") + r"\("
    found = re.compile(r"^(?:async )?def " + pattern, re.M)
    return any(f.is_file() and found.search(_text(f)) for f in files)


def test_every_test_the_security_page_names_exists() -> None:
    references: set[str] = set()
    for span in CODE_SPAN.findall(_text(DOCS / "security.md")):
        if re.fullmatch(r"(?:(?:tests/[\w/]+/)?test_\w+\.py::)?test_\w+\*?", span):
            references.add(span)
    assert len(references) > 145  # the coverage table and the bounds section name tests
    missing = sorted(r for r in references if not _test_exists(r))
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"


# -- nothing outside the repository ---------------------------------------------------------

OUTSIDE = re.compile(
    r"\.\./shared\b"  # a sibling checkout of reference material
    r"|\bshared/(?:references|vectors|fixtures)\b"
    r"|\breferences/[\w-]+\.md\b"  # the unshipped catalogue and its sister documents
    r"|(?<![\w.])/(?:work|home|root|Users|mnt|opt/app)/"  # this machine's absolute paths
)


def test_no_page_points_outside_the_repository() -> None:
    found = [(_rel(p), m.group(0)) for p in PAGES for m in OUTSIDE.finditer(_text(p))]
    assert not found, f"pages pointing outside the repository: {found}"


def test_no_code_comment_or_docstring_cites_the_unshipped_catalogue() -> None:
    cite = re.compile(r"\breferences/[\w-]+\.md\b")
    found = sorted({_rel(p) for p in _sources() if cite.search(_text(p))})
    assert not found, f"cite docs/security.md instead: {found}"


# -- private names -----------------------------------------------------------------------

# Token claims that genuinely start with an underscore (OIDC Core 5.6.2, Entra overage).
PUBLIC_UNDERSCORE = {"_claim_names", "_claim_sources"}
# The provisioning planner's internals: the docs describe logins through Bridge and the stores.
PLANNER_INTERNALS = {
    "plan_login", "login_plan", "plan_deprovision", "deprovision_plan", "StoreCall", "LoginFacts",
    "LoginPlan", "Resolution", "ExistingView", "Mapper", "resolve",
}  # fmt: skip


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for base, package in ((ROOT / "federation", "federation"), (ROOT / "providers", "federation.providers")):
        for path in sorted(base.rglob("*.py")):
            parts = [p for p in path.relative_to(base).with_suffix("").parts if p != "__init__"]
            yield ".".join([package, *parts]), ast.parse(_text(path))


def _top_level(tree: ast.Module) -> tuple[set[str], set[str], set[str]]:
    """(names defined, names in ``__all__``, method names of its classes) of one module."""
    defined: set[str] = set()
    exported: set[str] = set()
    methods: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        if isinstance(node, ast.ClassDef):
            methods.update(
                n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            )
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        for target in targets:
            if isinstance(target, ast.Name):
                defined.add(target.id)
                if target.id == "__all__" and isinstance(value, (ast.List, ast.Tuple)):
                    exported.update(
                        e.value
                        for e in value.elts
                        if isinstance(e, ast.Constant) and isinstance(e.value, str)
                    )
    return {n for n in defined if not n.startswith("_")}, exported, methods


def _private_only_names() -> set[str]:
    """Top-level names defined only in underscore modules and re-exported by no public one."""
    public: set[str] = set()
    private: set[str] = set()
    for module, tree in _modules():
        defined, exported, methods = _top_level(tree)
        public |= methods  # a public class's method may share a private helper's name
        if any(part.startswith("_") for part in module.split(".")):
            private |= defined
        else:
            public |= defined | exported
    return private - public


def _private_citations(page: Path, private: set[str]) -> Iterator[str]:
    text = _text(page)
    # Fenced blocks are the reader's own code (its helpers may be private): only imports count.
    for block in FENCE.findall(text):
        yield from re.findall(r"\bfederation(?:\.\w+)*\._\w+", block)
        yield from re.findall(r"\bfrom federation[\w.]* import \(?\s*_\w+", block)
    for span in CODE_SPAN.findall(FENCE.sub("", text)):
        if re.fullmatch(r"[\w./<>*-]+", span) and "/" in span:  # a path
            yield from (part for part in span.split("/") if re.match(r"_[A-Za-z]", part))
        elif re.fullmatch(r"[A-Za-z_][\w.]*(?:\([^`]*\)|\[[^`]*\])*", span):  # a (dotted) name
            for part in re.match(r"[\w.]+", span).group(0).split("."):  # type: ignore[union-attr]
                underscored = re.match(r"_[A-Za-z]", part) is not None and part not in PUBLIC_UNDERSCORE
                if underscored or part in private or part in PLANNER_INTERNALS:
                    yield span


@pytest.mark.parametrize("page", READERS_PAGES, ids=_rel)
def test_pages_cite_no_private_names(page: Path) -> None:
    cited = sorted(set(_private_citations(page, _private_only_names())))
    assert not cited, f"{_rel(page)} cites private names: {cited}"


def test_every_file_the_contributors_page_names_exists() -> None:
    text = _text(CONTRIBUTORS_PAGE)
    spans = CODE_SPAN.findall(FENCE.sub("", text))
    cited = {span for span in spans if re.fullmatch(r"[\w./-]+\.(py|md)|[\w./-]+/", span)}
    assert cited, "the page names the files each change touches"
    missing = sorted(span for span in cited if not (ROOT / span).exists())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


# -- links ----------------------------------------------------------------------------


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", _text(page)), re.M):
        slug = _slug(heading)
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


@pytest.mark.parametrize("page", [*PAGES, CHANGELOG], ids=_rel)
def test_every_relative_link_resolves(page: Path) -> None:
    broken: list[str] = []
    for target in LINK.findall(FENCE.sub("", _text(page))):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        missing_anchor = bool(anchor) and resolved.suffix == ".md" and anchor not in _anchors(resolved)
        if not resolved.exists() or missing_anchor:
            broken.append(target)
    assert not broken, f"{_rel(page)}: broken links {broken}"


# -- the performance page ------------------------------------------------------------------

PERFORMANCE = DOCS / "performance.md"
WORK_LOG = re.compile(
    r"\bissue\b|#\d+\b|\bwe (?:tried|found|did)\b|\bnext steps?\b|\bprototyp|\bsession\b|\bTODO\b|"
    r"\btarget \d\b|\bhistory\b|\bbefore the .{0,20}changes\b",
    re.I,
)


def test_the_performance_page_is_not_a_work_log() -> None:
    found = sorted({m.group(0) for m in WORK_LOG.finditer(_text(PERFORMANCE))})
    assert not found, f"docs/performance.md reads like a work log: {found}"


def _commands(page: Path) -> list[list[str]]:
    commands = []
    for block in re.findall(r"^```(?:bash|sh|console)\n(.*?)^```", _text(page), re.M | re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith(("python ", "pip ")):
                commands.append(shlex.split(line))
    return commands


def test_the_performance_page_reproduces_with_files_and_options_that_exist() -> None:
    commands = _commands(PERFORMANCE)
    scripts = [c for c in commands if c[0] == "python"]
    assert {c[1] for c in scripts} >= {f"benchmarks/{n}.py" for n in ("run", "provisioning", "mapping")}
    for command in scripts:
        script = ROOT / command[1]
        assert script.is_file(), command
        for option in (a.split("=", 1)[0] for a in command[2:] if a.startswith("--")):
            assert f'"{option}"' in _text(script), f"{command[1]} has no option {option}"
    extras = {e for c in commands if c[0] == "pip" for e in re.findall(r"\[(\w+)\]", " ".join(c))}
    pyproject = _text(ROOT / "pyproject.toml")
    assert extras and all(re.search(rf"^{e} = \[", pyproject, re.M) for e in extras), extras
    # Options named in prose (`--rounds N` ...) exist too.
    prose = FENCE.sub("", _text(PERFORMANCE))
    benchmark_sources = "".join(_text(p) for p in (ROOT / "benchmarks").glob("*.py"))
    for option in set(re.findall(r"`(--[a-z][\w-]*)", prose)):
        assert f'"{option}"' in benchmark_sources, option


# -- the register_provider example -------------------------------------------------------


def test_the_register_provider_example_of_the_testing_page_runs() -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", _text(DOCS / "testing.md"), re.M | re.S)
    example = [b for b in blocks if "register_provider(ProviderShape(" in b]
    assert len(example) == 1
    before = set(registered_providers())
    try:
        exec(compile(example[0], "docs/testing.md", "exec"), {})  # our own page's example, as printed
        assert set(registered_providers()) - before  # it registered its shape
    finally:
        for name in set(registered_providers()) - before:
            unregister_provider(name)


# -- the changelog ----------------------------------------------------------------------


def test_the_changelog_keeps_a_changelog_and_storage_points_at_it() -> None:
    text = _text(CHANGELOG)
    assert "keepachangelog.com" in text
    versions = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert versions[0] == "Unreleased"
    assert federation.__version__ in versions
    assert re.search(rf"^## \[{re.escape(federation.__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, re.M)
    storage = _text(DOCS / "storage.md")
    schema_section = storage.split("### The schema and its upgrades", 1)[1].split("\n### ", 1)[0]
    assert "](../CHANGELOG.md" in schema_section
    assert "release notes" not in schema_section.lower()
