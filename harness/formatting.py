"""Text for the terminal: aligned tables and the number, interval and p-value formats the reports share.

Plain Python (no pandas), so `list` and `show` stay fast.
"""

import math


def text_table(headers, rows, groups=()):
    """A plain aligned table: a header line, a rule, then one line per row. `groups`: (label, first column,
    last column) spans named on a line above the headers."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    lines = [line(headers), line(["-" * w for w in widths]), *map(line, rows)]
    if groups:
        starts = [sum(widths[:i]) + 2 * i for i in range(len(widths))]
        above = ""
        for label, first, last in groups:
            span = starts[last] + widths[last] - starts[first]
            above = above.ljust(starts[first]) + f" {label} ".center(span, "-")
        lines.insert(0, above)
    return "\n".join(lines)


def number(value, fmt=".3f"):
    """`value` formatted with `fmt`, or 'n/a' when it is not finite (unmeasured)."""
    return format(value, fmt) if math.isfinite(value) else "n/a"


def p_value(value):
    """A p-value to three decimals, '<0.001' below that, 'n/a' when there is none."""
    if not math.isfinite(value):
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def runs_needed(value):
    """Runs needed as text: the number; 'never' where no number of runs of the design suffices; '-' where
    it does not apply (there is evidence already, or no estimate)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "-"
    if math.isnan(value):
        return "-"
    return "never" if math.isinf(value) else str(int(value))
