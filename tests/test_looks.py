"""looks.csv and the plan of a sweep's looks at its claims (analysis/looks.py), one seed deciding
nothing, and claims.png drawing every pair: synthetic job directories, no training."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_claims import FOUR, LOSS, make

from infomax_cli import rundir
from infomax_cli.analysis.compare import compare


def looks_of(path) -> pd.DataFrame:
    return pd.read_csv(path / rundir.LOOKS)


def add_seeds(path, means, seeds):
    """Finished jobs of these seeds added to the sweep in `path` (the others' files untouched)."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as other:
        make(Path(other), means, seeds=range(max(seeds) + 1), loss=LOSS)
        for job in Path(other).glob("case=*"):
            if int(job.name.rpartition("seed=")[2]) in seeds:
                shutil.copytree(job, path / job.name)


@pytest.mark.slow
def test_each_compare_on_new_seeds_is_a_look_recorded_in_looks_csv(
    tmp_path, no_pictures_but_claims
):
    """looks.csv: one row per look and claim; a compare on the same seeds is the same look again (its
    rows rewritten, a changed margin changing its statuses); new seeds make a new look, whose levels
    the plan makes stricter than a single look's; the plan is the first look's."""
    values = {"a": 0.5, "b": 0.4, "c": 0.62, "d": 0.6}
    make(tmp_path, values, seeds=range(5), loss=LOSS)
    compare(tmp_path)
    first = looks_of(tmp_path)
    assert list(first.columns) == ["look", rundir.SETTING, *rundir.LOOK_COLUMNS[1:]]
    assert first.look.tolist() == [1] * 5 and (first.n_seeds == 5).all()
    assert (first.seeds == "0-4").all()
    assert (first.max_seeds == 60).all() and (first.spending == "pocock").all()
    compare(tmp_path, {"mean_mi": 5.0})  # the same seeds: look 1 again
    again = looks_of(tmp_path)
    assert again.look.tolist() == [1] * 5
    assert again.set_index("claim").status["mean_mi"] == "equivalent"
    add_seeds(tmp_path, values, range(5, 8))
    job = next(tmp_path.glob("case=c*"))  # a plan chosen after looking is not taken
    (job / ".hydra" / "config.yaml").write_text("compare:\n  max_seeds: 6\n  spending: pocock\n")
    _, found = compare(tmp_path)
    second = looks_of(tmp_path)
    assert second.look.tolist() == [1] * 5 + [2] * 5 and (second.max_seeds == 60).all()
    now = second[second.look == 2]
    assert (now.n_seeds == 8).all() and (now.seeds == "0-7").all()
    assert (now.alpha_spent.to_numpy() > first.alpha_spent.to_numpy()).all()
    # the lower limit's nominal level at the second look: what the plan has left for it, < 2.5%
    assert (now.level < 0.025).all() and (found.claims.look == 2).all()
    assert found.claims.sentence.str.contains("look 2 of a plan of 60 seeds").all()


@pytest.mark.slow
def test_after_the_plans_last_look_the_claims_stay_that_looks(tmp_path, no_pictures_but_claims):
    """A 4-seed plan (compare.max_seeds=4): the look at 4 seeds spends what is left; seeds added later
    change the other tables, not the claims, which are that look's (on its seeds)."""
    values = {"a": 0.5, "b": 0.4, "c": 0.62, "d": 0.6}
    make(tmp_path, values, seeds=range(4), loss=LOSS)
    _, found = compare(tmp_path, given={"max_seeds": 4})
    last = found.claims[["claim", "status", "estimate"]]
    add_seeds(tmp_path, {**values, "d": 0.7}, range(4, 7))
    _, later = compare(tmp_path, given={"max_seeds": 4})
    assert (later.claims.n_seeds == 4).all() and (later.claims.look == 1).all()
    pd.testing.assert_frame_equal(later.claims[["claim", "status", "estimate"]], last)
    assert looks_of(tmp_path).look.tolist() == [1] * 5
    assert later.stats.n_seeds.max() == 7  # the other tables have every seed


def test_a_damaged_looks_csv_stops_compare_in_one_line_and_is_kept(tmp_path, capsys):
    from infomax_cli import cli

    make(tmp_path, FOUR, seeds=range(2))
    (tmp_path / rundir.LOOKS).write_text("look,n_seeds\nx,y\n")
    assert cli.main(["compare", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "looks.csv is damaged" in err and "delete it" in err
    assert (tmp_path / rundir.LOOKS).read_text() == "look,n_seeds\nx,y\n"


@pytest.mark.slow
def test_one_seed_decides_no_pair_and_the_picture_draws_every_pair(tmp_path):
    """The `make demo` sweep's case: one seed, every pair undecided whatever its interval over images;
    claims.png draws every pair, an estimate beyond the axis at its edge with its value."""
    from infomax_cli.render.claims_figure import claims_figure, claims_span

    make(tmp_path, FOUR, loss=LOSS)
    _, found = compare(tmp_path)
    pairs = pd.read_csv(tmp_path / rundir.CLAIMS_PAIRS)
    assert len(pairs) == 15 and (pairs.decision == "undecided").all()
    assert (pairs.dropna(subset="ci_low").ci_low > 0).any()  # an interval over images above 0
    assert claims_span([0.052], [np.nan], [np.nan], 0.02) >= 0.052  # the demo's c - b on the axes
    far = found.claim_pairs.assign(estimate=found.claim_pairs.estimate * 100)  # beyond 20 margins
    fig = claims_figure(found.claims, far, found.share_claims)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(t.startswith("estimate +") for t in texts)  # drawn at the edge, with its value
    for ax, (_, r) in zip(fig.axes, found.claims.iterrows()):
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == [f"c − {o}: undecided" for o in "abd"], (r.claim, labels)
