"""The visual report: built from a run's or sweep's files alone (synthetic files in the contract's format)."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import infomax

from infomax_cli import rundir, store
from infomax_cli.analysis.compare import build_report, compare
from infomax_cli.errors import ConfigError
from infomax_cli.render import density, figures

CASES = "abcd"
EXAMPLES = {0: "chelsea", 1: "horse"}
N_IMAGES, N_MAPS, SIZE = 8, 32, 24


def make_run(path: Path, case: str, seed: int = 0, examples: bool = True) -> Path:
    """A finished run directory in the contract's format (2), with random but consistent numbers."""
    rng = np.random.default_rng(ord(case) * 100 + seed)
    labels = [EXAMPLES.get(i, "astronaut") for i in range(N_IMAGES)]
    mi = rng.gamma(2.0, 0.1 + 0.05 * "abcd".find(case), size=(N_IMAGES, N_MAPS))
    mi_init = mi * rng.uniform(0.5, 1.0, size=mi.shape)
    steps = np.arange(1, 6)
    terms = {t: 1.4 - 0.02 * steps * rng.uniform(0.5, 1.5) for t in ("local", "global", "prior")}
    mi_terms = {f"{t}_mi": 1.386 - terms[t] for t in ("local", "global")}
    loss = pd.DataFrame({"step": steps, "loss": sum(terms.values()), **terms, "prior_disc": 1.38})
    rundir.write_csv(path / rundir.LOSS_CSV, loss.assign(**mi_terms))
    rundir.write_csv(
        path / rundir.MI_PER_MAP,
        pd.DataFrame(
            {
                "image_id": np.repeat(np.arange(N_IMAGES), N_MAPS),
                "label": np.repeat(labels, N_MAPS),
                "map": np.tile(np.arange(N_MAPS), N_IMAGES),
                "mi": mi.ravel(),
                "mi_null": 0.01,
                "mi_null_sd": 0.005,
                "mi_shuffled": 0.02,
                "mi_init": mi_init.ravel(),
            }
        ),
    )
    rundir.write_csv(
        path / rundir.MI_PER_IMAGE,
        pd.DataFrame(
            {
                "image_id": np.arange(N_IMAGES),
                "label": labels,
                "group": labels,
                "mi_mean": mi.mean(1),
                "mi_max": mi.max(1),
                "best_map": mi.argmax(1),
                "mi_null_mean": np.full(N_IMAGES, 0.01),
                "mi_null_max": np.full(N_IMAGES, 0.01),
                "mi_shuffled_mean": np.full(N_IMAGES, 0.02),
                "mi_mean_above_null": mi.mean(1) - 0.01,
                "mi_max_above_null": mi.max(1) - 0.01,
                "mi_mean_init": mi_init.mean(1),
                "mi_max_init": mi_init.max(1),
            }
        ),
    )
    if examples:
        yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
        rundir.save_example_maps(
            path,
            {
                f"{i:05d}_{name}": (
                    np.sin(6 * xx * (i + 1)) * yy,
                    rng.normal(size=(N_MAPS, SIZE, SIZE)),
                    mi[i],
                )
                for i, name in EXAMPLES.items()
            },
        )
    (path / ".hydra").mkdir(parents=True, exist_ok=True)
    (path / ".hydra" / "config.yaml").write_text(f"case:\n  name: {case}\nseed: {seed}\n")
    (path / ".hydra" / "overrides.yaml").write_text(f"- case={case}\n- seed={seed}\n")
    rundir.write_json(
        path / rundir.SUMMARY,
        {
            "format": 2,
            "case": case,
            "dataset": "samples",
            "split": "train",
            "n_images": N_IMAGES,
            "bins": 20,
            "align": "resize",
            "alt_aligns": [],
            "study_examples": [0, 1],
            "geometry": [],
            "estimator": "histogram",
            "objective": "jsd",
            "seed": seed,
            "steps": 5,
            "batch_size": 4,
            "lr": 1e-4,
            "layer_sizes": [96, 94, 92, 90, 88],
            "mi_mean": float(mi.mean()),
            "mi_max": float(mi.max(1).mean()),
            "mi_null_mean": 0.01,
            "mi_mean_init": float(mi_init.mean()),
            "mi_max_init": float(mi_init.max(1).mean()),
            "final_loss": 4.0,
            "train_seconds": 12.345,
            "measure_seconds": 6.789,
            "device": "cpu",
            "versions": {"infomax": "0.1.0", "torch": "2.14.1"},
            "git_commit": "abc123",
        },
    )
    return path


