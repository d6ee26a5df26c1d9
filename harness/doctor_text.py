"""The doctor's text: the strengths tried, the verdict table, and the summary in words."""

import math

from harness.comparison import scope_name
from harness.formatting import number, p_value, runs_needed, text_table
from harness.remedies import CRITERIA


def selection_table(frame, baseline_score):
    """Every strength tried per remedy with its mean validation loss: * the chosen, = a tie with it (the
    smallest of tied strengths is chosen); a note for remedies still chosen at an end of what was tried."""
    lines = []
    for remedy, group in frame.groupby("remedy", sort=False):
        tried = [
            f"{'*' if r['chosen'] else '=' if r['tied'] else ''}"
            f"{r['arm'].split('=', 1)[-1] if '=' in r['arm'] else r['arm']} "
            f"{number(r['val_loss'])}" + (f" ({r['failed']} failed)" if r["failed"] else "")
            for _, r in group.iterrows()
        ]
        lines.append([remedy, group["problem"].iloc[0], ",  ".join(tried)])

    def at_edge(group):  # chosen at an end of what was tried and strictly better than its neighbour
        chosen, tied = group["chosen"].to_numpy(), group["tied"].to_numpy()
        return len(group) > 1 and (chosen[0] or chosen[-1]) and not tied.any()

    edges = [remedy for remedy, group in frame.groupby("remedy", sort=False) if at_edge(group)]
    notes = []
    if frame["tied"].any():
        notes.append("= ties with the chosen (the same validation loss): the smallest strength is chosen")
    if edges:
        notes.append(f"still chosen at an end of the strengths tried (a limit reached): {', '.join(edges)}")
    return (
        f"baseline validation loss {number(baseline_score[1])}; per remedy, the mean validation loss at each "
        "strength (* chosen: the lowest):\n"
        + text_table(["remedy", "targets", "strength val_loss"], lines)
        + "".join(f"\n({note})" for note in notes)
    )


# -- verification: the chosen arms against the baseline on other seeds -----------------


def _interval(low, high):
    return f"[{low:+.3f}, {high:+.3f}]" if math.isfinite(low) and math.isfinite(high) else "n/a"


def table(rows):
    """The verdict table: per arm the problem's metric, its change with an interval per scope, the seeds
    that have the problem, on how many it did better, the verdict in words, and what it cost."""
    new = any(r.get("scope_new") for r in rows)
    here = " / ".join(dict.fromkeys(scope_name(r["scope"]) for r in rows))
    lines = []
    for r in rows:
        line = [
            r["remedy"],
            r["problem"],
            f"{number(r['baseline_mean'])} -> {number(r['remedy_mean'])}",
            number(r["diff"], "+.3f"),
            _interval(r["diff_ci95_low"], r["diff_ci95_high"]),
            p_value(r["p_value"]),
        ]
        if new:
            line.append(_interval(r["diff_new_ci95_low"], r["diff_new_ci95_high"]) if r["scope_new"] else "-")
        needed = runs_needed(r.get("runs_needed"))
        needed += f" / {runs_needed(r.get('new_runs_needed'))}" if new else ""
        line += [
            f"{r.get('baseline_showing', '?')} -> {r['still_showing']}",
            f"{r['wins']}/{r['units']}",
            r["verdict"],
            needed,
            f"{number(r['test_accuracy_diff'], '+.3f')} "
            f"{_interval(r['test_accuracy_ci95_low'], r['test_accuracy_ci95_high'])}",
            number(r.get("train_accuracy_diff", math.nan), "+.3f"),
            number(r["fit_seconds"], ".1f"),
            r["other_problems"],
        ]
        lines.append(line)
    headers = ["remedy", "targets", "metric: base -> remedy", "Δ", f"{here}: 95% CI", "p"]
    if new:
        headers.append("new data: 95% CI")
    headers += ["has it: base -> remedy", "better on", "verdict"]
    headers += ["runs needed" + (" (this/new)" if new else "")]
    headers += ["test acc Δ [95% CI]", "train acc Δ", "fit s", "other problems"]
    return text_table(headers, lines)


def summary(rows):
    """What to change, by how much it helped (with its interval per scope) and what it cost, in words."""
    if not rows:
        return "No remedy could be measured."

    def gain(r):  # the change in the direction that helps
        return -r["diff"] if CRITERIA[r["problem"]].lower else r["diff"]

    def harms(r):  # test accuracy lower with evidence: the problem's metric improved at the user's expense
        return r["test_accuracy_ci95_high"] < 0

    here = scope_name(rows[0]["scope"])
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
            f"(Δ {r['diff']:+.3f}, 95% CI on {here} {_interval(r['diff_ci95_low'], r['diff_ci95_high'])}; "
            f"better on {r['wins']} of {r['units']}); "
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
        removed = [h for h in helped if h["outcome"] == "removed"]
        if removed:
            problems = " and ".join(dict.fromkeys(h["problem"] for h in removed))
            lines.append(
                f"Removes {problems} on {here}: "
                + ", ".join(f"{h['remedy']} ({h['still_showing']} seeds still have it)" for h in removed)
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
        lines.append(f"No remedy helped with evidence on {here} (the verification seeds).")
    if any(r.get("scope_new") for r in rows):
        shown = [r["remedy"] for r in rows if r.get("new_effect") == "better"]
        size = f"new data of this size ({rows[0]['training_samples']} training samples)"
        lines.append(
            f"For {size}: "
            + (
                f"shown for {', '.join(shown)}."
                if shown
                else "no remedy is shown. Its interval (Nadeau and Bengio's corrected t, n_test/n_train "
                f"{rows[0]['overlap_ratio']:.2f}) counts the luck of the split, which no number of seeds "
                "averages away; only more data per run narrows it."
            )
        )
    unresolved = [r for r in rows if r["effect"] == "no evidence"]
    if unresolved:
        lines.append(
            f"No evidence either way on {here}: "
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
