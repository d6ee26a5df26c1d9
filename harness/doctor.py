"""`python -m harness doctor NAME`: diagnose an experiment, try the article's remedies for what it
finds at a few strengths, and say for each remedy, at the strength chosen, whether the problem is gone.

Flow: the baseline (with a validation part, added if the spec has none) runs on selection seeds
and on verification seeds -> the problems at least half of the selection seeds show -> every
strength of every remedy runs on the selection seeds (one batch) -> per remedy, the strength
with the lowest validation loss; the best two also together -> those run on the verification
seeds, which took no part in any choice -> per remedy the seed-paired change of the problem's
metric with its 95% CI, and how many seeds show the problem by the same per-seed criterion.
"""

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from harness import comparison, diagnosis, results, stats
from harness.data import overlap_ratio
from harness.doctor_text import selection_table, summary, table  # noqa: F401 (part of the API)
from harness.errors import HarnessError
from harness.remedies import CRITERIA, ORDER, REMEDIES, SYMPTOMS

VERIFICATION_SEEDS = 10  # seeds per arm for the verdicts
SELECTION_SEEDS = 5  # further seeds on which the strengths are chosen
VALIDATION_SIZE = 0.2  # the validation part added to a spec that has none


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


def per_seed(root, spec):
    """One row per stored run of `spec` (ok or diverged; a seed, or a (seed, fold) with cv): its metrics
    and the problems it shows."""
    runs = results.stored_runs(root, spec.name, spec.hash)
    keys = ["seed", "fold"] if spec.data.get("cv") and "fold" in runs else ["seed"]
    runs = runs[runs["status"].isin(["ok", "diverged"]) & runs["seed"].isin(spec.seeds)].drop_duplicates(
        keys, keep="last"
    )
    history = results.stored_history(root, spec.name, spec.hash)
    chance = diagnosis.chance_loss(spec.to_dict())
    rows = []
    for _, run in runs.iterrows():
        h = history[history["seed"] == run["seed"]]
        if len(keys) > 1 and "fold" in h:
            h = h[h["fold"] == run["fold"]]
        fit = diagnosis.diagnose(h, run.to_dict(), chance)
        found = {fit.label} - {"good fit"} | {
            p["problem"] for p in diagnosis.training_problems(h, run.to_dict())
        }
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


def candidates(base, problems, seeds):
    """[Arm] for every applicable strength of every remedy of `problems` (each remedy once, for the
    first problem it targets), on `seeds`."""
    raw, arms, seen = base.to_dict(), [], set()
    for problem in problems:
        for remedy in REMEDIES[problem]:
            if remedy.name in seen:
                continue
            for strength in remedy.strengths:
                overrides = remedy.build(raw, strength)
                if overrides is None:
                    continue
                seen.add(remedy.name)
                label = remedy.label(strength)
                words = remedy.words(raw, strength)
                spec = _variant(base, label, overrides, seeds)
                arms.append(Arm(problem, label, overrides, words, spec, ((remedy, strength),)))
    return arms


def validation_score(frame, n_seeds):
    """(runs without a finite validation loss, or seeds without a run; mean validation loss): lower is
    better."""
    values = frame["val_loss"].astype(float)
    missing = max(0, n_seeds - frame["seed"].nunique())
    finite = values[np.isfinite(values)]
    return (missing + len(values) - len(finite), float(finite.mean()) if len(finite) else math.inf)


def select(root, arms, baseline_frame, n_seeds):
    """Per remedy, the arm (strength) with the best validation score on the selection seeds.

    Returns (chosen arms, best first; a frame of every arm's score)."""
    rows, best = [], {}
    for arm in arms:
        score = validation_score(per_seed(root, arm.spec), n_seeds)
        remedy = arm.parts[0][0].name
        rows.append(
            {
                "problem": arm.problem,
                "remedy": remedy,
                "arm": arm.label,
                "failed": score[0],
                "val_loss": score[1],
            }
        )
        if remedy not in best or score < best[remedy][1]:
            best[remedy] = (arm, score)
    frame = pd.DataFrame(rows, columns=["problem", "remedy", "arm", "failed", "val_loss"])
    frame["chosen"] = frame["arm"].isin([arm.label for arm, _ in best.values()])
    chosen = [arm for arm, _ in sorted(best.values(), key=lambda pair: pair[1])]
    return chosen, frame


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


def _keys(remedy, base):
    return ["seed", "fold"] if "fold" in remedy and "fold" in base else ["seed"]


def _paired(remedy, base, metric, ratio=0.0):
    """The remedy's change of `metric`, paired by seed (by (seed, fold) with cv); `ratio` corrects for
    overlap."""
    keys = _keys(remedy, base)
    scope = "new" if ratio else "this"
    return stats.paired(
        remedy.set_index(keys)[metric], base.set_index(keys)[metric], design=stats.Design(ratio), scope=scope
    )


