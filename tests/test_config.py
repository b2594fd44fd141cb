"""The schema: defaults reproduce the study, wrong keys and types fail when the config is composed."""

import dataclasses
import typing

import pytest
from conftest import ROOT, check_config, compose_cfg
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigAttributeError, ValidationError

from infomax_cli import config
from infomax_cli.errors import ConfigError


def test_defaults_reproduce_the_study():
    cfg = compose_cfg()
    assert cfg.dataset.name == "stl10" and cfg.dataset.split == config.Split.train
    assert (cfg.train.steps, cfg.train.batch_size, cfg.train.lr) == (50, 64, 1e-4)
    assert cfg.measure.bins == 20 and cfg.measure.align == config.Align.geometry
    assert (
        cfg.measure.estimator == config.Estimator.histogram
        and cfg.objective == config.Objective.jsd
    )
    assert (cfg.train.alpha, cfg.train.beta, cfg.train.gamma) == (0.5, 1.0, 0.1)
    assert cfg.encoder.maps == 32


@pytest.mark.parametrize(
    "case,layers,padding",
    [
        ("a", ["conv"] * 4, 0),
        ("b", ["deconv"] * 4, 0),
        ("c", ["conv"] * 4, 1),
        ("d", ["deconv", "deconv", "conv", "conv"], 0),
    ],
)
def test_case_group(case, layers, padding):
    cfg = compose_cfg([f"case={case}"])
    assert (cfg.case.name, list(cfg.case.layers), cfg.case.padding) == (case, layers, padding)


@pytest.mark.parametrize("kind", ["auto", "cpu", "cuda"])
def test_device_group(kind):
    assert compose_cfg([f"device={kind}"]).device.kind.value == kind


@pytest.mark.parametrize(
    "override",
    [
        "train.steps=abc",
        "measure.align=diagonal",
        "measure.estimator=magic",
        "objective=mine",
        "dataset.split=validation",
        "overwrite=maybe",
    ],
)
def test_wrong_values_fail_at_composition(override):
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose_cfg([override])


def test_unknown_key_fails():
    with pytest.raises((ConfigCompositionException, ConfigAttributeError)):
        compose_cfg(["train.stepz=3"])


@pytest.mark.parametrize(
    "override,key",
    [
        ("train.batch_size=1", "train.batch_size"),
        ("measure.bins=1", "measure.bins"),
        ("train.lr=0", "train.lr"),
        ("train.lr=-1e-3", "train.lr"),
        ("train.steps=0", "train.steps"),
        ("dataset.n_images=0", "dataset.n_images"),
        ("encoder.widths=[8,16]", "encoder.widths"),
        ("train.compile_mode=fast", "train.compile_mode"),
        ("compare.margin.mean_mi=0", "compare.margin.mean_mi"),
        ("compare.margin.winner_share=-0.05", "compare.margin.winner_share"),
        ("+train.stepz=3", "train.stepz"),
        ("+measure.bins_=5", "measure.bins_"),
        ("+sead=1", "sead"),
        # settings that cannot work: refused at start, not NaN tables or a silently other setting
        ("train.lr=inf", "train.lr=inf is not allowed: use a finite number > 0"),
        ("train.lr=nan", "train.lr=nan is not allowed"),
        ("train.prior_lr=inf", "train.prior_lr"),
        ("train.gamma=-inf", "train.gamma=-inf is not allowed: use a finite number"),
        ("measure.examples=-1", "measure.examples=-1 is not allowed: use an integer >= 0"),
        ("train.negatives=64", "train.negatives=64 is not allowed: use an integer >= 1 and below"),
        ("train.negatives=0", "train.negatives=0"),
        ("measure.bins=10000000", "measure.bins=10000000 is more bins than an image's pixels can"),
        ("measure.bins=257", "use measure.bins=256 or fewer"),
        ("encoder.widths=[8,0,16]", "encoder.widths"),
        ("case.padding=-1", "case.padding"),
        ("train.hidden=0", "train.hidden"),
    ],
)
@pytest.mark.slow
def test_range_checks_name_the_key(override, key):
    """Also keys added with '+' that the schema does not declare: Hydra accepts them, check() does not."""
    cfg = compose_cfg(["dataset=samples", override])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("+", r"\+")):
        check_config(cfg)


