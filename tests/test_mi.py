"""The MI engine against an independent numpy reference and against distributions with known MI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from infomax_cli import mi as M
from infomax_cli.mi import common as mi_common
from infomax_cli.mi import histogram as mi_histogram
from infomax_cli.mi import ksg as mi_ksg
from infomax_cli.mi import ranks as mi_ranks
from infomax_cli.mi import shuffle as mi_shuffle

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device: the GPU path is checked on a lent GPU machine",
)


def brett_mi(x: np.ndarray, y: np.ndarray, bins: int) -> float:
    """Matthew Brett's tutorial: plug-in MI (nats) of numpy.histogram2d."""
    hgram, _, _ = np.histogram2d(x.ravel(), y.ravel(), bins=bins)
    pxy = hgram / float(np.sum(hgram))
    px = np.sum(pxy, axis=1)
    py = np.sum(pxy, axis=0)
    px_py = px[:, None] * py[None, :]
    nzs = pxy > 0
    return float(np.sum(pxy[nzs] * np.log(pxy[nzs] / px_py[nzs])))


def reference(images: np.ndarray, maps: np.ndarray, bins: int) -> np.ndarray:
    return np.array(
        [
            [brett_mi(images[n], maps[n, c], bins) for c in range(maps.shape[1])]
            for n in range(len(maps))
        ]
    )