def _runs_needed(remedy, base, metric, ratio=0.0):
    """Runs per arm a paired test would need to resolve the observed mean difference (NaN if unknown)."""
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


def verdict_row(problem, name, base, remedy, ratio=0.0):
    """One line of the verdict table: the problem's metric, paired change, CI, and how many seeds
    have the problem by the same criterion, for the baseline and the remedy.

    `ratio` = n_test / n_train corrects the interval where training sets overlap between runs (resplit,
    cv)."""
    crit = CRITERIA[problem]
    change = _paired(remedy, base, crit.metric, ratio)
    acc = _paired(remedy, base, "test_accuracy", ratio)
    train = _paired(remedy, base, "train_accuracy", ratio)
    still, before = showing(problem, remedy), showing(problem, base)
    others = [p for p in ORDER if p != problem and any(p in found for found in remedy["problems"])]
    also = [f"{p} {sum(p in found for found in remedy['problems'])}/{len(remedy)}" for p in others]
    effect = change.verdict(crit.lower)
    gone = still * 2 < len(remedy)
    diverged = sum("diverged" in found for found in remedy["problems"])
    if change.n == 0:
        outcome = f"not measured (diverged {diverged}/{len(remedy)})" if diverged else "not measured"
    elif effect == "better":
        outcome = "removed" if gone else "improved, problem remains"
    else:
        outcome = effect + ("" if not gone else " (problem absent)")
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
        "runs_needed": _runs_needed(remedy, base, crit.metric, ratio)
        if effect == "no evidence"
        else math.nan,
        "baseline_showing": f"{before}/{len(base)}",
        "still_showing": f"{still}/{len(remedy)}",
        "outcome": outcome,
        "test_accuracy_diff": acc.diff,
        "test_accuracy_ci95_low": acc.ci_low,
        "test_accuracy_ci95_high": acc.ci_high,
        "train_accuracy_diff": train.diff,
        "train_accuracy_ci95_low": train.ci_low,
        "train_accuracy_ci95_high": train.ci_high,
        "fit_seconds": stats.mean(remedy["fit_seconds"]),
        "baseline_fit_seconds": stats.mean(base["fit_seconds"]),
        "other_problems": ", ".join(also) or "none",
        "interval": "paired t" if not ratio else f"corrected t (n_test/n_train {ratio:.2f})",
    }


def verify(root, arms, base, base_frame, out=print):
    """Verdict rows of the arms (already run on the verification seeds) against the baseline `base`."""
    rows = []
    for arm in arms:
        frame = per_seed(root, arm.spec)
        if frame.empty:
            out(
                f"note: {arm.label}: every run failed; "
                f"see {results.experiment_dir(root, arm.spec.name) / 'runs.csv'}"
            )
            continue
        ratio = max(overlap_ratio(base.data), overlap_ratio(arm.spec.data))
        row = verdict_row(arm.problem, arm.label, base_frame, frame, ratio)
        rows.append({**row, "change": arm.words})
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
    """Every strength of every remedy on the selection seeds (one batch); returns the chosen arms,
    best first, and the frame of every strength's validation score."""
    trials = candidates(base, problems, select_seeds)
    out(
        f"choosing strengths: {len(trials)} variants on the selection seeds {_seeds(select_seeds)}, "
        "by validation loss"
    )
    run([arm.spec for arm in trials])
    chosen, scores = select(root, trials, base_select, len(select_seeds))
    out(selection_table(scores, validation_score(base_select, len(select_seeds))))
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
    write the verdict table. `run(specs)` runs a batch of specs over their seeds (stored runs are reused);
    `note` takes the lines for the terminal rather than a pipe (the files written)."""
    run = run or (lambda specs: None)
    note = note or out
    verify_seeds, select_seeds = seed_sets(seeds, selection_seeds)
    base = with_validation(spec, out)
    run([base.with_seeds(select_seeds + verify_seeds)])
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
    if len(chosen) >= 2:
        arms += [both for both in [combined(base, chosen[0], chosen[1], verify_seeds)] if both]
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
    out(
        "\nΔ = remedy − baseline on the same verification seeds. "
        "'has it': seeds with the problem by its criterion, "
        "'removed': the CI of Δ excludes 0 in the right direction "
        "and fewer than half of the seeds still have it; "
        "'no evidence': the CI contains 0 ('runs needed': seeds per arm to resolve the Δ seen, 80% power)."
    )
    for p in treated:
        out(f"  {p}: metric {CRITERIA[p].label}; a seed has it when {CRITERIA[p].rule}")
    out("\n" + summary(rows))
    note(f"wrote: {path}")
    return frame


def _seeds(seeds):
    """'10-14' for a run of consecutive seeds, else '0, 1'."""
    return (
        f"{seeds[0]}-{seeds[-1]}"
        if list(seeds) == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2
        else ", ".join(map(str, seeds))
    )
