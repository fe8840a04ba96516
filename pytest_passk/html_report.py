"""The HTML report: one self-contained file rendered from a ``pytest-passk/report/v1`` document.

No network: the style and the one script are inline, the figures are inline SVG. Task texts,
programs and failure messages come from models and are hostile: every text goes through
:func:`html.escape` and into element content or quoted attributes only; the script reads nothing
but the table's own cells, so no data is ever placed inside a ``<script>``.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pytest_passk.plots import (
    COST_FIGURE,
    PLOT_EXTRA,
    cost_notes,
    matplotlib_available,
    render_figures,
)
from pytest_passk.report_data import cost_per_sample, model_labels, target_cells

__all__ = ["CHECK_MODE", "INCOMPLETE", "NONE_SOLVED", "NO_FIGURES", "ONLY_ONE", "render_html"]

NO_FIGURES = PLOT_EXTRA.format(option="The curves")
INCOMPLETE = "This run was stopped early: the figures cover only the items that ran."
ONLY_ONE = "solved by one model only"
CHECK_MODE = "Check mode: each task's reference solution was run; no model was sampled."
#: The cost per solved task of a model with a known cost that solved no task.
NONE_SOLVED = "none solved"

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;
color:#1d1d1f}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right;vertical-align:top;
white-space:nowrap}.scroll{overflow-x:auto}
th{background:#f3f3f5}td:first-child,th:first-child{text-align:left}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2"}
table.sortable th[aria-sort=descending]::after{content:" \\25BC"}
tr.only-one{background:#fff4cc}.note{color:#555}.warn{color:#a00}
.figures svg{max-width:100%;height:auto;display:block;margin:.5em 0}
pre{background:#f7f7f9;border:1px solid #e1e1e8;padding:.5em;overflow:auto;max-height:24em;
white-space:pre-wrap}
details{margin:.3em 0}summary{cursor:pointer}
.outcome-passed{color:#060}.outcome-failed,.outcome-error,.outcome-timeout{color:#a00}
"""