def make_sweep(path: Path, examples: bool = True) -> Path:
    path.mkdir(parents=True)
    (path / "multirun.yaml").write_text("{}\n")
    for case in CASES:
        make_run(path / f"case={case}", case, examples=examples)
    return path


@pytest.fixture(scope="session")
def sweep(tmp_path_factory) -> Path:
    """A synthetic four-case sweep and its report, built once per session (the browser tests share it)."""
    path = tmp_path_factory.getbasetemp() / "report-sweep"
    if not (path / rundir.REPORT).is_file():
        build_report(make_sweep(path))
    return path


def save_png(path: Path, fig) -> Path:
    return rundir.write_bytes(path, figures.png(fig))


def sources(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', page)


@pytest.mark.slow
def test_sweep_report_names_every_case_and_embeds_every_picture(sweep):
    page = (sweep / rundir.REPORT).read_text()
    for case in CASES:
        assert f"case {case}" in page
    for word in (
        "chelsea",
        "horse",
        "Which case wins",
        "train (s)",
        "measure (s)",
        "12.35",
        "6.789",
        "resize",
        "nats",
    ):
        assert word in page
    srcs = sources(page)
    assert len(srcs) >= 6  # loss, MI bars, violins, winners, two example grids
    for src in srcs:
        if src.startswith("data:"):
            assert src.startswith("data:image/png;base64,")
            assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert (sweep / src).is_file(), src
    assert "http://" not in page and "https://" not in page  # nothing from the network


def test_rebuild_is_byte_identical_even_in_another_process(sweep):
    first = (sweep / rundir.REPORT).read_bytes()
    assert build_report(sweep) == sweep / rundir.REPORT
    assert (sweep / rundir.REPORT).read_bytes() == first
    done = infomax("report", str(sweep), env={"PYTHONHASHSEED": "12345"}, interpreter="new")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sweep / rundir.REPORT)
    assert (sweep / rundir.REPORT).read_bytes() == first


@pytest.mark.slow
def test_the_winner_table_is_winners_csv(tmp_path, no_pictures):
    """One winner table: the page shows the shares and intervals compare writes to winners.csv."""
    path = make_sweep(tmp_path / "sweep", examples=False)  # no example grids: quicker
    compare(path)
    page = (path / rundir.REPORT).read_text()
    wins = re.findall(
        r"<tr><td>case ([abcd])</td><td>([\d.]+)</td><td>([\d.]+)%</td><td>([\d.]+)% – ([\d.]+)%</td></tr>",
        page,
    )  # a win split between cases within the MI margin counts 1/k each
    assert len(wins) == 4 and sum(float(w[1]) for w in wins) == pytest.approx(N_IMAGES)
    table = pd.read_csv(path / rundir.WINNERS_CSV, dtype={"case": str}).set_index("case")
    for case, n, share, low, high in wins:
        row = table.loc[case]
        assert float(n) == pytest.approx(row["wins"], rel=1e-3)
        assert float(share) == round(100 * row["share"], 1)
        assert float(low) == round(100 * row["ci_low"], 1) and float(high) == round(
            100 * row["ci_high"], 1
        )
        assert float(high) > 0  # a case without wins still has its interval


@pytest.mark.slow
def test_run_report_shows_its_one_case(tmp_path):
    run = make_run(tmp_path / "run", "c")
    page = build_report(run).read_text()
    assert "case c" in page and "case a" not in page and "Which case wins" not in page
    assert "chelsea" in page and "horse" in page
    assert all(s.startswith("data:image/png;base64,") for s in sources(page))


