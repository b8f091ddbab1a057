"""Build the course's notebooks from their text sources and execute them (outputs stored), as `pytest --nbval`
will replay them.

    python -m factorlab.dev.notebooks [NAME ...]          build and execute every notebook, or those named
    python -m factorlab.dev.notebooks --check [NAME ...]  say which notebooks differ from their sources (exit 1)

`make notebooks` runs the first. A notebook's source is notebooks/source/NAME.py in jupytext's percent format:
the text is what one edits, the .ipynb (with the outputs nbval compares) is what this builds. Each runs in a
fresh kernel from notebooks/, the way JupyterLab runs it. A cell that raises stops that notebook, which is then
left unchanged on disk.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

from .. import catalogue

CELL_TIMEOUT = 300


def coalesced(outputs: list) -> list:
    """Consecutive stdout (or stderr) outputs as one, as JupyterLab shows and saves them."""
    merged: list = []
    for output in outputs:
        last = merged[-1] if merged else None
        if output.output_type == "stream" and last is not None and last.output_type == "stream" \
                and last.name == output.name:
            last.text += output.text
        else:
            merged.append(output)
    return merged


MODEL_ID = re.compile(r"[0-9a-f]{32}")


def stable_widget_ids(notebook) -> None:
    """Name the widget models after where they are met (outputs in cell order, then the models each refers to),
    not by the random ids the kernel gave them: two runs then write the same file."""
    state = notebook.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state")
    if not state:
        return
    order: list[str] = []

    def meet(model_id: str) -> None:
        if model_id in order or model_id not in state:
            return
        order.append(model_id)
        for found in re.findall(r"IPY_MODEL_([0-9a-f]{32})", json.dumps(state[model_id], sort_keys=True)):
            meet(found)

    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if view:
                meet(view.get("model_id", ""))
    for model_id in sorted(state, key=lambda m: json.dumps(state[m], sort_keys=True)):  # any not met yet
        meet(model_id)
    names = {old: f"{index + 1:032x}" for index, old in enumerate(order)}
    text = MODEL_ID.sub(lambda m: names.get(m.group(0), m.group(0)), json.dumps(notebook))
    notebook.clear()
    notebook.update(nbformat.from_dict(json.loads(text)))


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def widget_class(model: dict):
    """The ipywidgets class of a saved model: its module, version and name, and its view when the model names
    one (a trimmed model may not), or None when this Python has no such widget."""
    from ipywidgets.widgets.widget import _registry

    saved = model.get("state", {})
    for (module, version, name, _, _, view), cls in _registry.items():
        if (module, version, name) == (model.get("model_module"), model.get("model_module_version"),
                                       model.get("model_name")) and saved.get("_view_name", view) == view:
            return cls
    return None


def trim_widget_state(notebook) -> None:
    """Keep of each widget model only what differs from its class's defaults, as ipywidgets' own embedding does
    with drop_defaults=True: the front end fills in the rest, so the notebook shows the same widgets from a
    fraction of the bytes. A model of a class this Python does not know is kept whole."""
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state") or {}
    for model in state.values():
        cls = widget_class(model)
        if cls is None:
            continue
        defaults = {key: _as_saved(trait.default_value) for key, trait in cls.class_traits().items()}
        model["state"] = {key: value for key, value in model.get("state", {}).items()
                          if key not in defaults or value != defaults[key]}


def _as_saved(value):
    """A default as the notebook's JSON would hold it (a tuple is a list there), or a marker equal to nothing
    saved when JSON cannot hold it."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return object()


def source_of(path: Path) -> Path:
    """The text source of notebooks/NAME.ipynb: notebooks/source/NAME.py."""
    return path.parent / "source" / f"{path.stem}.py"


def from_source(source: Path) -> nbformat.NotebookNode:
    """The notebook a source describes, without outputs: its kernel, its cells, ids by position."""
    notebook = jupytext.read(source, fmt="py:percent")
    notebook.metadata = {"kernelspec": notebook.metadata.get("kernelspec", {})}
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    for index, cell in enumerate(notebook.cells):
        cell.id, cell.metadata = f"cell-{index:02d}", {}
    return notebook


def cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """What a notebook says, outputs aside: each cell's type and source."""
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def differs(path: Path) -> str:
    """Why a committed notebook does not match its source, or "" when it does."""
    source = source_of(path)
    if not source.is_file():
        return f"{path.name} has no source ({source.relative_to(path.parent.parent)})"
    if not path.is_file():
        return f"{path.name} has not been built from {source.name}: run `make notebooks`"
    built, kept = cells(from_source(source)), cells(nbformat.read(path, as_version=4))
    if built == kept:
        return ""
    first = next((i for i, (a, b) in enumerate(zip(built, kept)) if a != b), min(len(built), len(kept)))
    return (f"{path.name} differs from {source.name} from cell {first} on ({len(kept)} cells, the source "
            f"{len(built)}): run `make notebooks` (or python -m factorlab.dev.notebooks {path.stem})")


def execute(path: Path) -> float:
    """Build a notebook from its source, run it top to bottom and write it with its outputs; return the seconds
    it took."""
    notebook = from_source(source_of(path))
    started = time.monotonic()
    NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = coalesced(cell.outputs)
    stable_widget_ids(notebook)
    trim_widget_state(notebook)
    nbformat.write(notebook, path)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m factorlab.dev.notebooks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook name prefixes, e.g. 00 03_config (default: all)")
    parser.add_argument("--check", action="store_true", help="only say which notebooks differ from their sources")
    args = parser.parse_args(argv)
    folder = catalogue.find_root() / "notebooks"
    every = sorted({*folder.glob("*.ipynb"), *(folder / f"{p.stem}.ipynb" for p in (folder / "source").glob("*.py"))})
    chosen = [p for p in every if not args.names or any(p.name.startswith(name) for name in args.names)]
    if args.check:
        problems = [problem for path in chosen if (problem := differs(path))]
        print("\n".join(problems) or f"{len(chosen)} notebooks match their sources")
        return 1 if problems else 0
    for path in chosen:
        print(f"{path.name}: built from source/{source_of(path).name} and executed in {execute(path):.0f} s",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