# Sorts the per-task table by a clicked header (numbers as numbers, text as text); a
# ``#sort=COLUMN:asc|desc`` fragment sorts on load, so a link can show a sorted view.
_SCRIPT = """
(function(){
  function key(cell){var v=cell.getAttribute('data-v');
    if(v===null){return {n:false,t:cell.textContent};}
    if(v===''){return {n:true,x:-Infinity};}return {n:true,x:parseFloat(v)};}
  function sortBy(table,col,dir){
    var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){var p=key(a.cells[col]),q=key(b.cells[col]);
      var r=(p.n&&q.n)?(p.x-q.x):String(p.t).localeCompare(String(q.t));
      return dir==='desc'?-r:r;});
    rows.forEach(function(r){body.appendChild(r);});
    var heads=table.tHead.rows[table.tHead.rows.length-1].cells;
    for(var i=0;i<heads.length;i++){heads[i].removeAttribute('aria-sort');}
    heads[col].setAttribute('aria-sort',dir==='desc'?'descending':'ascending');
    table.setAttribute('data-sorted',col+':'+dir);}
  var tables=document.querySelectorAll('table.sortable');
  tables.forEach(function(table){
    var heads=table.tHead.rows[table.tHead.rows.length-1].cells;
    Array.prototype.forEach.call(heads,function(th,col){
      th.addEventListener('click',function(){
        var now=th.getAttribute('aria-sort');
        sortBy(table,col,now==='descending'?'asc':'desc');});});
    var m=/sort=(\\d+):(asc|desc)/.exec(location.hash);
    if(m&&+m[1]<heads.length){sortBy(table,+m[1],m[2]);}
  });
  // A task's link opens its programs.
  document.querySelectorAll('a[href^="#task-"]').forEach(function(a){
    a.addEventListener('click',function(){
      var d=document.getElementById(a.getAttribute('href').slice(1));if(d){d.open=true;}});});
  document.documentElement.setAttribute('data-ready','1');
})();
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: object, digits: int = 3) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def _usd(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "unknown"
    if 0 < abs(value) < 0.000001:  # two significant digits: never "$0" for a cost above 0
        return f"${value:.{1 - math.floor(math.log10(abs(value)))}f}".rstrip("0")
    return f"${value:.6f}".rstrip("0").rstrip(".") if value else "$0"


def _interval(value: object, bounds: object) -> str:
    text = _num(value)
    if text != "n/a" and isinstance(bounds, list) and len(bounds) == 2:
        text += f" [{_num(bounds[0])}, {_num(bounds[1])}]"
    return text


def _table(
    header: Sequence[str], rows: Iterable[Sequence[str]], css: str = "", head_rows: str = ""
) -> str:
    """A table from already-escaped cells (a cell may be a whole ``<td ...>``)."""
    cells = "".join(f"<th>{h}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>"
        for row in rows
    )
    klass = f' class="{css}"' if css else ""
    table = f"<table{klass}><thead>{head_rows}<tr>{cells}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def render_html(document: dict[str, Any], *, figures: bool = True) -> str:
    """The whole HTML page for ``document`` (figures when matplotlib is installed and
    ``figures`` is true).
    """
    models = model_labels(document)
    ks = [int(k) for k in document.get("k", [])] or [1]
    check = document.get("mode") == "check"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No request ever leaves the page: nothing but inline style, script and images.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
        "<title>pytest-passk report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>pytest-passk report</h1>",
        _meta(document),
        "<h2>Summary</h2>",
        f'<p class="note">{_e(CHECK_MODE)}</p>' if check else _summary(document, models, ks),
        _assumptions(document),
        _comparison(document),
        _own_target(document),
        _figures(document, figures and not check),
        "<h2>Tasks</h2>",
        _task_table(document, models, ks),
        "<h2>Programs by task</h2>",
        _programs(document, models),
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def _meta(document: dict[str, Any]) -> str:
    fields = [("mode", document.get("mode")), ("created", document.get("created"))]
    fields += [("version", document.get("version")), ("isolation", document.get("isolation"))]
    text = " · ".join(f"{name}: {_e(value)}" for name, value in fields if value is not None)
    warn = f'<p class="warn">{_e(INCOMPLETE)}</p>' if document.get("complete") is False else ""
    return f'<p class="note">{text}</p>{warn}'


def _summary(document: dict[str, Any], models: Sequence[str], ks: Sequence[int]) -> str:
    entries = document["models"]
    selected = any("selected_at_1" in entries.get(m, {}) for m in models)
    specs = any(entries.get(m, {}).get("spec", m) != m for m in models)
    header = ["model", *(["spec"] if specs else []), "tasks", "n"]
    header += [f"pass@{k} [95% CI]" for k in ks]
    header += ["selected@1"] if selected else []
    header += ["cost", "cost / sample", "cost / solved task"]
    rows = []
    for model in models:
        entry = entries.get(model, {})
        n, n_min = entry.get("n"), entry.get("n_min", entry.get("n"))
        row = [
            _e(model),
            *([_e(entry.get("spec", ""))] if specs else []),
            _e(entry.get("tasks", "")),
        ]
        row.append(_e("-" if n is None else n if n == n_min else f"{n_min}-{n}"))
        for k in ks:
            value = entry.get("pass_at_k", {}).get(str(k))
            row.append(_e(_interval(value, entry.get("ci95", {}).get(str(k)))))
        if selected:
            row.append(_e(_num(entry.get("selected_at_1"))))
        row += [_e(_usd(entry.get("cost_usd"))), _e(_usd(cost_per_sample(document, model)))]
        row.append(_e(_per_solved(document, model, entry)))
        rows.append(row)
    note = (
        '<p class="note">pass@k assumes an oracle that knows which sample is right; selected@1 '
        "picks one candidate per task without the task's tests.</p>"
        if selected
        else ""
    )
    return _table(header, rows) + note


def _per_solved(document: dict[str, Any], model: str, entry: dict[str, Any]) -> str:
    """The cost per solved task; the report's null is "none solved" where the cost is known."""
    per_solved = entry.get("cost_per_solved_task_usd")
    known = _usd(entry.get("cost_usd")) != "unknown"
    solved = any(t["model"] == model and t["c"] > 0 for t in document["tasks"])
    if per_solved is None and known and not solved:
        return NONE_SOLVED
    return _usd(per_solved)


def _assumptions(document: dict[str, Any]) -> str:
    assumptions = document.get("assumptions")
    if not isinstance(assumptions, dict) or not assumptions:
        return ""
    rows = [[_e(name), _e(value)] for name, value in assumptions.items()]
    return "<h3>Cost assumptions</h3>" + _table(["assumption", "value"], rows)


