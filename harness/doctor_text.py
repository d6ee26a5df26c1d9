"""The doctor's text: the strengths tried, the verdict table, and the summary in words."""

import math

from harness.formatting import number, p_value, runs_needed, text_table
from harness.remedies import CRITERIA


def selection_table(frame, baseline_score):

    lines = []
    for remedy, group in frame.groupby("remedy", sort=False):
        tried = [
            f"{'*' if r['chosen'] else ''}{r['arm'].split('=', 1)[-1] if '=' in r['arm'] else r['arm']} "
            f"{number(r['val_loss'])}" + (f" ({r['failed']} failed)" if r["failed"] else "")
            for _, r in group.iterrows()
        ]
        lines.append([remedy, group["problem"].iloc[0], ",  ".join(tried)])

    def at_edge(group):  # chosen at an end of the grid and strictly better than its neighbour
        loss, chosen = group["val_loss"].to_numpy(), group["chosen"].to_numpy()
        return len(group) > 1 and ((chosen[0] and loss[0] < loss[1]) or (chosen[-1] and loss[-1] < loss[-2]))

    edges = [remedy for remedy, group in frame.groupby("remedy", sort=False) if at_edge(group)]
    note = (
        f"\n(chosen at an end of the grid, a strength beyond it might do better: {', '.join(edges)})"
        if edges
        else ""
    )
    return (
        f"baseline validation loss {number(baseline_score[1])}; per remedy, the mean validation loss at each "
        "strength (* chosen: the lowest):\n"
        + text_table(["remedy", "targets", "strength val_loss"], lines)
        + note
    )


# -- verification: the chosen arms against the baseline on other seeds -----------------


def _interval(low, high):
    return f"[{low:+.3f}, {high:+.3f}]" if math.isfinite(low) and math.isfinite(high) else "n/a"


def table(rows):

    lines = [
        [
            r["remedy"],
            r["problem"],
            f"{number(r['baseline_mean'])} -> {number(r['remedy_mean'])}",
            f"{number(r['diff'], '+.3f')} {_interval(r['diff_ci95_low'], r['diff_ci95_high'])}",
            p_value(r["p_value"]),
            f"{r.get('baseline_showing', '?')} -> {r['still_showing']}",
            r["outcome"],
            runs_needed(r.get("runs_needed")),
            f"{number(r['test_accuracy_diff'], '+.3f')} "
            f"{_interval(r['test_accuracy_ci95_low'], r['test_accuracy_ci95_high'])}",
            number(r.get("train_accuracy_diff", math.nan), "+.3f"),
            number(r["fit_seconds"], ".1f"),
            r["other_problems"],
        ]
        for r in rows
    ]
    headers = ["remedy", "targets", "metric: base -> remedy", "Δ [95% CI]", "p", "has it: base -> remedy"]
    headers += ["verdict", "runs needed", "test acc Δ [95% CI]", "train acc Δ", "fit s", "other problems"]
    return text_table(headers, lines)


def summary(rows):
    """What to change, by how much it helped (with its interval) and what it cost, in words."""
    if not rows:
        return "No remedy could be measured."

    def gain(r):  # the change in the direction that helps
        return -r["diff"] if CRITERIA[r["problem"]].lower else r["diff"]

    def harms(r):  # test accuracy lower with evidence: the problem's metric improved at the user's expense
        return r["test_accuracy_ci95_high"] < 0

    helped = sorted(
        (r for r in rows if r["effect"] == "better"),
        key=lambda r: (harms(r), r["outcome"] != "removed", -gain(r)),
    )
    lines = []
    if helped:
        r = helped[0]
        lines.append(
            f"What to change: {r['change']} ({r['remedy']}). "
            f"On {r['seeds']} seeds that took no part in choosing it, "
            f"{CRITERIA[r['problem']].label} went from {r['baseline_mean']:.3f} to {r['remedy_mean']:.3f} "
            f"(Δ {r['diff']:+.3f}, 95% CI {_interval(r['diff_ci95_low'], r['diff_ci95_high'])}); "
            f"{r['still_showing']} seeds still have {r['problem']} (baseline {r['baseline_showing']})."
        )
        ratio = r["fit_seconds"] / r["baseline_fit_seconds"] if r["baseline_fit_seconds"] else math.nan
        lines.append(
            f"It costs: train accuracy {r['train_accuracy_diff']:+.3f} "
            f"{_interval(r['train_accuracy_ci95_low'], r['train_accuracy_ci95_high'])}, fit time "
            f"{r['fit_seconds']:.1f} s against {r['baseline_fit_seconds']:.1f} s ({ratio:.2f}x); "
            f"test accuracy changed {r['test_accuracy_diff']:+.3f} "
            f"{_interval(r['test_accuracy_ci95_low'], r['test_accuracy_ci95_high'])}."
        )
        if harms(r):
            why = ": the gap closes by fitting the training data less, not by generalising better"
            lines.append(
                "Every remedy that helped also lowered test accuracy with evidence"
                + (why if r["problem"] == "overfitting" else "")
                + "."
            )
        if len(helped) > 1:
            lines.append(
                "Also with evidence: "
                + "; ".join(
                    f"{h['remedy']} Δ {h['diff']:+.3f} {_interval(h['diff_ci95_low'], h['diff_ci95_high'])}"
                    f" (test accuracy {h['test_accuracy_diff']:+.3f})"
                    for h in helped[1:]
                )
                + "."
            )
    else:
        lines.append("No remedy helped with evidence on the verification seeds.")
    unresolved = [r for r in rows if r["effect"] == "no evidence"]
    if unresolved:
        lines.append(
            "No evidence either way: "
            + "; ".join(
                f"{r['remedy']} (Δ {number(r['diff'], '+.3f')}"
                + (
                    f", ~{int(r['runs_needed'])} seeds per arm would resolve it)"
                    if math.isfinite(r["runs_needed"])
                    else ")"
                )
                for r in unresolved
            )
            + "."
        )
    worse = [r["remedy"] for r in rows if r["effect"] == "worse"]
    if worse:
        lines.append(f"Made it worse: {', '.join(worse)}.")
    return "\n".join(lines)
