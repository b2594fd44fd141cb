"""claims.csv: each claim of the study with its own statistic, the seed as replicate unit, image units,
the untrained control and other alignments beside it (synthetic job directories: no training)."""

import numpy as np
import pandas as pd
import pytest
from fake_sweep import two_level, units, write_job

from infomax_cli import rundir
from infomax_cli.analysis import claims, sweep
from infomax_cli.analysis.compare import compare, print_found
from infomax_cli.errors import RunError

T2 = (
    4.302652729749462  # Student t 0.975 quantile, 2 df: a lower limit (holds, each pair on its own)
)
# the 1 - 0.025/3 quantile: an upper limit (fails, a union over three pairs)
T2_SIMULTANEOUS = 7.648803937915553
N_CLAIM_COLUMNS = len(rundir.CLAIM_COLUMNS)
IMAGE = ["example_images", "winner_share", "mean_max_mi", "mean_mi"]


def make(
    tmp_path,
    means,
    seeds=(0,),
    loss=None,
    init=None,
    aligns=None,
    sd_seed=0.02,
    n_units=20,
    per_unit=4,
    **kw,
):
    """A sweep: mi_max from the two-level model around `means` ({case: mean}); `loss`: {case: objective MI};
    `init`: {case: mean} of the untrained control; `aligns`: {A: {case: mean}}."""
    values = two_level(
        means, seeds, n_units, per_unit, sd_seed=sd_seed, sd_unit=0.2, sd_noise=0.02, rng_seed=1
    )
    init_values = (
        two_level(init, seeds, n_units, per_unit, sd_seed=sd_seed, rng_seed=2) if init else {}
    )
    align_values = {
        a: two_level(m, seeds, n_units, per_unit, sd_seed=sd_seed, rng_seed=3 + i)
        for i, (a, m) in enumerate((aligns or {}).items())
    }
    rng = np.random.default_rng(4)
    for (case, seed), v in values.items():
        write_job(
            tmp_path,
            case,
            v,
            seed,
            groups=units(n_units, per_unit),
            mi_max_init=init_values.get((case, seed)),
            aligns={a: av[case, seed] for a, av in align_values.items()},
            loss_mi=None if loss is None else loss[case] + rng.normal(0, 0.002),
            **kw,
        )
    return tmp_path


def table(path) -> pd.DataFrame:
    s = sweep.load(path)
    return claims.claims_table(s.per_image, *s.loss_mi, s.align, alt_aligns=s.alt_aligns)


def row(t, claim) -> pd.Series:
    return t.set_index("claim").loc[claim]


FOUR = {"a": 0.5, "b": 0.4, "c": 0.9, "d": 0.6}
LOSS = {"a": 0.10, "b": 0.05, "c": 0.30, "d": 0.15}


def test_one_seed_never_establishes_a_claim_but_shows_the_estimates(tmp_path):
    t = table(make(tmp_path, FOUR, loss=LOSS))
    assert list(t.columns[: N_CLAIM_COLUMNS + 1]) == [rundir.SETTING, *rundir.CLAIM_COLUMNS]
    assert t.claim.tolist() == [
        "loss_curves",
        "example_images",
        "winner_share",
        "mean_max_mi",
        "mean_mi",
    ]
    assert (t.status == "not established").all() and (t.n_seeds == 1).all()
    assert t.sentence.str.contains("not established (one training run per case)", regex=False).all()
    assert (t.best_case == "c").all() and (t.estimate > 0).all()
    for claim in (
        "winner_share",
        "mean_max_mi",
        "mean_mi",
    ):  # the interval over image units is still shown
        r = row(t, claim)
        assert (
            r.n_units == 20
            and 0 < r.ci_low < r.ci_high
            and "over 20 image units of one training run" in r.sentence
        )
    assert np.isnan(row(t, "loss_curves").ci_low) and row(t, "loss_curves").n_units == 0
    assert row(t, "example_images").n_units == 2
    # the margins are the schema's; with one seed no seed-to-seed spread: seeds_needed unknown
    assert t.set_index("claim").margin.to_dict() == claims.DEFAULT_MARGINS
    assert t.seeds_needed.isna().all()


