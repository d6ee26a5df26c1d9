"""`python -m harness doctor NAME`: diagnose an experiment, try the article's remedies for what it
finds at a few strengths, and say for each remedy, at the strength chosen, whether the problem is gone.

Flow: the baseline (with a validation part, added if the spec has none) runs on selection seeds
and on verification seeds -> the problems at least half of the selection seeds show -> every
strength of every remedy runs on the selection seeds (one batch) -> per remedy, the strength
with the lowest validation loss (ties: the smallest strength); where that is at an end of the grid,
strengths beyond it, then one between the best two, until the best is bracketed or a limit is reached
-> the best two also together -> those run on the verification seeds, which took no part in any
choice -> per remedy the seed-paired change of the problem's metric with its 95% CI in each scope
(this data set, or this split; new data of this size where the split varies), and how many seeds
show the problem by the same per-seed criterion.

Selection and verification measure "better" differently, on purpose: strengths are chosen on the
validation loss (how well the network generalises), verdicts are on the problem's own metric (for
overfitting the test - train loss gap). Choosing on the gap would reward a network that learns
nothing, which has no gap; the table shows the gap with test accuracy beside it, as its cost.
"""

import math
import textwrap
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from harness import comparison, diagnosis, results, stats
from harness.data import overlap_ratio, split_sizes
from harness.doctor_text import selection_table, summary, table  # noqa: F401 (part of the API)
from harness.errors import HarnessError
from harness.remedies import CRITERIA, ORDER, REMEDIES, SYMPTOMS

VERIFICATION_SEEDS = 10  # seeds per arm for the verdicts
SELECTION_SEEDS = 5  # further seeds on which the strengths are chosen
VALIDATION_SIZE = 0.2  # the validation part added to a spec that has none
EXTEND_STEPS = 3  # strengths tried beyond an end of a remedy's grid, at most, before the doctor stops
# Validation losses closer than this (relative) tie: e.g. early stopping's patiences restore the same weights.
TIE = 1e-6


@dataclass(frozen=True)
class Arm:
    """A remedy at one strength (or two remedies together): what it targets, its label, the overrides
    of the baseline, what it changes in words, and its spec."""

    problem: str
    label: str
    overrides: dict
    words: str
    spec: object
    parts: tuple = field(default=(), compare=False)  # ((Remedy, strength), ...)


def gradient_spread(history):
    """log10 of the last weighted layer's mean update ratio over the first's (NaN without health columns)."""
    layers = diagnosis.layer_series(history, "update_ratio")
    if len(layers) < 2:
        return math.nan
    first, last = float(np.nanmean(next(iter(layers.values())))), float(np.nanmean(list(layers.values())[-1]))
    return math.log10(last / first) if first > 0 and last > 0 and math.isfinite(first + last) else math.nan


_frames = {}  # per_seed's frames by what they are read from: each selection round scores every arm again


def per_seed(root, spec):
    """One row per stored run of `spec` (ok or diverged; a seed, or a (seed, fold) with cv): its metrics
    and the problems it shows."""
    folder = results.experiment_dir(root, spec.name)
    stamp = tuple(_stamp(folder / name) for name in ("runs.csv", "history.csv"))
    key = (str(folder), spec.hash, tuple(spec.seeds), stamp)
    if key not in _frames:
        _frames[key] = _per_seed(root, spec)
    return _frames[key].copy()