@pytest.mark.slow
def test_contract_columns_only_several_seeds_mixed_sizes_and_an_unfinished_job(tmp_path):
    """The report needs only the contract's columns; jobs of one case over seeds pool; maps of different sizes tile."""
    path = tmp_path / "sweep"
    for case, seed in [("a", 0), ("a", 1), ("c", 0), ("c", 1)]:
        run = make_run(path / f"case={case},seed={seed}", case, seed, examples=False)
        for name, keep in (
            (rundir.MI_PER_MAP, rundir.MI_PER_MAP_COLUMNS),
            (rundir.MI_PER_IMAGE, ["image_id", "label", "group", "mi_mean", "mi_max", "best_map"]),
        ):
            rundir.write_csv(run / name, pd.read_csv(run / name)[keep])
        size = 20 if case == "a" else SIZE  # as with align=crop: case a's maps are smaller
        rng = np.random.default_rng(seed)
        rundir.save_example_maps(
            run,
            {
                "00000_chelsea": (
                    rng.random((size, size)),
                    rng.random((N_MAPS, size, size)),
                    rng.random(N_MAPS),
                )
            },
        )
    (path / "case=d,seed=0" / ".hydra").mkdir(parents=True)  # started, never finished
    page = build_report(path).read_text()
    assert "case a" in page and "case c" in page and "case=d,seed=0 (no summary.json)" in page
    assert re.search(r"<tr><td>case a</td><td>2</td><td>3</td>", page)  # 2 seeds, 3 photographs
    assert page.count("<img ") == 6  # claims, loss, MI bars, violins, winners, the example grid


@pytest.mark.slow
def test_a_run_without_examples_npz_embeds_its_feature_pictures(tmp_path):
    run = make_run(tmp_path / "run", "b", examples=False)
    fig = figures.features_figure(
        np.eye(SIZE),
        np.random.default_rng(0).normal(size=(4, SIZE, SIZE)),
        np.arange(4.0),
        "t",
        "a",
    )
    save_png(run / rundir.FEATURES / "00001_horse.png", fig)
    page = build_report(run).read_text()
    assert "example image 1: horse" in page
    assert (
        base64.b64encode((run / rundir.FEATURES / "00001_horse.png").read_bytes()).decode() in page
    )


def test_save_example_maps_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    image, maps, mi = (
        rng.random((SIZE, SIZE)),
        rng.normal(size=(N_MAPS, SIZE, SIZE)),
        rng.random(N_MAPS),
    )
    path = rundir.save_example_maps(tmp_path, {"00003_cat": (image, maps, mi)})
    assert path == tmp_path / "features" / "examples.npz"
    assert [p.name for p in path.parent.iterdir()] == ["examples.npz"]  # no temporary left behind
    job = store.Job(tmp_path, [], None, root=tmp_path)
    ((name, (i2, m2, mi2)),) = job.examples.items()
    assert name == "00003_cat" and m2.shape == maps.shape
    np.testing.assert_allclose(i2, image, atol=1e-3)
    np.testing.assert_allclose(m2, maps, atol=1e-2)
    np.testing.assert_array_equal(mi2, mi)
    assert store.Job(tmp_path / "nothing", [], None, root=tmp_path).examples == {}


def test_a_folder_that_is_not_a_run_or_sweep_is_a_config_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "data").mkdir()
    with pytest.raises(ConfigError, match="not a run or sweep directory"):
        build_report(tmp_path)
    with pytest.raises(ConfigError, match="not a directory"):
        build_report(tmp_path / "missing")
    unfinished = tmp_path / "unfinished"
    (unfinished / ".hydra").mkdir(parents=True)
    with pytest.raises(ConfigError, match="not finished"):
        build_report(unfinished)
    assert not (tmp_path / rundir.REPORT).exists()


def test_cli_report_on_a_non_run_folder_exits_2_with_one_line(tmp_path):
    done = infomax("report", str(tmp_path))
    assert done.returncode == 2
    assert (
        len(done.stderr.strip().splitlines()) == 1 and "not a run or sweep directory" in done.stderr
    )
    assert done.stdout == ""


def test_violin_keeps_the_exact_median_and_extremes_and_a_close_density():
    from matplotlib import cbook, mlab

    v = np.random.default_rng(2).gamma(2.0, 0.1, size=160_000)  # 5000 images x 32 maps
    fast = density.violin_stats(v)
    assert fast["median"] == np.median(v) and fast["min"] == v.min() and fast["max"] == v.max()
    full = cbook.violin_stats(v, lambda x, coords: mlab.GaussianKDE(x, "scott").evaluate(coords))[0]
    # the subsample's density (with the full data's bandwidth) stays within 3% of the peak of the full one
    assert np.abs(fast["vals"] - full["vals"]).max() < 0.03 * full["vals"].max()