def binned_entropy(x: np.ndarray, bins: int) -> float:
    p = np.histogram(x.ravel(), bins)[0] / x.size
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def gaussian(
    rho: float, n: int = 4, side: int = 96, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    g = np.random.default_rng(seed)
    x = g.standard_normal((n, side, side))
    y = rho * x + math.sqrt(1 - rho**2) * g.standard_normal((n, side, side))
    return torch.from_numpy(x), torch.from_numpy(y)[:, None]


def structured(seed: int = 0, side: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Images (3, H, W) float32 and maps (3, 6, H, W): independent, correlated, a copy, constant,
    few distinct values (many exactly on bin edges), and a ReLU map (a spike at zero)."""
    g = np.random.default_rng(seed)
    img = g.random((3, side, side)).astype(np.float32)
    noise = g.random((3, side, side)).astype(np.float32)
    maps = np.stack(
        [
            noise,
            img + 0.3 * noise,
            img,
            np.full_like(img, 2.5),
            np.round(img * 4) / 4,
            np.maximum(img - 0.5 + 0.2 * noise, 0),
        ],
        1,
    )
    return img, maps.astype(np.float32)


@pytest.fixture(params=["numba", "torch"])
def backend(request, monkeypatch):
    """Run a test through the numba kernels, then through the pure-torch fallback."""
    if request.param == "torch":
        monkeypatch.setattr(M, "HAVE_NUMBA", False)
    elif not M.HAVE_NUMBA:
        pytest.skip("numba is not installed")
    return request.param


# ------------------------------------------------------------------------------ against numpy


@pytest.mark.parametrize("bins", [2, 7, 20, 64])
def test_agrees_with_numpy_histogram2d_on_random_and_structured_data(backend, bins):
    img, maps = structured()
    got = M.histogram_mi(torch.from_numpy(img), torch.from_numpy(maps), bins).numpy()
    assert got.shape == (3, 6) and got.dtype == np.float32
    # same bins as numpy: float32 rounding only
    assert np.abs(got - reference(img, maps, bins)).max() < 1e-5
    g = np.random.default_rng(bins)
    img, maps = g.standard_normal((2, 16, 20)), g.standard_normal((2, 3, 16, 20))
    got = M.histogram_mi(torch.from_numpy(img), torch.from_numpy(maps), bins).numpy()
    assert np.abs(got - reference(img, maps, bins)).max() < 1e-5


@pytest.mark.parametrize("bins", [2, 7, 20, 64])
def test_agrees_with_numpy_on_uint8_images_and_mixed_dtypes(backend, bins):
    img, maps = structured(seed=1)
    u8 = (img * 255).astype(np.uint8)
    for im, mp in (
        (u8, maps),
        (u8, maps.astype(np.float64)),
        (img, maps.astype(np.float64)),
        (u8, (maps * 40).astype(np.uint8)),
    ):
        got = M.histogram_mi(torch.from_numpy(im), torch.from_numpy(mp), bins).numpy()
        assert np.abs(got - reference(im, mp, bins)).max() < 1e-5, (im.dtype, mp.dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64, torch.bool])
def test_every_estimator_takes_other_dtypes_in_inference_mode(backend, dtype):
    x, y = gaussian(0.7, n=2, side=16)
    y = torch.cat([y, y * 3], 1)
    with torch.inference_mode():
        yd = y > 0 if dtype == torch.bool else (y * 40).to(dtype)
        for opts in (
            {},
            {"binning": "quantile"},
            {"estimator": "gcmi"},
            {"estimator": "ksg", "ksg_samples": 100},
        ):
            got = M.estimate_mi(x.float(), yd, **opts)
            assert got.shape == (2, 2) and torch.isfinite(got).all() and (got > 0.05).all(), opts
        assert M.shuffle_pixels(yd, 0).dtype == dtype


def test_values_exactly_on_bin_edges_and_large_offsets_bin_as_numpy(backend):
    g = np.random.default_rng(2)
    # 0.0, 0.1, ... on the edges of 10 bins
    img = (g.integers(0, 11, (2, 30, 30)) / 10).astype(np.float32)
    maps = np.stack(
        [g.integers(0, 21, (2, 30, 30)) * 0.05, 1000 + g.random((2, 30, 30)) * 1e-3], 1
    ).astype(np.float32)
    for bins in (5, 10, 20):
        got = M.histogram_mi(torch.from_numpy(img), torch.from_numpy(maps), bins).numpy()
        assert np.abs(got - reference(img, maps, bins)).max() < 1e-5


def test_numba_and_torch_paths_agree(monkeypatch):
    img, maps = structured(seed=3)
    args = torch.from_numpy(img), torch.from_numpy(maps)
    a = [M.estimate_mi(*args, binning=b, miller_madow=True) for b in M.Binning] + [
        M.estimate_mi(*args, estimator="gcmi")
    ]
    ksg = M.estimate_mi(*args, estimator="ksg", ksg_samples=200)
    monkeypatch.setattr(M, "HAVE_NUMBA", False)
    b = [M.estimate_mi(*args, binning=b, miller_madow=True) for b in M.Binning] + [
        M.estimate_mi(*args, estimator="gcmi")
    ]
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        ksg, M.estimate_mi(*args, estimator="ksg", ksg_samples=200), rtol=0, atol=1e-6
    )


def test_chunking_does_not_change_results(monkeypatch, backend):
    img, maps = structured(seed=4)
    args = torch.from_numpy(img), torch.from_numpy(maps)
    whole = [M.estimate_mi(*args, estimator=e) for e in M.Estimator] + [
        M.estimate_mi(*args, binning="quantile")
    ]
    monkeypatch.setattr(mi_common, "CHUNK", 1)
    monkeypatch.setattr(mi_histogram, "_IMAGE_CHUNK", 1)
    parts = [M.estimate_mi(*args, estimator=e) for e in M.Estimator] + [
        M.estimate_mi(*args, binning="quantile")
    ]
    for a, b in zip(whole, parts):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_non_contiguous_inputs():
    img, maps = structured(seed=5)
    t_img = torch.from_numpy(img.transpose(0, 2, 1).copy()).transpose(1, 2)
    t_maps = torch.from_numpy(np.repeat(maps, 2, axis=1))[:, ::2]
    assert not t_img.is_contiguous() and not t_maps.is_contiguous()
    torch.testing.assert_close(
        M.histogram_mi(t_img, t_maps), torch.from_numpy(reference(img, maps, 20)).float()
    )


# ------------------------------------------------------------------------------- known values


def test_mi_of_an_array_with_itself_is_its_binned_entropy(backend):
    x, _ = gaussian(0.0, n=3, side=40)
    got = M.histogram_mi(x, x[:, None], 20)
    want = torch.tensor([binned_entropy(x[n].numpy(), 20) for n in range(3)])
    torch.testing.assert_close(got, want[:, None].float(), rtol=0, atol=1e-6)


def test_independent_data_gives_the_plug_in_bias(backend):
    x, y = gaussian(0.0, n=8)
    got = M.histogram_mi(x, y, 20).mean().item()
    expected = 19**2 / (2 * 96 * 96)  # (B-1)^2 / 2N = 0.0196
    assert 0.5 * expected < got < 1.5 * expected


def test_miller_madow_moves_independent_estimate_towards_zero(backend):
    x, y = gaussian(0.0, n=8)
    plain = M.estimate_mi(x, y).mean().item()
    corrected = M.estimate_mi(x, y, miller_madow=True).mean().item()
    assert 0 <= abs(corrected) < plain / 2


@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"miller_madow": True},
        {"binning": "quantile"},
        {"estimator": "ksg"},
        {"estimator": "gcmi"},
    ],
)
def test_gaussian_rho_075_is_near_its_closed_form(opts):
    x, y = gaussian(0.75, n=4)
    truth = -0.5 * math.log(1 - 0.75**2)  # 0.4133
    got = M.estimate_mi(x, y, **opts)
    assert got.shape == (4, 1) and got.dtype == torch.float32 and got.device.type == "cpu"
    assert abs(got.mean().item() - truth) < 0.03, got.ravel()


def test_uniform_plus_noise_ksg_near_closed_form():
    g = np.random.default_rng(6)
    x = g.random((3, 64, 64))
    y = x + g.uniform(-0.75, 0.75, x.shape)
    got = (
        M.estimate_mi(torch.from_numpy(x), torch.from_numpy(y)[:, None], estimator="ksg")
        .mean()
        .item()
    )
    assert abs(got - 1 / 3) < 0.05


def test_constant_arrays_give_zero(backend):
    img, maps = structured()
    for opts in (
        {},
        {"miller_madow": True},
        {"binning": "quantile", "miller_madow": True},
        {"estimator": "ksg", "ksg_samples": 100},
        {"estimator": "gcmi"},
    ):
        got = M.estimate_mi(torch.from_numpy(img), torch.from_numpy(maps), **opts)
        assert (got[:, 3] == 0).all(), opts
        flat = M.estimate_mi(torch.zeros(3, 24, 24), torch.from_numpy(maps), **opts)
        assert (flat == 0).all(), opts


def test_non_finite_pairs_get_nan(backend):
    img, maps = structured()
    maps[1, 2, 3, 4] = np.nan
    img[2, 0, 0] = np.inf
    for opts in (
        {},
        {"binning": "quantile"},
        {"estimator": "ksg", "ksg_samples": 100},
        {"estimator": "gcmi"},
    ):
        got = M.estimate_mi(torch.from_numpy(img), torch.from_numpy(maps), **opts)
        assert torch.isnan(got[1, 2]) and torch.isnan(got[2]).all(), opts
        assert torch.isfinite(got[0]).all() and torch.isfinite(got[1, :2]).all(), opts


def test_quantile_bins_are_exactly_invariant_to_monotone_transforms(backend):
    x, y = gaussian(0.75, n=3, side=48)
    a = M.estimate_mi(x, y, binning="quantile", miller_madow=True)
    b = M.estimate_mi(torch.exp(3 * x), y**3 - 5, binning="quantile", miller_madow=True)
    assert torch.equal(a, b)
    assert torch.equal(
        M.estimate_mi(x, y, estimator="gcmi"),
        M.estimate_mi(torch.exp(3 * x), y**3, estimator="gcmi"),
    )
    width = M.estimate_mi(torch.exp(3 * x), y)
    # equal-width bins are not invariant: most of exp(3x) falls in one bin
    assert (width < a - 0.1).all()


@pytest.mark.parametrize("midranks", [mi_ranks.midranks_numba, mi_ranks.midranks_torch])
def test_quantile_bins_keep_ties_together(midranks):
    x = torch.tensor([[3.0, 0.0, 2.0, 0.0, 1.0, 0.0, 2.0, 1.0]])
    # mid-ranks (0-based) 7, 1, 5.5, 1, 3.5, 1, 5.5, 3.5 -> bin floor((mid-rank + 1/2) * 4 / 8)
    assert mi_histogram._quantile_table(8, 4)[midranks(x)].tolist() == [[3, 0, 3, 0, 2, 0, 3, 2]]
    assert torch.equal(midranks(x), midranks(x.double() * 2 + 1))


def test_ksg_matches_a_kd_tree_reference_on_the_same_samples():
    from scipy.spatial import cKDTree
    from scipy.special import digamma

    x, y = gaussian(0.8, n=2, side=20)
    xs, ys, _ = mi_ksg._ksg_inputs(x, y, 300, seed=1, ids=np.arange(2))
    got = M.estimate_mi(x, y, estimator="ksg", ksg_k=4, ksg_samples=300, seed=1)
    for n in range(2):
        a, b = xs[n].numpy(), ys[n, 0].numpy()
        eps = cKDTree(np.c_[a, b]).query(np.c_[a, b], 5, p=np.inf)[0][:, -1]
        nx = (np.abs(a[:, None] - a[None]) < eps[:, None]).sum(1) - 1
        ny = (np.abs(b[:, None] - b[None]) < eps[:, None]).sum(1) - 1
        want = digamma(4) + digamma(300) - np.mean(digamma(nx + 1) + digamma(ny + 1))
        assert got[n, 0].item() == pytest.approx(want, abs=1e-6)


def test_ksg_does_not_depend_on_how_images_are_batched():
    x, y = gaussian(0.5, n=4, side=32)
    whole = M.estimate_mi(x, y, estimator="ksg", ksg_samples=300, seed=7)
    assert torch.equal(
        whole[:2], M.estimate_mi(x[:2], y[:2], estimator="ksg", ksg_samples=300, seed=7)
    )
    # a later batch, given its images' global ids, draws what the whole batch drew for them
    assert torch.equal(
        whole[2:], M.estimate_mi(x[2:], y[2:], estimator="ksg", ksg_samples=300, seed=7, ids=[2, 3])
    )
    assert not torch.equal(whole, M.estimate_mi(x, y, estimator="ksg", ksg_samples=300, seed=8))


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "images, maps",
    [
        (torch.rand(2, 8, 8), torch.rand(2, 8, 8)),  # maps not 4-D
        (torch.rand(2, 1, 8, 8), torch.rand(2, 3, 8, 8)),  # images not 3-D
        (torch.rand(3, 8, 8), torch.rand(2, 3, 8, 8)),  # N differs
        (torch.rand(2, 8, 9), torch.rand(2, 3, 8, 8)),  # W differs
        (torch.rand(2, 1, 1), torch.rand(2, 3, 1, 1)),  # one pixel
        (torch.rand(2, 8, 8, dtype=torch.complex64), torch.rand(2, 3, 8, 8)),
        (np.zeros((2, 8, 8)), torch.rand(2, 3, 8, 8)),
    ],
)
def test_bad_shapes_and_dtypes_raise_value_error(images, maps):
    with pytest.raises(ValueError):
        M.histogram_mi(images, maps)
    with pytest.raises(ValueError):
        M.estimate_mi(images, maps)


@pytest.mark.parametrize(
    "opts",
    [
        {"bins": 1},
        {"bins": 2.5},
        {"estimator": "kde"},
        {"binning": "log"},
        {"estimator": "ksg", "ksg_k": 0},
        {"estimator": "ksg", "ksg_samples": 3},
    ],
)
def test_bad_options_raise_value_error(opts):
    with pytest.raises(ValueError):
        M.estimate_mi(torch.rand(2, 8, 8), torch.rand(2, 3, 8, 8), **opts)


# -------------------------------------------------------------------------------- shuffled null


def test_shuffle_pixels_permutes_each_map_reproducibly():
    maps = torch.rand(3, 4, 10, 12)
    s = M.shuffle_pixels(maps, seed=1)
    assert s.shape == maps.shape and s.dtype == maps.dtype
    assert torch.equal(s.reshape(3, 4, -1).sort(-1).values, maps.reshape(3, 4, -1).sort(-1).values)
    assert torch.equal(s, M.shuffle_pixels(maps, seed=1))
    # a function of (seed, image id, c) only
    assert torch.equal(s[:2], M.shuffle_pixels(maps[:2], seed=1))
    assert torch.equal(s[1:], M.shuffle_pixels(maps[1:], seed=1, ids=[1, 2]))
    assert not torch.equal(s, M.shuffle_pixels(maps, seed=2))
    assert not torch.equal(s[0, 0], maps[0, 0])  # it moved pixels
    same = torch.rand(1, 2, 10, 12).expand(1, 2, 10, 12).contiguous()
    same[0, 1] = same[0, 0]
    t = M.shuffle_pixels(same, seed=1)
    assert not torch.equal(t[0, 0], t[0, 1])  # one permutation per map, not per image


def test_shuffle_kernel_and_numpy_fallback_agree():
    keys = np.arange(6, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    out = np.empty((6, 37), np.int64)
    mi_shuffle._permutations_kernel(keys, out)
    assert (out == mi_shuffle.permutations_numpy(keys, 37)).all()
    assert (np.sort(out, 1) == np.arange(37)).all()


def test_shuffled_maps_give_the_estimator_floor():
    x, y = gaussian(0.9, n=2)
    assert (M.estimate_mi(x, M.shuffle_pixels(y, seed=0)) < 0.03).all()


# ----------------------------------------------------------------------------------------- CUDA


@needs_cuda
def test_cuda_histogram_matches_cpu_and_numpy():
    img, maps = structured(seed=8)
    u8 = (img * 255).astype(np.uint8)
    for im, bins in ((img, 20), (u8, 7), (img, 64)):
        cuda = M.histogram_mi(torch.from_numpy(im).cuda(), torch.from_numpy(maps).cuda(), bins)
        assert cuda.device.type == "cuda" and cuda.dtype == torch.float32
        assert np.abs(cuda.cpu().numpy() - reference(im, maps, bins)).max() < 1e-5


@needs_cuda
def test_cuda_bins_equal_numpys_on_varied_data():
    g = np.random.default_rng(9)
    for scale, offset, dtype in (
        (1.0, 0.0, np.float32),
        (3.7, -2.0, np.float32),
        (1e-3, 1.0, np.float32),
        (250.0, 0.0, np.float64),
    ):
        img = (g.standard_normal((6, 32, 32)) * scale + offset).astype(dtype)
        maps = np.maximum(
            g.standard_normal((6, 5, 32, 32)) * scale + offset + img[:, None], offset
        ).astype(dtype)
        for bins in (7, 20):
            cuda = (
                M.histogram_mi(torch.from_numpy(img).cuda(), torch.from_numpy(maps).cuda(), bins)
                .cpu()
                .numpy()
            )
            assert np.abs(cuda - reference(img, maps, bins)).max() < 1e-5, (
                scale,
                offset,
                dtype,
                bins,
            )


@needs_cuda
def test_cuda_estimators_match_cpu():
    x, y = gaussian(0.6, n=3, side=40)
    x = x.float()
    y = torch.cat([y.float(), torch.relu(y.float()), torch.full_like(y.float(), 3.0)], 1)
    for opts in (
        {},
        {"miller_madow": True},
        {"binning": "quantile"},
        {"estimator": "gcmi"},
        {"estimator": "ksg", "ksg_samples": 300},
    ):
        cpu = M.estimate_mi(x, y, **opts)
        cuda = M.estimate_mi(x.cuda(), y.cuda(), **opts)
        assert cuda.device.type == "cpu"
        torch.testing.assert_close(cuda, cpu, rtol=0, atol=1e-5, msg=str(opts))
    torch.testing.assert_close(M.shuffle_pixels(y.cuda(), 3).cpu(), M.shuffle_pixels(y, 3))


# ------------------------------------------------------------------------------- GCMI references


def _gcmi_ince(x: np.ndarray, y: np.ndarray) -> float:
    """Gaussian-copula MI in nats of two 1-D samples, written from Ince et al. (2017) (their gcmi code):
    copula normals Phi^-1(rank / (n + 1)) with ranks 1..n, then the Gaussian MI from the covariance with
    their analytic bias correction (psi terms and the log(n - 1) term)."""
    from scipy.special import ndtri, psi

    n = x.size
    cx = ndtri((np.argsort(np.argsort(x)) + 1.0) / (n + 1))
    cy = ndtri((np.argsort(np.argsort(y)) + 1.0) / (n + 1))
    xy = np.vstack([cx, cy])
    xy = xy - xy.mean(1, keepdims=True)
    cov = xy @ xy.T / (n - 1)
    hx = 0.5 * np.log(cov[0, 0])
    hy = 0.5 * np.log(cov[1, 1])
    hxy = np.sum(np.log(np.diag(np.linalg.cholesky(cov))))
    psiterms = psi((n - np.arange(1, 3)) / 2.0) / 2.0
    dterm = (np.log(2.0) - np.log(n - 1.0)) / 2.0
    hx, hy = hx - dterm - psiterms[0], hy - dterm - psiterms[0]
    hxy = hxy - 2 * dterm - psiterms.sum()
    return float(hx + hy - hxy)


@pytest.mark.parametrize("side", [32, 96])
@pytest.mark.slow
@pytest.mark.xdist_group(
    "gcmi"
)  # one worker: GCMI's kernel and frites are compiled and imported once
def test_gcmi_agrees_with_ince_et_al_and_frites(backend, side):
    """1-based ranks, as Ince et al. (2017) and frites' gcmi have them: agreement to 1e-6 nats."""
    x, y = gaussian(0.6, n=3, side=side)
    # a monotone and a reversing transform of the same map
    y = torch.cat([y, torch.exp(y), -(y**3)], 1)
    got = M.estimate_mi(x, y, estimator="gcmi").double().numpy()
    want = np.array(
        [
            [_gcmi_ince(x[n].numpy().ravel(), y[n, c].numpy().ravel()) for c in range(3)]
            for n in range(3)
        ]
    )
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    try:
        from frites.core import gcmi_1d_cc
    except ImportError:
        return
    bits = np.array(
        [
            [gcmi_1d_cc(x[n].numpy().ravel(), y[n, c].numpy().ravel()) for c in range(3)]
            for n in range(3)
        ]
    )
    np.testing.assert_allclose(got, bits * np.log(2), atol=1e-6, rtol=0)


@pytest.mark.slow
def test_gcmi_gives_one_cap_for_identical_and_reversed_ranks(backend):
    """A map whose ranks equal or reverse the image's: r^2 clamped to GCMI_R2_MAX on every path."""
    x = torch.rand(2, 40, 40, dtype=torch.float64)
    y = torch.stack([x, 2 * x + 1, -x, torch.exp(-x)], 1)
    got = M.estimate_mi(x, y, estimator="gcmi").double()
    p = 40 * 40
    from scipy.special import digamma

    cap = -0.5 * math.log1p(-M.GCMI_R2_MAX) + (digamma((p - 2) / 2) - digamma((p - 1) / 2)) / 2
    torch.testing.assert_close(got, torch.full_like(got, cap), atol=1e-5, rtol=0)