def _comparison(document: dict[str, Any]) -> str:
    comparison = document.get("comparison")
    if not isinstance(comparison, dict):
        return ""
    baseline = comparison.get("baseline", "")
    parts = [
        "<h2>Comparison</h2>",
        f'<p class="note">Baseline {_e(baseline)}; {_e(comparison.get("shared_tasks", "?"))} '
        f"shared tasks; paired bootstrap over tasks "
        f"({_e(comparison.get('bootstrap_resamples', '?'))} resamples).</p>",
    ]
    diffs = comparison.get("models", {})
    ks = sorted({int(k) for d in diffs.values() for k in d.get("pass_at_k_diff", {})})
    if diffs:
        header = ["model", "shared tasks"]
        header += [f"pass@{k} - baseline [95% CI]" for k in ks]
        header += ["only this model solved", "only baseline solved"]
        rows = []
        for model, diff in diffs.items():
            row = [_e(model), _e(diff.get("shared_tasks", ""))]
            for k in ks:
                cell = diff.get("pass_at_k_diff", {}).get(str(k), {})
                row.append(_e(_interval(cell.get("diff"), cell.get("ci95"))))
            row += [_e(diff.get("only_model_solved", "")), _e(diff.get("only_baseline_solved", ""))]
            rows.append(row)
        parts.append(_table(header, rows))
    equal = comparison.get("equal_cost") or []
    if equal:
        names = sorted({m for budget in equal for m in budget.get("models", {})})
        header = ["budget per task", "from"] + [f"{_e(m)}: k, pass@k" for m in names]
        rows = []
        for budget in equal:
            row = [_e(_usd(budget.get("budget_usd"))), _e(budget.get("source", ""))]
            for m in names:
                cell = budget.get("models", {}).get(m)
                if cell is None:
                    row.append("-")
                else:
                    row.append(_e(f"k={cell.get('k')}, {_num(cell.get('pass_at_k'))}"))
            rows.append(row)
        parts += ["<h3>At equal cost</h3>", _table(header, rows)]
    target = comparison.get("target")
    if isinstance(target, dict) and isinstance(target.get("models"), dict) and target["models"]:
        parts.append(_target_table(target.get("pass_at_k"), target["models"], ""))
    return "\n".join(parts)


def _target_table(target: object, cells: dict[str, Any], where: str) -> str:
    rows = [
        [
            _e(m),
            _e(cell.get("k") if cell.get("k") is not None else "not reached"),
            _e(_usd(cell.get("cost_per_task_usd"))),
        ]
        for m, cell in cells.items()
        if isinstance(cell, dict)
    ]
    title = f"To reach pass@k = {_e(_num(target, 2))}{where}"
    return f"<h3>{title}</h3>\n" + _table(["model", "k", "cost per task"], rows)


def _own_target(document: dict[str, Any]) -> str:
    """Each model's reach of ``--passk-target`` on its own tasks, where the comparison shows
    none (one model, or no task every model ran).
    """
    found = target_cells(document)
    if found is None or found[2]:
        return ""
    target, cells, _ = found
    return _target_table(target, cells, " (each model on its own tasks)")


_XML_PROLOGUE = re.compile(r"\A\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?", re.IGNORECASE)


def _figures(document: dict[str, Any], wanted: bool) -> str:
    if not wanted:
        return ""
    if not matplotlib_available():
        return f'<h2>Curves</h2><p class="note">{_e(NO_FIGURES)}</p>'
    parts = ['<h2>Curves</h2><div class="figures">']
    costs = [(m, cost_per_sample(document, m)) for m in model_labels(document)]
    priced = any(cost is not None and cost > 0 for _, cost in costs)
    headline, notes = cost_notes(costs)
    for figure in render_figures(document, png=False):
        if figure.name == COST_FIGURE and not priced:
            continue  # a figure with nothing but the note: the note alone says it
        svg = _own_ids(_XML_PROLOGUE.sub("", figure.svg), f"{figure.name}-")
        parts.append(f"<figure><figcaption>{_e(figure.title)}</figcaption>{svg}</figure>")
    if not priced:
        parts.append(f'<p class="note">{_e(headline)}</p>')
    parts += [f'<p class="note">{_e(note)}</p>' for note in notes]
    parts.append("</div>")
    return "\n".join(parts)