def test_c_clearly_best_over_five_seeds_holds(tmp_path):
    t = table(make(tmp_path, FOUR, seeds=range(5), loss=LOSS))
    assert (t.status == "holds").all(), t[["claim", "status", "ci_low", "ci_high"]]
    assert (t.n_seeds == 5).all() and t.n_units.tolist() == [0, 2, 20, 20, 20]
    assert t.sentence.str.contains(
        "holds: case c is ahead of every other case (each pair's lower limit above 0) and each "
        "estimated lead is beyond the margin",
        regex=False,
    ).all()
    assert not claims.one_seed(t)
    r = row(t, "mean_max_mi")
    assert r.estimate == pytest.approx(r.value_c - r.value_d)  # c minus the strongest other
    assert r.ci_low > 0 and r.value_c > r.value_d > r.value_a > r.value_b


def test_d_clearly_beating_c_fails(tmp_path):
    t = table(make(tmp_path, {**FOUR, "d": 1.2}, seeds=range(5), loss={**LOSS, "d": 0.6}))
    assert (t.status == "fails").all(), t[["claim", "status", "ci_low", "ci_high"]]
    assert (t.best_case == "d").all() and (t.ci_high < 0).all()
    assert t.sentence.str.contains(
        "fails: case d beats case c (its upper limit below 0, corrected for the 3 pairs, and the "
        "estimate beyond the margin",
        regex=False,
    ).all()


def test_the_loss_claim_is_a_t_interval_over_seeds_by_hand(tmp_path):
    # c - d per seed: 0.1, 0.2, 0.3 (a and b far below): mean 0.2, sd 0.1, 2 df
    for seed, diff in enumerate((0.1, 0.2, 0.3)):
        for case, mi in (("a", -1.0), ("b", -1.0), ("c", 0.5 + diff), ("d", 0.5)):
            write_job(tmp_path, case, np.full(4, 0.5), seed, loss_mi=mi)
    r = row(table(tmp_path), "loss_curves")
    # the lower limit one-sided 97.5% (holds: each pair on its own), the upper one-sided 1 - 0.025/3
    # (fails: any of three pairs): (-0.048, 0.64); c - d, the closest pair, decides the headline
    low, high = 0.2 - T2 * 0.1 / np.sqrt(3), 0.2 + T2_SIMULTANEOUS * 0.1 / np.sqrt(3)
    assert (r.estimate, r.ci_low, r.ci_high) == pytest.approx((0.2, low, high))
    assert (
        r.best_case == "c" and r.status == "not established" and r.n_seeds == 3 and r.n_units == 0
    )
    assert "is not yet told from d" in r.sentence
    assert "local_mi + global_mi" in r.statistic
    assert "case c beats a, b" in r.sentence  # by more than the margin, each


def test_winner_share_is_per_unit_and_its_interval_stays_within_plus_minus_one(tmp_path):
    # 3 photographs of 4 images; c wins 4, 3, 1 of them, d the rest: per unit c - d = 1, 0.5, -0.5
    c_wins = [1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0]
    groups = np.repeat(["p0", "p1", "p2"], 4)
    write_job(tmp_path, "c", np.where(c_wins, 0.9, 0.5), groups=groups)
    write_job(tmp_path, "d", np.full(12, 0.7), groups=groups)
    r = row(table(tmp_path), "winner_share")
    assert r.estimate == pytest.approx(1 / 3) and r.n_units == 3
    assert (r.value_c, r.value_d) == pytest.approx((2 / 3, 1 / 3))
    half = T2 * np.std([1, 0.5, -0.5], ddof=1) / np.sqrt(3)  # 1.90: clipped to [-1, 1]
    assert 1 / 3 - half < -1 and (r.ci_low, r.ci_high) == (-1.0, 1.0)


