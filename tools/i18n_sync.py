"""Keep the five language versions of every lesson in step with the English one.

The English notebooks (notebooks/en) are the source. In the other languages only the prose
(markdown cells) differs; code cells are the English ones, with the setup cell's `lang="en"`
set to the notebook's language.

    python tools/i18n_sync.py sync [--lang ru ...]    copy code cells from English, keep translated prose
    python tools/i18n_sync.py report                  list prose that is missing, untranslated or stale
    python tools/i18n_sync.py export ru 01 > todo.json    the English prose of cells still to translate
    python tools/i18n_sync.py import ru 01 done.json      store translations ({cell id: markdown})

A translated markdown cell remembers which English text it translates (a hash in its metadata).
When the English cell changes, `sync` keeps the old translation but `report` lists it as stale.
Cells are matched by their id (or, for prose, by the English text they translate, so a rebuilt
English notebook keeps its translations); after `sync`, re-execute the changed notebooks (README).
"""

import argparse
import copy
import hashlib
import json
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent / "notebooks"
LANGS = ("ru", "zh", "pt", "fr")
LANG_IN_SETUP = re.compile(r'lang="[a-z]{2}"')


def source_hash(text):
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def localise_code(source, lang):
    return LANG_IN_SETUP.sub(f'lang="{lang}"', source)


def lessons(pattern=None):
    return [p for p in sorted((ROOT / "en").glob("*.ipynb")) if pattern is None or p.name.startswith(pattern)]


def sync_one(en_path, lang):
    """Rebuild notebooks/<lang>/<lesson> from the English one; return True when it changed."""
    en = nbformat.read(en_path, as_version=4)
    path = ROOT / lang / en_path.name
    old = nbformat.read(path, as_version=4) if path.exists() else nbformat.v4.new_notebook()
    old_cells = {c.get("id"): c for c in old.cells}
    by_source = {c.metadata["i18n"]["source"]: c for c in old.cells if "i18n" in c.metadata}
    cells = []
    for cell in en.cells:
        previous = old_cells.get(cell.get("id"))
        if cell.cell_type == "markdown" and (previous is None or previous.cell_type != "markdown"):
            previous = by_source.get(source_hash(cell.source))  # the same English text under a new id
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(localise_code(cell.source, lang))
            new.metadata = dict(cell.metadata)
            if previous is not None and previous.cell_type == "code" and previous.source == new.source:
                new.outputs, new.execution_count = previous.outputs, previous.execution_count
        elif previous is not None and previous.cell_type == "markdown" and "i18n" in previous.metadata:
            new = copy.deepcopy(previous)  # keep the translation, even if stale: `report` says so
            new.metadata = {**cell.metadata, "i18n": previous.metadata["i18n"]}
        else:
            new = nbformat.v4.new_markdown_cell(cell.source)  # English placeholder: untranslated
        new["id"] = cell.get("id")
        cells.append(new)
    nb = nbformat.v4.new_notebook(cells=cells, metadata=en.metadata)
    changed = not path.exists() or nbformat.writes(nb) != nbformat.writes(old)
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
    return changed


def problems(lang, en_path):
    """(cell id, what is wrong) for every markdown cell of a translation that needs work."""
    path = ROOT / lang / en_path.name
    if not path.exists():
        return [(None, "notebook missing")]
    en = nbformat.read(en_path, as_version=4)
    tr = {c.get("id"): c for c in nbformat.read(path, as_version=4).cells}
    out = []
    for cell in en.cells:
        if cell.cell_type != "markdown":
            continue
        t = tr.get(cell.get("id"))
        if t is None:
            out.append((cell.get("id"), "missing"))
        elif "i18n" not in t.metadata:
            out.append((cell.get("id"), "untranslated"))
        elif t.metadata["i18n"].get("source") != source_hash(cell.source):
            out.append((cell.get("id"), "stale: the English cell changed since it was translated"))
    return out


def cmd_sync(args):
    for en_path in lessons():
        for lang in args.lang or LANGS:
            if sync_one(en_path, lang):
                print(f"updated {lang}/{en_path.name}")


def cmd_report(args):
    count = 0
    for en_path in lessons():
        for lang in args.lang or LANGS:
            for cell_id, what in problems(lang, en_path):
                print(f"{lang}/{en_path.name} cell {cell_id}: {what}")
                count += 1
    print(f"{count} cell(s) to translate" if count else "all prose translated and up to date")
    return 1 if count else 0


def cmd_export(args):
    (en_path,) = lessons(args.lesson)
    todo = {cid for cid, _ in problems(args.lang, en_path)} if not args.all else None
    en = nbformat.read(en_path, as_version=4)
    out = {c["id"]: c.source for c in en.cells if c.cell_type == "markdown" and (todo is None or c["id"] in todo)}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    print()


def cmd_import(args):
    (en_path,) = lessons(args.lesson)
    translations = json.loads(Path(args.file).read_text(encoding="utf-8"))
    sync_one(en_path, args.lang)
    path = ROOT / args.lang / en_path.name
    en = {c["id"]: c for c in nbformat.read(en_path, as_version=4).cells}
    nb = nbformat.read(path, as_version=4)
    unknown = set(translations) - {cid for cid, c in en.items() if c.cell_type == "markdown"}
    if unknown:
        sys.exit(f"not markdown cells of {en_path.name}: {sorted(unknown)}")
    for cell in nb.cells:
        if cell.get("id") in translations:
            cell.source = translations[cell["id"]].strip("\n")
            cell.metadata = {**en[cell["id"]].metadata, "i18n": {"source": source_hash(en[cell["id"]].source)}}
    nbformat.write(nb, path)
    print(f"stored {len(translations)} translation(s) in {args.lang}/{en_path.name}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("sync", "report"):
        p = sub.add_parser(name)
        p.add_argument("--lang", action="append", choices=LANGS)
    p = sub.add_parser("export")
    p.add_argument("lang", choices=LANGS)
    p.add_argument("lesson", help="lesson number, e.g. 01")
    p.add_argument("--all", action="store_true", help="every markdown cell, not only those still to do")
    p = sub.add_parser("import")
    p.add_argument("lang", choices=LANGS)
    p.add_argument("lesson")
    p.add_argument("file")
    args = parser.parse_args(argv)
    return {"sync": cmd_sync, "report": cmd_report, "export": cmd_export, "import": cmd_import}[args.command](args) or 0


if __name__ == "__main__":
    sys.exit(main())