@pytest.mark.parametrize("n", [2, 7, 99, 100, 101, 10_240])
def test_the_violins_density_is_matplotlibs_to_the_last_bit(n):
    """kde_evaluate is GaussianKDE.evaluate without its BLAS call per point: the same numbers, bit for
    bit, with fewer values than points and with more (both of matplotlib's loops), so the pictures
    are the same."""
    from matplotlib import mlab

    v = np.random.default_rng(n).gamma(2.0, 0.1, size=n) + np.arange(n) * 1e-3
    coords = np.linspace(v.min() - 0.05, v.max() + 0.05, 100)
    kde = mlab.GaussianKDE(v, n**-0.2)
    assert np.array_equal(density.kde_evaluate(kde, coords), kde.evaluate(coords))


def test_feature_pictures_are_saved_as_laid_out(tmp_path):
    """No tight-box cropping (a second drawing pass): the PNG is exactly the figure's size, title inside."""
    from PIL import Image

    fig = figures.features_figure(
        np.eye(SIZE),
        np.random.default_rng(0).normal(size=(32, SIZE, SIZE)),
        np.arange(32.0),
        "a title",
        "c",
    )
    w, h = (int(x * fig.dpi) for x in fig.get_size_inches())  # matplotlib truncates
    save_png(tmp_path / "f.png", fig)
    assert Image.open(tmp_path / "f.png").size == (w, h)


@pytest.mark.slow
def test_a_runs_report_reuses_its_own_pictures(tmp_path):
    run = make_run(tmp_path / "run", "c")
    save_png(
        run / rundir.LOSS_PNG,
        figures.loss_figure(pd.read_csv(run / rundir.LOSS_CSV), "loss", "red"),
    )
    name, (image, maps, mi) = next(iter(store.Job(run, [], None, root=run).examples.items()))
    save_png(
        run / rundir.FEATURES / f"{name}.png", figures.features_figure(image, maps, mi, "t", "c")
    )
    page = build_report(run).read_text()
    for png in (run / rundir.LOSS_PNG, run / rundir.FEATURES / f"{name}.png"):
        assert base64.b64encode(png.read_bytes()).decode() in page


@pytest.mark.slow
def test_a_sweeps_report_shows_each_cases_own_feature_pictures(tmp_path, monkeypatch):
    """Where every case's job drew its features/ picture, the sweep's page embeds those files, one under
    another, and draws no example figure again (the drawing was most of a large sweep's report time)."""
    path = make_sweep(tmp_path / "sweep")
    for case in CASES:
        run = path / f"case={case}"
        for name, (image, maps, mi) in store.Job(run, [], None, root=run).examples.items():
            save_png(
                run / rundir.FEATURES / f"{name}.png",
                figures.features_figure(image, maps, mi, f"case {case}", case),
            )
    monkeypatch.setattr(
        figures,
        "example_grid_figure",
        lambda *a, **k: pytest.fail("an example figure was drawn again"),
    )
    page = build_report(path).read_text()
    for name in ("00000_chelsea", "00001_horse"):
        shown = [
            page.find(
                base64.b64encode(
                    (path / f"case={c}" / rundir.FEATURES / f"{name}.png").read_bytes()
                ).decode()
            )
            for c in CASES
        ]
        assert all(i > 0 for i in shown) and shown == sorted(shown)  # every case, in order


@pytest.mark.slow
def test_a_sweeps_page_leads_with_the_claims(tmp_path, no_pictures):
    """Right after the title: the claims table and one sentence per claim; with one seed, none is
    established and the page says what establishes them. claims.csv is used when the sweep has one."""
    path = make_sweep(tmp_path / "sweep", examples=False)
    page = build_report(path).read_text()
    h1, claims_at, settings_at = (
        page.index("<h1>"),
        page.index("<h2>Does the study hold?</h2>"),
        page.index("Settings and timings"),
    )
    assert h1 < claims_at < settings_at and "<h2>" not in page[h1:claims_at]
    for claim in ("loss_curves", "example_images", "winner_share", "mean_max_mi", "mean_mi"):
        assert f"<td>{claim}</td>" in page
    assert page.count("; not established (one training run per case).") == 5
    assert "With one seed no claim is established" in page and "holds at 95%" not in page
    assert html.escape(f"seed=1,2,3,4 hydra.sweep.dir={path.resolve()}") in page
    assert "the claims: each pair&#x27;s interval against the margin" in page  # claims.png, on top
    assert "the mean MI over the maps of chelsea and horse" in page  # the study's example images
    compare(path)  # claims.csv: the page's sentences are its sentences
    table = pd.read_csv(path / rundir.CLAIMS)
    assert all(html.escape(sentence) in page for sentence in table["sentence"])


