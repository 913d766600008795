"""The same lesson in every language: identical code cells in the same order, translated prose,
complete message tables. tools/i18n_sync.py fixes what this test finds."""

import re
import string
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit.i18n import LANGUAGES, MESSAGES, messages

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import i18n_sync  # noqa: E402

LESSONS = sorted(p.name for p in (ROOT / "notebooks" / "en").glob("*.ipynb"))
OTHERS = [lang for lang in LANGUAGES if lang != "en"]


def cells(lang, lesson):
    return nbformat.read(ROOT / "notebooks" / lang / lesson, as_version=4).cells


def test_seven_lessons_in_english():
    assert [name[:2] for name in LESSONS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("lang", OTHERS)
@pytest.mark.parametrize("lesson", LESSONS)
def test_code_cells_identical_to_english(lang, lesson):
    en, tr = cells("en", lesson), cells(lang, lesson)
    assert [c.cell_type for c in tr] == [c.cell_type for c in en], "cells added, removed or reordered"
    for e, t in zip(en, tr):
        if e.cell_type == "code":
            assert t.source == i18n_sync.localise_code(e.source, lang)
    setup = next(c.source for c in tr if "ck.setup(" in c.source)
    assert f'lang="{lang}"' in setup


@pytest.mark.parametrize("lang", OTHERS)
@pytest.mark.parametrize("lesson", LESSONS)
def test_prose_translated_and_up_to_date(lang, lesson):
    assert i18n_sync.problems(lang, ROOT / "notebooks" / "en" / lesson) == []
    for e, t in zip(cells("en", lesson), cells(lang, lesson)):
        if e.cell_type == "markdown":
            assert t.source != e.source, f"cell {e.id} is still the English text"
            # formulas and code identifiers survive translation
            assert e.source.count("$") == t.source.count("$"), f"cell {e.id}: formulas differ"
            assert e.source.count("```") == t.source.count("```"), f"cell {e.id}: code blocks differ"


@pytest.mark.parametrize("lang", OTHERS)
def test_message_table_complete(lang):
    blanks = lambda s: {f for _, f, _, _ in string.Formatter().parse(s) if f}
    table = messages(lang)
    assert set(table) == set(MESSAGES["en"]), "missing or unknown keys"
    for key, text in table.items():
        assert blanks(text) == blanks(MESSAGES["en"][key]), key


def test_sync_tool_round_trip(tmp_path, monkeypatch):
    """sync copies code and keeps translations; a changed English cell is reported stale."""
    en_dir, ru_dir = tmp_path / "en", tmp_path / "ru"
    en_dir.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Hello"),
                                         nbformat.v4.new_code_cell('ck.setup(lang="en")\nprint(1)')])
    nbformat.write(nb, en_dir / "01_x.ipynb")
    monkeypatch.setattr(i18n_sync, "ROOT", tmp_path)
    i18n_sync.main(["sync", "--lang", "ru"])
    assert [p[1] for p in i18n_sync.problems("ru", en_dir / "01_x.ipynb")] == ["untranslated"]
    todo = tmp_path / "todo.json"
    todo.write_text('{"%s": "# Привет"}' % nb.cells[0].id, encoding="utf-8")
    i18n_sync.main(["import", "ru", "01", str(todo)])
    ru = nbformat.read(ru_dir / "01_x.ipynb", as_version=4)
    assert ru.cells[0].source == "# Привет" and 'lang="ru"' in ru.cells[1].source
    assert i18n_sync.problems("ru", en_dir / "01_x.ipynb") == []
    nb.cells[0].source = "# Hello, world"
    nb.cells[1].source = 'ck.setup(lang="en")\nprint(2)'
    nbformat.write(nb, en_dir / "01_x.ipynb")
    i18n_sync.main(["sync", "--lang", "ru"])
    ru = nbformat.read(ru_dir / "01_x.ipynb", as_version=4)
    assert ru.cells[0].source == "# Привет" and "print(2)" in ru.cells[1].source
    assert "stale" in i18n_sync.problems("ru", en_dir / "01_x.ipynb")[0][1]
    # a rebuilt English notebook (new cell ids, same text) keeps its translations
    fresh = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Hello"),
                                            nbformat.v4.new_code_cell('ck.setup(lang="en")\nprint(1)')])
    nbformat.write(fresh, en_dir / "01_x.ipynb")
    ru_first = nbformat.read(ru_dir / "01_x.ipynb", as_version=4).cells[0]
    ru_first.metadata["i18n"]["source"] = i18n_sync.source_hash("# Hello")
    nb_ru = nbformat.read(ru_dir / "01_x.ipynb", as_version=4)
    nb_ru.cells[0] = ru_first
    nbformat.write(nb_ru, ru_dir / "01_x.ipynb")
    i18n_sync.main(["sync", "--lang", "ru"])
    assert nbformat.read(ru_dir / "01_x.ipynb", as_version=4).cells[0].source == "# Привет"
    assert i18n_sync.problems("ru", en_dir / "01_x.ipynb") == []


def test_no_message_key_written_twice():
    """A key written twice in the English table silently keeps only the later text."""
    import ast
    import coursekit.i18n
    tree = ast.parse(Path(coursekit.i18n.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
            assert len(keys) == len(set(keys)), sorted({k for k in keys if keys.count(k) > 1})