@pytest.mark.parametrize("case", ["c", "strided"])
def test_too_many_bins_are_refused_for_every_kind_of_case(case):
    """The study's stacks and a module named by _target_ (which skip the stacks' own checks) alike."""
    cfg = compose_cfg(["dataset=samples", f"case={case}", "measure.bins=10000000"])
    with pytest.raises(ConfigError, match="is more bins than an image's pixels can fill"):
        check_config(cfg)


def test_the_largest_useful_bin_count_is_allowed():
    check_config(compose_cfg(["dataset=samples", "measure.bins=256", "train.negatives=63"]))


@pytest.mark.slow
def test_the_schema_declares_every_key_of_every_preset():
    for group, names in {
        "case": "abcd",
        "dataset": ["samples", "stl10"],
        "device": ["auto", "cpu", "cuda"],
    }.items():
        for name in names:
            assert config.unknown_keys(compose_cfg([f"{group}={name}"])) == []


def _leaf_keys(schema, prefix=""):
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        if f.name == "defaults":  # Hydra's defaults list, not a setting
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _leaf_keys(hints[f.name], f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}"


def test_the_readme_documents_every_key_of_the_schema():
    readme = (ROOT / "README.md").read_text()
    keys = list(_leaf_keys(config.Config))
    assert "train.compile_mode" in keys and "measure.bins" in keys and "case.layers" in keys
    assert [k for k in keys if f"`{k}`" not in readme] == []


# ----------------------------------------------------------------------------- config: size and keys


@pytest.mark.parametrize("case", "abcd")
@pytest.mark.slow
def test_every_case_works_down_to_16_pixels_and_says_so_below(case):
    cfg = compose_cfg([f"case={case}", "dataset=folder", "dataset.root=x", "dataset.size=16"])
    check_config(cfg)
    cfg = compose_cfg([f"case={case}", "dataset=folder", "dataset.root=x", "dataset.size=15"])
    with pytest.raises(
        ConfigError,
        match=rf"dataset\.size=15 is too small for case {case} .*use dataset\.size=16 or more",
    ):
        check_config(cfg)


def test_a_deeper_case_needs_a_larger_size():
    cfg = compose_cfg(
        [
            "case=a",
            "case.layers=[conv,conv,conv,conv,conv,conv]",
            "encoder.widths=[8,8,8,8,8]",
            "dataset=folder",
            "dataset.root=x",
            "dataset.size=16",
        ]
    )
    with pytest.raises(
        ConfigError, match=r"16 -> 14 -> 12 -> 10 -> 8 -> 6 -> 4\).*use dataset\.size=20 or more"
    ):
        check_config(cfg)


@pytest.mark.parametrize(
    "overrides,match",
    [
        (
            ["dataset=samples", "dataset.size=64"],
            r"dataset\.size=64 applies to dataset=folder and dataset=torchvision",
        ),
        (["dataset=stl10", "dataset.size=32"], "stl10 images are 96x96"),
        (
            ["dataset=torchvision"],
            "dataset=torchvision needs the dataset's class name: add dataset.name=CIFAR10",
        ),
        (["dataset=folder", "dataset.root=x", "dataset.split=test"], "a folder has no splits"),
        (["dataset=folder", "dataset.root=x", "dataset.size=0"], r"dataset\.size=0 is not allowed"),
    ],
)
@pytest.mark.slow
def test_dataset_config_errors_name_the_key(overrides, match):
    with pytest.raises(ConfigError, match=match):
        check_config(compose_cfg(overrides))


def test_new_presets_compose_with_declared_keys_only():
    for overrides in (
        ["dataset=folder", "dataset.root=x"],
        ["dataset=torchvision", "dataset.name=MNIST", "+dataset.options.foo=1"],
    ):
        assert config.unknown_keys(compose_cfg(overrides)) == []
    cfg = compose_cfg(["dataset=torchvision", "dataset.name=MNIST"])
    assert (cfg.dataset.kind, cfg.dataset.size, cfg.dataset.download, cfg.dataset.split) == (
        "torchvision",
        96,
        False,
        config.Split.train,
    )
    cfg = compose_cfg(["dataset=samples"])
    assert (cfg.dataset.kind, cfg.dataset.name, cfg.dataset.size) == ("samples", "samples", 96)


def test_an_unknown_dataset_kind_fails_when_composed_naming_the_kinds():
    with pytest.raises(ConfigCompositionException) as e:
        compose_cfg(["dataset=samples", "dataset.kind=mnist"])
    assert "mnist" in str(e.value.__cause__) and "samples, stl10, folder, torchvision" in str(
        e.value.__cause__
    )