@pytest.mark.slow
def test_the_mi_table_shows_the_statistics_own_intervals(tmp_path, no_pictures):
    """One interval per quantity: the page's MI table is stats.csv's, for a sweep (seeds and units)
    and for a run (its image units), and no other interval appears."""
    path = make_sweep(tmp_path / "sweep", examples=False)
    for seed in (1, 2):
        for case in CASES:
            make_run(path / f"case={case},seed={seed}", case, seed, examples=False)
    compare(path)
    page = (path / rundir.REPORT).read_text()
    table = pd.read_csv(path / rundir.STATS, dtype={"case": str})
    for r in table.itertuples():
        if r.metric in ("mi_mean", "mi_max", "mi_mean_init", "mi_max_init"):
            assert f"<td>{r.mean:.4f} [{r.ci_low:.4f}, {r.ci_high:.4f}]</td>" in page
    assert "± " not in page
    assert re.search(r"<tr><td>case a</td><td>3</td><td>3</td>", page)  # seeds, image units
    run = make_run(tmp_path / "run", "c", examples=False)
    page = build_report(run).read_text()
    assert "± " not in page and "95% interval over image units (one training run)" in page


def elements(page: str):
    """(tag counts, attribute names, img sources, text) of an HTML page, as a browser would parse it."""
    from collections import Counter
    from html.parser import HTMLParser

    class Parser(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.tags, self.attrs, self.srcs, self.text = Counter(), set(), [], []

        def handle_starttag(self, tag, attrs):
            self.tags[tag] += 1
            self.attrs |= {name for name, _ in attrs}
            self.srcs += [v for name, v in attrs if tag == "img" and name == "src"]

        def handle_data(self, data):
            self.text.append(data)

    p = Parser()
    p.feed(page)
    return p.tags, p.attrs, p.srcs, "".join(p.text)


MARKUP = {
    "case": "<img src=x onerror=alert(1)>",
    "label": "<script>alert(2)</script>",
    "folder": "<svg onload=alert(3)>",
    "picture": "<iframe srcdoc=x>",
}


def markup_sweep(path: Path, names: dict) -> Path:
    """A two-case sweep in a folder named names['folder'], one case named names['case'], images
    labelled names['label'], an example picture named after names['picture']."""
    from fake_sweep import write_job

    sweep = path / names["folder"]
    labels = [names["label"], "horse", names["label"], "cat"]
    for case in (names["case"], "c"):
        job = write_job(sweep, case, [0.5, 0.6, 0.7, 0.8], labels=labels, groups=labels)
        fig = figures.features_figure(np.eye(8), np.ones((2, 8, 8)), np.arange(2.0), "t", "c")
        save_png(job / rundir.FEATURES / f"00000_{names['picture']}.png", fig)
    return sweep


@pytest.mark.slow
def test_names_from_the_run_cannot_put_markup_in_the_report(tmp_path):
    """Case names, labels and folder names are the user's (or an attacker's): every one reaches the page
    as text. The page of a sweep (and of one of its runs) whose names hold markup has exactly the
    elements of the same page with plain names, no event attribute, and only embedded PNGs."""
    plain = {k: f"plain{i}" for i, k in enumerate(MARKUP)}
    for kind in ("sweep", "run"):
        pages = {}
        for which, names in (("markup", MARKUP), ("plain", plain)):
            sweep = markup_sweep(tmp_path / which / kind, names)
            run = next(p for p in sweep.iterdir() if p.name.startswith(f"case={names['case']},"))
            target = sweep if kind == "sweep" else run
            pages[which] = elements(build_report(target).read_text())
        (tags, attrs, srcs, text), (plain_tags, plain_attrs, _, _) = pages["markup"], pages["plain"]
        assert tags == plain_tags, kind  # no element the run did not put there
        assert attrs == plain_attrs and not any(a.startswith("on") for a in attrs), attrs
        assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
        assert f"case {MARKUP['case']}" in text  # shown, as text
        assert MARKUP["picture"] in text and (kind == "run" or MARKUP["folder"] in text)