def test_statistics_that_disagree_say_so(tmp_path):
    """c is far ahead on a few images (highest mean max-MI), d ahead on most by more than the tie band (compare.tie)
    (wins more images)."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.4, 0.8, 40)
    c = base + np.where(np.arange(40) < 6, 1.0, 0.0)
    write_job(tmp_path, "c", c)
    write_job(tmp_path, "d", base + 0.05)
    write_job(tmp_path, "a", base - 0.2)
    t = table(tmp_path)
    assert row(t, "mean_max_mi").best_case == "c" and row(t, "winner_share").best_case == "d"
    said = (
        "the statistics disagree: case c has the highest mean max-MI and has the highest mean MI "
        "while case d wins the most images"
    )
    for claim in ("winner_share", "mean_max_mi", "mean_mi"):
        assert said in row(t, claim).notes
    assert said not in row(t, "loss_curves").notes


@pytest.mark.slow
def test_a_claim_that_already_holds_before_training_says_so(tmp_path):
    t = table(
        make(
            tmp_path,
            FOUR,
            seeds=range(5),
            loss=LOSS,
            init={"a": 0.5, "b": 0.4, "c": 0.8, "d": 0.55},
        )
    )
    for claim in IMAGE:
        r = row(t, claim)
        assert r.init_best_case == "c" and r.init_status == "holds" and r.init_estimate > 0
        assert "already holds before training (untrained encoders: c − " in r.notes
    one = table(
        make(tmp_path / "one", FOUR, loss=LOSS, init={"a": 0.5, "b": 0.4, "c": 0.8, "d": 0.55})
    )
    assert "case c is already best before training" in row(one, "mean_max_mi").notes
    other = table(
        make(tmp_path / "other", FOUR, loss=LOSS, init={"a": 0.9, "b": 0.4, "c": 0.5, "d": 0.55})
    )
    assert "before training case a is best" in row(other, "mean_max_mi").notes


def test_a_claim_that_reverses_under_another_alignment_says_so(tmp_path):
    t = table(
        make(tmp_path, FOUR, seeds=range(3), aligns={"resize": FOUR, "crop": {**FOUR, "a": 1.3}})
    )
    for claim in IMAGE:
        r = row(t, claim)
        assert r.crop_best_case == "a" and r.resize_best_case == "c" and r.crop_status == "fails"
        assert "reverses under align=crop (best: case a, fails)" in r.notes
        assert "same best case under align=resize" in r.notes
    assert "crop_best_case" not in t.columns[:12]  # extras come after the contract's columns


@pytest.mark.slow
def test_the_other_alignments_are_those_the_summaries_list(tmp_path):
    """summary.json's alt_aligns names the other alignments (here crop only, although the tables also
    hold resize columns); format 1 lists none: its migration reads them off the summary's own
    mi_max_<align> keys."""
    make(
        tmp_path / "new",
        FOUR,
        seeds=range(2),
        aligns={"resize": FOUR, "crop": FOUR},
        alt_aligns=["crop"],
    )
    listed = table(tmp_path / "new")
    assert "crop_status" in listed.columns and "resize_status" not in listed.columns
    assert sweep.load(tmp_path / "new").alt_aligns == {"dataset=samples": ["crop"]}
    old = tmp_path / "old"
    make(old, FOUR, seeds=range(2), aligns={"resize": FOUR, "crop": FOUR}, format=1)
    read_off = table(tmp_path / "old")
    assert {"crop_status", "resize_status"} <= set(read_off.columns)
    assert sweep.load(old).alt_aligns == {"dataset=samples": ["resize", "crop"]}


def test_runs_written_before_the_format_s_first_layout_are_refused_in_one_line(tmp_path, caplog):
    """Runs from before 2026-11-28 (no image units, nulls or MI estimates) are not guessed at: each is
    left out with one line naming the file and the way out, and with none left, compare stops in one
    line."""
    labels = ["astronaut", "chelsea", "horse", "camera"] * 3
    for case, mu in (("a", 0.5), ("c", 0.9)):
        write_job(tmp_path, case, np.full(12, mu), labels=labels, groups=labels, old_format=True)
    with pytest.raises(RunError, match="every finished job is damaged") as e:
        sweep.load(tmp_path)
    assert "written by infomax before 2026-11-28" in str(e.value) and "overwrite=true" in str(
        e.value
    )
    assert "\n" not in str(e.value)


def test_without_case_c_the_claims_cannot_be_tested(tmp_path):
    t = table(make(tmp_path, {"a": 0.5, "b": 0.4}))
    assert (t.status == "not established").all()
    assert t.sentence.str.contains(
        "cannot be tested: case c is not in the sweep", regex=False
    ).all()


@pytest.mark.slow
def test_several_settings_get_a_leading_setting_column(tmp_path):
    for steps in (5, 10):
        make(tmp_path, FOUR, extra=("dataset=samples", f"train.steps={steps}"))
    t = table(tmp_path)
    assert t.columns[0] == "setting"
    assert list(t.columns[1 : N_CLAIM_COLUMNS + 1]) == rundir.CLAIM_COLUMNS
    compare(tmp_path)  # the file keeps the column: the sweep has two settings
    assert pd.read_csv(tmp_path / rundir.CLAIMS).columns[0] == "setting"
    assert sorted(t.setting.unique()) == [
        "dataset=samples,train.steps=10",
        "dataset=samples,train.steps=5",
    ]
    assert len(t) == 10
    assert all(line.startswith("[dataset=samples,train.steps=") for line in claims.lines(t)[:-1])


@pytest.mark.slow
def test_compare_writes_claims_csv_and_the_terminal_ends_with_the_claims(
    tmp_path, capsys, no_pictures
):
    make(tmp_path, FOUR, loss=LOSS)
    found = compare(tmp_path)
    t = pd.read_csv(tmp_path / "claims.csv")
    assert list(t.columns[:N_CLAIM_COLUMNS]) == rundir.CLAIM_COLUMNS
    assert (t.status == "not established").all()
    words = " ".join(t[["statistic", "sentence"]].astype(str).to_numpy().ravel())
    assert "{" not in words and "}" not in words  # every text filled in, none left as a template
    statistic = t.set_index("claim")["statistic"]
    assert statistic["mean_mi"].startswith("mean over images of the mean MI")
    print_found(*found)
    out = capsys.readouterr().out.rstrip("\n").splitlines()
    # the end: one line per claim (name, status, estimate [interval] unit, margin, seeds needed), the
    # command that adds seeds 1-4 into this sweep's directory, then where the notes are
    assert out[-1] == (
        f"each claim's sentence and notes: {tmp_path}/claims.csv and {tmp_path}/report.html"
    )
    assert out[-2].strip().startswith("With one seed no claim is established")
    assert out[-2].endswith(f"seed=1,2,3,4 hydra.sweep.dir={tmp_path.resolve()}")
    assert out[-3] == "to settle the claims not established, add seeds into this sweep:"
    assert out[-4].startswith("pixels compared: ")  # which pixels the claims compared
    assert out[-10].startswith("the study's claims (claims.csv): status, case c minus")
    for line, r in zip(out[-9:-4], t.itertuples()):
        unit = "points" if r.claim == "winner_share" else "nats"
        scale = 100 if r.claim == "winner_share" else 1
        fmt = "{:+.1f}" if r.claim == "winner_share" else "{:+.4f}"
        numbers = [fmt.format(scale * x) for x in (r.estimate, r.ci_low, r.ci_high)]
        interval = [] if np.isnan(r.ci_low) else [f"[{numbers[1]},", f"{numbers[2]}]"]
        margin = f"±{scale * r.margin:.1f};" if r.claim == "winner_share" else f"±{r.margin:.4g};"
        expected = [
            r.claim,
            "not",
            "established",
            numbers[0],
            *interval,
            unit,
            margin,
            "seeds",
            "—",
        ]
        assert line.split() == expected, line
    text = "\n".join(out)
    assert "Note:" not in text  # notes live in claims.csv
    assert all(len(line) < 100 for line in out[-8:-3])
    comp = pd.read_csv(tmp_path / "comparison.csv")
    assert list(comp.columns[:3]) == ["image_id", "label", "group"] and comp.group.nunique() == 20
    assert (pd.read_csv(tmp_path / "winners.csv").n_units == 20).all()


def test_without_example_images_the_example_claim_is_not_available(tmp_path):
    t = table(make(tmp_path, FOUR, study_examples=()))
    r = row(t, "example_images")
    assert r.status == "not established" and pd.isna(r.best_case) and np.isnan(r.estimate)
    assert (
        r.sentence
        == "(ii) Example images: not available (the jobs name no study example images (study_examples))."
    )
    assert row(t, "mean_max_mi").best_case == "c"  # the other claims are unaffected


def test_an_untrained_tie_is_called_a_tie_not_a_lead():
    from infomax_cli.analysis.claims import MEAN_MAX_MI as claim
    from infomax_cli.analysis.claims import init_note
    from infomax_cli.analysis.verdict import Status, Verdict

    trained = Verdict(
        {"a": 0.9, "c": 0.91},
        best_case="c",
        other="a",
        estimate=0.01,
        ci_low=0.0,
        ci_high=0.02,
        n_seeds=5,
        n_units=20,
        status=Status.HOLDS,
        beaten=("a",),
    )
    init = Verdict(
        {"a": 0.8, "c": 0.8},
        best_case="c",
        other="a",
        estimate=0.0,
        ci_low=-0.001,
        ci_high=0.001,
        n_seeds=5,
        n_units=20,
        status=Status.NOT_ESTABLISHED,
        tied=("a",),
    )
    assert init_note(trained, init, claim, "c").startswith(
        "before training case c ties with case a"
    )


@pytest.mark.slow
def test_c_a_hundred_thousandth_below_the_others_in_every_seed_is_equivalent_not_a_loss(tmp_path):
    """c 1e-5 nats below the others on every image, identically in 5 seeds (the issue's sweep, where every
    claim read `fails` and c's winner share was -33 points): inside every margin, so every claim is
    equivalent, and the cases split every image (no case beats another by more than the tie band, compare.tie)."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.9, 80)
    for seed in range(5):
        for case in "abcd":
            write_job(
                tmp_path,
                case,
                base - (1e-5 if case == "c" else 0.0),
                seed,
                groups=units(20, 4),
                loss_mi=0.1 - (1e-5 if case == "c" else 0.0),
            )
    _, found = compare(tmp_path)
    t = found.claims.set_index("claim")
    assert (t.status == "equivalent").all(), t[["status", "ci_low", "ci_high"]]
    assert (t.ci_high - t.ci_low > 0).all() and (t.ci_low > -t.margin).all()  # floored, inside
    assert t.sentence.str.contains(
        "equivalent: every pair's 90% interval (two one-sided tests) lies inside the margin",
        regex=False,
    ).all()
    assert (found.winners.share == 0.25).all() and (found.comparison.winner == "a=b=c=d").all()
    pairs = pd.read_csv(tmp_path / rundir.CLAIMS_PAIRS)
    assert list(pairs.columns) == rundir.CLAIM_PAIR_COLUMNS and len(pairs) == 5 * 3
    assert (pairs.decision == "within margin").all() and np.allclose(pairs.level, 1 - 0.025 * 4 / 3)
    assert ((pairs.equiv_low > -pairs.margin) & (pairs.equiv_high < pairs.margin)).all()
    assert found.advice == []  # every claim settled
    assert (tmp_path / rundir.CLAIMS_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_the_margin_comes_from_the_sweep_or_the_command_and_says_what_could_be_detected(
    tmp_path, no_pictures_but_claims
):
    """c ahead of d by about 0.03 nats (mean max-MI): more than the default margin 0.02; with a margin
    of 0.1 the same data hold nothing (the difference no longer matters); `--margin` overrides the
    sweep's own compare.margin, which overrides the defaults."""
    rng = np.random.default_rng(1)
    base = rng.uniform(0.4, 0.8, 80)  # every case alike on an image: pairing cancels it
    for seed in range(5):
        for case, mu in {"a": 0.5, "b": 0.4, "c": 0.63, "d": 0.6}.items():
            values = base + mu + rng.normal(0, 0.002) + rng.normal(0, 0.002, 80)
            write_job(tmp_path, case, values, seed, groups=units(20, 4), loss_mi=mu)
    _, found = compare(tmp_path)
    r = found.claims.set_index("claim").loc["mean_max_mi"]
    assert r.margin == 0.02 and r.status == "holds", r.sentence
    _, wide = compare(tmp_path, {"mean_max_mi": 0.1})
    r = wide.claims.set_index("claim").loc["mean_max_mi"]
    assert r.margin == 0.1 and r.status == "not established"
    # c beats a and b by more than 0.1, and is within 0.1 of d: mixed, and no seeds would change it
    assert "every pair is decided: a mixed verdict, which more seeds would not change" in r.sentence
    assert "mean_max_mi" not in " ".join(wide.advice)
    job = next(tmp_path.glob("case=c*"))
    (job / ".hydra" / "config.yaml").write_text("compare:\n  margin:\n    mean_max_mi: 0.1\n")
    _, own = compare(tmp_path)
    assert own.claims.set_index("claim").loc["mean_max_mi", "margin"] == 0.1


@pytest.mark.slow
def test_an_open_claim_gets_the_command_that_adds_its_seeds_into_the_same_sweep(
    tmp_path, no_pictures
):
    """Two seeds that cannot tell c from d: compare prints, per number of seeds needed, the `infomax run
    -m` line with the sweep's own overrides (multirun.yaml), the new seeds and this directory."""
    make(tmp_path, {"a": 0.5, "b": 0.4, "c": 0.61, "d": 0.6}, seeds=range(2), sd_seed=0.02)
    (tmp_path / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    hydra: [hydra.sweep.dir=elsewhere, hydra.mode=MULTIRUN]\n"
        "    task: ['case=a,b,c,d', 'seed=0,1', dataset=samples]\n"
    )
    _, found = compare(tmp_path)
    open_ = found.claims[found.claims.status == "not established"]
    assert len(open_) and found.advice
    needed = int(open_.seeds_needed.dropna().max())
    new = ",".join(str(s) for s in range(2, needed))
    if needed - 2 > 8:  # a long run of seeds: Hydra's range (stop excluded), quoted for the shell
        new = f"range(2,{needed})"
    seeds = f"'seed={new}'" if "(" in new else f"seed={new}"
    expected = (
        f"infomax run -m case=a,b,c,d dataset=samples {seeds} hydra.sweep.dir={tmp_path.resolve()}"
    )
    assert any(line.endswith(expected) for line in found.advice), found.advice


@pytest.mark.slow
def test_every_claim_has_a_margin_key_and_compare_takes_one_per_claim(
    tmp_path, capsys, no_pictures
):
    """compare.margin declares one margin per claim of the registry; `infomax compare --margin` takes
    CLAIM=VALUE and stops with one line (exit 2) on an unknown claim or a value that is not > 0."""
    from infomax_cli import cli

    assert list(claims.DEFAULT_MARGINS) == [c.id for c in claims.CLAIMS]
    for bad in ("nope=1", "mean_mi=0", "mean_mi=x", "mean_mi"):
        assert cli.main(["compare", str(tmp_path), "--margin", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert (
            len(err.splitlines()) == 1 and "give CLAIM=VALUE with CLAIM one of loss_curves" in err
        )
    assert cli.main(["compare", str(tmp_path), "--margins", "x"]) == 2
    assert "(--margins is not an option)" in capsys.readouterr().err
    make(tmp_path, FOUR)
    assert (
        cli.main(["compare", str(tmp_path), "--margin=mean_mi=0.5", "--margin", "loss_curves=1"])
        == 0
    )
    margins = pd.read_csv(tmp_path / rundir.CLAIMS).set_index("claim").margin
    assert (margins["mean_mi"], margins["loss_curves"], margins["mean_max_mi"]) == (0.5, 1.0, 0.02)