def _stamp(path):
    """What changes when a results file is written again (files are replaced whole: a new inode)."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


def _per_seed(root, spec):
    runs = results.stored_runs(root, spec.name, spec.hash)
    history = results.stored_history(root, spec.name, spec.hash)
    keys = ["seed", "fold"] if spec.data.get("cv") and "fold" in runs and "fold" in history else ["seed"]
    runs = runs[runs["status"].isin(["ok", "diverged"]) & runs["seed"].isin(spec.seeds)].drop_duplicates(
        keys, keep="last"
    )
    chance = diagnosis.chance_loss(spec.to_dict())
    by_run = diagnosis.epoch_columns_by_run(history, keys)
    rows = []
    for _, run in runs.iterrows():
        h = by_run.get(diagnosis.run_key(run, keys), {})
        final = run.to_dict()
        fit = diagnosis.diagnose(h, final, chance)
        found = {fit.label} - {"good fit"} | {p["problem"] for p in diagnosis.training_problems(h, final)}
        num = lambda key, run=run: float(pd.to_numeric(run.get(key), errors="coerce"))  # noqa: E731
        rows.append(
            {
                "seed": int(run["seed"]),
                **({"fold": int(run["fold"])} if len(keys) > 1 else {}),
                "status": run["status"],
                "problems": found,
                "train_accuracy": num("train_accuracy"),
                "train_loss": num("train_loss"),
                "val_loss": num("val_loss"),
                "test_loss": num("test_loss"),
                "test_accuracy": num("test_accuracy"),
                "gap_test_loss": num("test_loss") - num("train_loss"),
                "gradient_spread": gradient_spread(h),
                "dead_relu_fraction": num("dead_relu_fraction"),
                "fit_seconds": num("fit_seconds"),
                "reason": fit.reason,
            }
        )
    columns = [*keys, "status", "problems", "train_accuracy", "train_loss", "val_loss", "test_loss"]
    columns += ["test_accuracy", "gap_test_loss", "gradient_spread", "dead_relu_fraction", "fit_seconds"]
    return pd.DataFrame(rows, columns=[*columns, "reason"])


def problems_of(seeds):
    """The problems shown by at least half of the seeds, most serious first, with their counts."""
    n = len(seeds)
    counts = {p: sum(p in found for found in seeds["problems"]) for p in ORDER}
    return [p for p in ORDER if n and counts[p] * 2 >= n], counts


def showing(problem, frame):
    """How many seeds of `frame` have `problem` by its criterion (the rule the table states)."""
    return sum(bool(CRITERIA[problem].shows(row)) for _, row in frame.iterrows())


# -- seeds and the baseline -------------------------------------------------------------


def seed_sets(verify=VERIFICATION_SEEDS, select=SELECTION_SEEDS):
    """(verification seeds 0..verify-1, selection seeds after them): disjoint by construction."""
    if verify < 2 or select < 1:
        raise HarnessError(
            f"doctor needs at least 2 verification seeds and 1 selection seed; got {verify} and {select}"
        )
    return list(range(verify)), list(range(verify, verify + select))


def with_validation(spec, out=print):
    """The spec with a validation part (strengths are chosen on it); says so when one is added."""
    if spec.data["validation_size"]:
        return spec
    out(
        f"{spec.name} has no validation part; the doctor diagnoses it with data.validation_size "
        f"{VALIDATION_SIZE} (taken from the training part), as strengths are chosen on validation data only"
    )
    return spec.with_overrides(
        {"data.validation_size": VALIDATION_SIZE}, name=f"{spec.name}[data.validation_size={VALIDATION_SIZE}]"
    )


# -- selection: every strength on the selection seeds -----------------------------------


def _variant(base, label, overrides, seeds):
    return base.with_overrides(overrides, name=f"{base.name}[remedy={label}]").with_seeds(seeds)


def arm(base, problem, remedy, strength, seeds):
    """The Arm of `remedy` at `strength` on `seeds`, or None where it does not apply."""
    raw = base.to_dict()
    overrides = remedy.build(raw, strength)
    if overrides is None:
        return None
    label = remedy.label(strength)
    spec = _variant(base, label, overrides, seeds)
    return Arm(problem, label, overrides, remedy.words(raw, strength), spec, ((remedy, strength),))


def candidates(base, problems, seeds):
    """[Arm] for every applicable strength of every remedy of `problems` (each remedy once, for the
    first problem it targets), on `seeds`."""
    arms, seen = [], set()
    for problem in problems:
        for remedy in REMEDIES[problem]:
            if remedy.name in seen:
                continue
            for strength in remedy.strengths:
                found = arm(base, problem, remedy, strength, seeds)
                if found:
                    seen.add(remedy.name)
                    arms.append(found)
    return arms


def validation_score(frame, n_seeds):
    """(runs without a finite validation loss, or seeds without a run; mean validation loss): lower is
    better."""
    values = frame["val_loss"].astype(float)
    missing = max(0, n_seeds - frame["seed"].nunique())
    finite = values[np.isfinite(values)]
    return (missing + len(values) - len(finite), float(finite.mean()) if len(finite) else math.inf)


def _ties(a, b):
    """Whether two validation scores (failed runs, mean loss) are equal but for float noise (a mean of
    inf, where no run has a finite validation loss, ties with itself)."""
    return a[0] == b[0] and (a[1] == b[1] or abs(a[1] - b[1]) <= TIE * max(1.0, abs(a[1]), abs(b[1])))


def select(root, arms, baseline_frame, n_seeds):
    """Per remedy, the arm (strength) with the best validation score on the selection seeds; strengths
    that tie with it (within float noise) are marked, and the smallest of them is chosen.

    Returns (chosen arms, best first; a frame of every arm's score, in strength order per remedy)."""
    rows = []
    for arm_ in arms:
        remedy, strength = arm_.parts[0]
        score = validation_score(per_seed(root, arm_.spec), n_seeds)
        rows.append(
            {
                "problem": arm_.problem,
                "remedy": remedy.name,
                "arm": arm_.label,
                "strength": strength,
                "failed": score[0],
                "val_loss": score[1],
                "_arm": arm_,
            }
        )
    frame = pd.DataFrame(rows, columns=["problem", "remedy", "arm", "strength", "failed", "val_loss", "_arm"])
    order = {name: i for i, name in enumerate(dict.fromkeys(frame["remedy"]))}
    frame = frame.assign(_order=frame["remedy"].map(order), _strength=frame["strength"].fillna(0))
    frame = frame.sort_values(["_order", "_strength"], kind="stable").drop(columns=["_order", "_strength"])
    frame["chosen"], frame["tied"] = False, False
    best = []
    for _, group in frame.groupby("remedy", sort=False):
        scores = list(zip(group["failed"], group["val_loss"]))
        top = min(scores)
        tied = [i for i, score in zip(group.index, scores) if _ties(score, top)]
        frame.loc[tied[0], "chosen"] = True
        if len(tied) > 1:
            frame.loc[tied, "tied"] = True
        best.append((frame.loc[tied[0], "_arm"], scores[list(group.index).index(tied[0])]))
    chosen = [a for a, _ in sorted(best, key=lambda pair: pair[1])]
    return chosen, frame.drop(columns=["_arm"]).reset_index(drop=True)


def _next_strengths(remedy, group, steps):
    """The strengths to try next for a remedy whose scores are `group` (in strength order): beyond the
    end where the chosen one lies, strictly better than its neighbour, while fewer than EXTEND_STEPS have
    been taken that way; else, once extended and bracketed, one between the best and its better
    neighbour. Returns [(strength, how)] (empty: done)."""
    strengths, scores = list(group["strength"]), list(zip(group["failed"], group["val_loss"]))
    if len(strengths) < 2:  # one strength applies to this network: no grid to follow
        return []
    i = list(group["chosen"]).index(True)
    tried = set(strengths)
    for end, inner, side in ((0, 1, "low"), (len(strengths) - 1, len(strengths) - 2, "high")):
        if i == end and not _ties(scores[end], scores[inner]) and steps[side] < EXTEND_STEPS:
            value = remedy.beyond(strengths[end], strengths[inner])
            steps[side] += 1
            fresh = value is not None and value not in tried
            return [(value, f"beyond {strengths[end]:g}")] if fresh else []
    if (steps["low"] or steps["high"]) and not steps["refined"] and 0 < i < len(strengths) - 1:
        steps["refined"] = True
        neighbour = min((i - 1, i + 1), key=lambda j: scores[j])
        value = remedy.between(strengths[i], strengths[neighbour])
        how = f"between {strengths[i]:g} and {strengths[neighbour]:g}"
        return [(value, how)] if value is not None else []
    return []


def extend(root, base, trials, base_select, select_seeds, run):
    """Follow the selection's own hint: where a remedy's best strength is at an end of its grid, try the
    next strength beyond it (and, once the best is bracketed, one between the best two) on the selection
    seeds, a batch per round, until every best is bracketed or EXTEND_STEPS steps were taken or the
    remedy's limit is reached. Returns (chosen arms, scores, the path taken in words)."""
    steps, paths = {}, {}
    chosen, scores = select(root, trials, base_select, len(select_seeds))
    while True:
        new = []
        for name, group in scores.groupby("remedy", sort=False):
            first = next(a for a in trials if a.parts[0][0].name == name)
            remedy = first.parts[0][0]
            if not remedy.graded:
                continue
            mine = steps.setdefault(name, {"low": 0, "high": 0, "refined": False})
            for strength, how in _next_strengths(remedy, group, mine):
                found = arm(base, first.problem, remedy, strength, select_seeds)
                if found:
                    new.append(found)
                    paths.setdefault(name, []).append(f"{how}: {strength:g}")
        if not new:
            break
        run([a.spec for a in new])
        trials = [*trials, *new]
        chosen, scores = select(root, trials, base_select, len(select_seeds))
    lines = []
    for name, path in paths.items():
        group = scores[scores["remedy"] == name]
        pick = group.loc[group["chosen"], "strength"].iloc[0]
        at_end = pick in (group["strength"].iloc[0], group["strength"].iloc[-1])
        lines.append(
            f"  {name}: {'; '.join(path)} -> chose {pick:g}"
            + (" (still at an end: the limit of steps or strengths reached)" if at_end else " (bracketed)")
        )
    return chosen, scores, lines


def combined(base, first, second, seeds):
    """The two arms together: `second`'s remedy built on `first`'s spec (None when it does not apply)."""
    r2, s2 = second.parts[0]
    after_first = base.with_overrides(first.overrides).to_dict()
    extra = r2.build(after_first, s2)
    if extra is None:
        return None
    overrides, label = {**first.overrides, **extra}, f"{first.label}+{second.label}"
    words = f"{first.words}, and {second.words}"
    return Arm(
        first.problem,
        label,
        overrides,
        words,
        _variant(base, label, overrides, seeds),
        (*first.parts, *second.parts),
    )


def pair(base, chosen, seeds):
    """The best two remedies that combine into something new, together (None if no two do): a pair whose
    second undoes the first (an L2 penalty replaces an L1 one on the same layers) trains one of them again
    and is skipped for the next best pair."""
    for i in range(len(chosen)):
        for j in range(i + 1, len(chosen)):
            both = combined(base, chosen[i], chosen[j], seeds)
            if both and both.spec.hash not in (chosen[i].spec.hash, chosen[j].spec.hash):
                return both
    return None


def _keys(remedy, base):
    return ["seed", "fold"] if "fold" in remedy and "fold" in base else ["seed"]


def _paired(remedy, base, metric, design=stats.Design(), scope="this"):
    """The remedy's change of `metric` in `scope`, paired by seed (by (seed, fold) with cv)."""
    keys = _keys(remedy, base)
    mine, theirs = remedy.set_index(keys)[metric], base.set_index(keys)[metric]
    return stats.paired(mine, theirs, design=design, scope=scope)


def _runs_needed(remedy, base, metric, ratio=0.0):
    """Runs per arm a paired test would need to resolve the observed mean difference (NaN if unknown);
    `ratio` > 0: with the correction of the new-data scope."""
    keys = _keys(remedy, base)
    both = pd.concat([remedy.set_index(keys)[metric], base.set_index(keys)[metric]], axis=1, join="inner")
    d = (both.iloc[:, 0] - both.iloc[:, 1]).astype(float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return math.nan
    spread, effect = float(d.std(ddof=1)), abs(float(d.mean()))
    n = stats.runs_needed(spread, effect, ratio=ratio)
    # The normal approximation is optimistic for a few runs: grow n until the paired t test has the power.
    while (
        math.isfinite(n)
        and n < 1000
        and (stats.t_quantile(n) + stats.t_quantile(n, 0.6)) * stats.standard_error(spread, n, ratio) > effect
    ):
        n += 1
    return n


def _outcome(effect, gone, new=False):
    """A remedy's outcome in one scope from its verdict there and whether the problem is gone by the
    per-seed rule: removed, improved (problem remains), worse, or no evidence ('not shown' for new data)."""
    if effect == "better":
        return "removed" if gone else "improved, problem remains"
    if effect == "no evidence" and new:
        return "not shown"
    return effect + ("" if not gone else " (problem absent)")


def outcome_words(outcome, new_outcome, scope):
    """The outcome in words per scope, e.g. 'removed on this data set; not shown for new data'."""
    here = comparison.scope_name(scope)
    if new_outcome is None:
        return f"{outcome} on {here}"
    if new_outcome == "not shown":
        return f"{outcome} on {here}; not shown for new data"
    return f"{outcome} on {here}; {new_outcome} for new data"


def verdict_row(problem, name, base, remedy, design=stats.Design(), scope=comparison.SCOPES["fixed"]):
    """One line of the verdict table: the problem's metric, its paired change with a 95% CI in each scope
    the runs have (`scope`: what the first covers; with `design.ratio` > 0, new data of this size too),
    how many seeds have the problem by the same criterion for the baseline and the remedy, and on how many
    the remedy did better."""
    crit = CRITERIA[problem]
    change = _paired(remedy, base, crit.metric, design)
    new = _paired(remedy, base, crit.metric, design, "new") if design.ratio else None
    acc = _paired(remedy, base, "test_accuracy", design)
    train = _paired(remedy, base, "train_accuracy", design)
    keys = _keys(remedy, base)
    won = stats.improvement(
        remedy.set_index(keys)[crit.metric], base.set_index(keys)[crit.metric], crit.lower, design
    )
    still, before = showing(problem, remedy), showing(problem, base)
    others = [p for p in ORDER if p != problem and any(p in found for found in remedy["problems"])]
    also = [f"{p} {sum(p in found for found in remedy['problems'])}/{len(remedy)}" for p in others]
    effect = change.verdict(crit.lower)
    gone = still * 2 < len(remedy)
    diverged = sum("diverged" in found for found in remedy["problems"])
    if change.n == 0:
        outcome = f"not measured (diverged {diverged}/{len(remedy)})" if diverged else "not measured"
        new_outcome = None if new is None else outcome
    else:
        outcome = _outcome(effect, gone)
        new_outcome = None if new is None else _outcome(new.verdict(crit.lower), gone, new=True)
    nan = math.nan
    return {
        "remedy": name,
        "problem": problem,
        "metric": crit.label,
        "criterion": crit.rule,
        "seeds": change.n,
        "baseline_mean": stats.mean(base[crit.metric]),
        "remedy_mean": stats.mean(remedy[crit.metric]),
        "diff": change.diff,
        "diff_ci95_low": change.ci_low,
        "diff_ci95_high": change.ci_high,
        "p_value": change.p_value,
        "effect": effect,
        "runs_needed": _runs_needed(remedy, base, crit.metric) if effect == "no evidence" else nan,
        "outcome": outcome,
        "diff_new_ci95_low": nan if new is None else new.ci_low,
        "diff_new_ci95_high": nan if new is None else new.ci_high,
        "new_p_value": nan if new is None else new.p_value,
        "new_effect": "" if new is None else new.verdict(crit.lower),
        "new_runs_needed": (
            _runs_needed(remedy, base, crit.metric, design.ratio)
            if new is not None and new.verdict(crit.lower) == "no evidence"
            else nan
        ),
        "new_outcome": new_outcome or "",
        "verdict": outcome_words(outcome, new_outcome, scope),
        "scope": scope,
        "scope_new": comparison.SCOPE_NEW if new is not None else "",
        "overlap_ratio": design.ratio,
        "baseline_showing": f"{before}/{len(base)}",
        "still_showing": f"{still}/{len(remedy)}",
        "wins": won.wins,
        "ties": won.ties,
        "units": won.n,
        "prob_improvement": won.share,
        "prob_improvement_ci95_low": won.low,
        "prob_improvement_ci95_high": won.high,
        "test_accuracy_diff": acc.diff,
        "test_accuracy_ci95_low": acc.ci_low,
        "test_accuracy_ci95_high": acc.ci_high,
        "train_accuracy_diff": train.diff,
        "train_accuracy_ci95_low": train.ci_low,
        "train_accuracy_ci95_high": train.ci_high,
        "fit_seconds": stats.mean(remedy["fit_seconds"]),
        "baseline_fit_seconds": stats.mean(base["fit_seconds"]),
        "other_problems": ", ".join(also) or "none",
    }


def verify(root, arms, base, base_frame, out=print):
    """Verdict rows of the arms (already run on the verification seeds) against the baseline `base`."""
    rows = []
    for arm_ in arms:
        frame = per_seed(root, arm_.spec)
        if frame.empty:
            out(
                f"note: {arm_.label}: every run failed; "
                f"see {results.experiment_dir(root, arm_.spec.name) / 'runs.csv'}"
            )
            continue
        folds = base.data["cv"]["folds"] if base.data.get("cv") and arm_.spec.data.get("cv") else 0
        design = stats.Design(max(overlap_ratio(base.data), overlap_ratio(arm_.spec.data)), folds)
        scope = comparison.scope_of(base.to_dict(), arm_.spec.to_dict())
        row = verdict_row(arm_.problem, arm_.label, base_frame, frame, design, scope)
        rows.append({**row, "change": arm_.words, "training_samples": round(split_sizes(base.data)[0])})
    return rows


def treated_problems(spec, frame, out=print):
    """The problems at least half of the seeds of `frame` show, reported; a gradient problem's
    symptoms (no convergence, underfitting) are left to its remedies."""
    found, counts = problems_of(frame)
    shown = ", ".join(f"{p} {counts[p]}/{len(frame)}" for p in ORDER if counts[p]) or "none"
    out(f"{spec.name}: problems per seed: {shown} (on the selection seeds {_seeds(sorted(frame['seed']))})")
    for p in found:
        crit = CRITERIA[p]
        out(
            f"  {p}: {crit.label} {stats.mean(frame[crit.metric]):.3f} (mean of {len(frame)} seeds); "
            f"the article's remedies: {diagnosis.ARTICLE_ADVICE[p]}"
        )
    causes = [p for p in found if p not in SYMPTOMS]
    if causes and len(causes) < len(found):
        out(
            f"  ({' and '.join(p for p in found if p in SYMPTOMS)}: taken as symptoms of {causes[0]}; "
            "the remedies run are those of the cause, and the table says whether the symptoms remain)"
        )
    return causes or found


def choose(root, base, problems, base_select, select_seeds, run, out=print):
    """Every strength of every remedy on the selection seeds (one batch), and beyond a grid's end where
    the best lies there; returns the chosen arms, best first, and the frame of every strength's score."""
    trials = candidates(base, problems, select_seeds)
    out(
        f"choosing strengths: {len(trials)} variants on the selection seeds {_seeds(select_seeds)}, "
        "by validation loss (not by the problem's metric: the gap alone would favour a network that learns "
        "nothing)"
    )
    run([arm_.spec for arm_ in trials])
    chosen, scores, path = extend(root, base, trials, base_select, select_seeds, run)
    out(selection_table(scores, validation_score(base_select, len(select_seeds))))
    if path:
        out("best at an end of its grid, so the doctor tried beyond it on the selection seeds:")
        out("\n".join(path))
    return chosen, scores


def main(
    spec,
    root="results",
    run=None,
    out=print,
    seeds=VERIFICATION_SEEDS,
    selection_seeds=SELECTION_SEEDS,
    note=None,
):
    """Diagnose `spec`, choose each remedy's strength on selection seeds, verify on other seeds, print and
    write the verdict table. `run(specs, expected=())` runs a batch of specs over their seeds (stored runs
    are reused; specs `expected` later may share their programs);
    `note` takes the lines for the terminal rather than a pipe (the files written)."""
    run = run or (lambda specs, expected=(): None)
    note = note or out
    _frames.clear()  # within a run, results are only replaced whole (a new inode) by results.store
    verify_seeds, select_seeds = seed_sets(seeds, selection_seeds)
    base = with_validation(spec, out)
    # every remedy a diagnosis could call for: those of the baseline's shapes train in its program
    expected = [arm_.spec for arm_ in candidates(base, ORDER, select_seeds)]
    run([base.with_seeds(select_seeds + verify_seeds)], expected)
    base_select = per_seed(root, base.with_seeds(select_seeds))
    base_verify = per_seed(root, base.with_seeds(verify_seeds))
    if base_select.empty or base_verify.empty:
        raise HarnessError(
            f"{base.name}: no finished runs to diagnose "
            f"(every run failed; see {results.experiment_dir(root, base.name) / 'runs.csv'})"
        )
    treated = treated_problems(spec, base_select, out)
    if not treated:
        out("no problem found in at least half of the seeds: nothing to remedy")
        return pd.DataFrame()
    chosen, scores = choose(root, base, treated, base_select, select_seeds, run, out)
    arms = [replace(arm, spec=arm.spec.with_seeds(verify_seeds)) for arm in chosen]
    arms += [both for both in [pair(base, chosen, verify_seeds)] if both]
    out(
        f"\nverifying {len(arms)} arms against the baseline on seeds {_seeds(verify_seeds)}, "
        "which took no part in choosing the problem or the strengths: "
        f"{', '.join(a.label for a in arms)}"
    )
    run([arm.spec for arm in arms])
    rows = verify(root, arms, base, base_verify, out)
    frame = pd.DataFrame(rows)
    path = comparison.write(frame, root, f"doctor_{comparison.output_name([spec.name])}")
    comparison.write(scores, root, f"doctor_{comparison.output_name([spec.name])}_selection")
    out("\n" + table(rows))
    said = (
        "Δ = remedy − baseline on the same verification seeds, with a 95% CI per scope: "
        + (
            "this data set (paired t over the seeds, each its own split) and new data of this size (Nadeau "
            "and Bengio's corrected t, which also counts the luck of the split); "
            if any(r["scope_new"] for r in rows)
            else "this split (paired t over the seeds: initialisation and order); "
        )
        + "'has it': seeds with the problem by its criterion; 'better on': seeds on which the remedy "
        "did better; 'removed': the CI of Δ excludes 0 in the right direction and fewer than half of the "
        "seeds still have it; 'no evidence' / 'not shown': the CI contains 0 ('runs needed': seeds per "
        "arm to resolve the Δ seen, 80% power; 'never' for new data when the correction's floor is above "
        "it). Each remedy on its own interval, without Holm's adjustment."
    )
    out("\n" + textwrap.fill(said, 110))
    for p in treated:
        out(f"  {p}: metric {CRITERIA[p].label}; a seed has it when {CRITERIA[p].rule}")
    out("\n" + "\n".join(textwrap.fill(line, 110) for line in summary(rows).splitlines()))
    note(f"wrote: {path}")
    return frame


def _seeds(seeds):
    """'10-14' for a run of consecutive seeds, else '0, 1'."""
    return (
        f"{seeds[0]}-{seeds[-1]}"
        if list(seeds) == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2
        else ", ".join(map(str, seeds))
    )