def _own_ids(svg: str, prefix: str) -> str:
    """Prefix every element id of a figure and the references to them: matplotlib numbers ids
    per figure (``figure_1``, ``axes_1``), and two figures in one page must not share one.
    """
    svg = re.sub(r'\bid="', f'id="{prefix}', svg)
    svg = svg.replace("url(#", f"url(#{prefix}")
    return re.sub(r'href="#', f'href="#{prefix}', svg)


def _by_task(document: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    tasks: dict[str, dict[str, dict[str, Any]]] = {}
    for record in document["tasks"]:
        tasks.setdefault(record["task_id"], {})[record["model"]] = record
    return dict(sorted(tasks.items()))


def _task_table(document: dict[str, Any], models: Sequence[str], ks: Sequence[int]) -> str:
    tasks = _by_task(document)
    several = len(models) > 1
    group = "".join(f'<th colspan="{1 + len(ks)}">{_e(m)}</th>' for m in models)
    head_rows = f"<tr><th></th>{group}{'<th></th>' if several else ''}</tr>"
    header = ["task"]
    for _ in models:
        header += ["c/n", *(f"pass@{k}" for k in ks)]
    header += ["solved only by"] if several else []
    rows = []
    for index, (task_id, by_model) in enumerate(tasks.items()):
        solvers = [m for m in models if by_model.get(m, {}).get("c", 0) > 0]
        only = several and len(solvers) == 1
        cells = [f'<td><a href="#task-{index}">{_e(task_id)}</a></td>']
        for model in models:
            record = by_model.get(model)
            if record is None:
                cells += ['<td data-v="">-</td>'] * (1 + len(ks))
                continue
            n, c = record["n"], record["c"]
            ratio = c / n if n else 0.0
            cells.append(f'<td data-v="{ratio!r}">{c}/{n}</td>')
            for k in ks:
                value = record.get("pass_at_k", {}).get(str(k))
                known = isinstance(value, int | float) and math.isfinite(value)
                cells.append(
                    f'<td data-v="{value!r}">{_num(value)}</td>'
                    if known
                    else '<td data-v="">n/a</td>'
                )
        if several:
            cells.append(_e(solvers[0]) if only else "")
        klass = ' class="only-one"' if only else ""
        rows.append(
            f"<tr{klass}>"
            + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in cells)
            + "</tr>"
        )
    head = f"<thead>{head_rows}<tr>{''.join(f'<th>{h}</th>' for h in header)}</tr></thead>"
    legend = (
        f'<p class="note">Click a column to sort. Highlighted rows: {ONLY_ONE}.</p>'
        if several
        else '<p class="note">Click a column to sort.</p>'
    )
    return (
        f'{legend}<table class="sortable" id="tasks">{head}<tbody>{"".join(rows)}</tbody></table>'
    )


def _programs(document: dict[str, Any], models: Sequence[str]) -> str:
    parts = []
    for index, (task_id, by_model) in enumerate(_by_task(document).items()):
        inner = []
        for model in models:
            record = by_model.get(model)
            if record is None:
                continue
            programs = record.get("programs")
            inner.append(f"<h4>{_e(model)}: {record['c']}/{record['n']} passed</h4>")
            if programs is None:
                inner.append('<p class="note">This report does not list programs.</p>')
                continue
            for program in programs:
                inner.append(_program(program))
            omitted = record.get("programs_omitted", 0)
            if omitted:
                inner.append(f'<p class="note">{_e(omitted)} more distinct programs.</p>')
        parts.append(
            f'<details id="task-{index}"><summary>{_e(task_id)}</summary>{"".join(inner)}</details>'
        )
    return "\n".join(parts)


def _program(program: dict[str, Any]) -> str:
    outcome = str(program.get("outcome", ""))
    klass = f"outcome-{outcome}" if outcome in ("passed", "failed", "error", "timeout") else ""
    head = (
        f'<span class="{klass}">{_e(outcome)}</span> &times; {_e(program.get("count", ""))} · '
        f"extraction: {_e(program.get('extraction', ''))}"
    )
    message = program.get("message") or ""
    text = str(program.get("program", ""))
    body = f"<pre><code>{_e(text)}</code></pre>" if text else '<p class="note">no code</p>'
    cut = '<p class="note">(cut at 4 KB)</p>' if program.get("truncated") else ""
    failure = f"<pre>{_e(message)}</pre>" if message else ""
    return f'<div class="program"><p>{head}</p>{failure}{body}{cut}</div>'
