"""Specification of the SC-ASS baselines (§7): supervised NMF and the ideal binary mask."""

import pytest
import torch

from model.nmf import SupervisedNMF, beta_divergence, learn_dictionary, mu_update, separate
from model.oracle import ibm_estimates, ideal_binary_mask
from utils.errors import UserError

torch.set_num_threads(1)
F = 32


def _band_source(lo, hi, gen, num_atoms=3):
    """Random non-negative spectral atoms supported on bins [lo, hi), shape (num_atoms, F)."""
    atoms = torch.zeros(num_atoms, F, dtype=torch.float64)
    atoms[:, lo:hi] = torch.rand(num_atoms, hi - lo, generator=gen, dtype=torch.float64)
    return atoms


def _power(atoms, shape, gen):
    """Power frames that are random non-negative combinations of the atoms, shape (*shape, F)."""
    return torch.rand(*shape, atoms.shape[0], generator=gen, dtype=torch.float64) ** 2 @ atoms


def _with_random_phase(power, gen):
    phase = torch.rand(power.shape, generator=gen, dtype=torch.float64)
    return power.sqrt() * torch.exp(2j * torch.pi * phase)


@pytest.mark.parametrize("beta", ["kl", "is"])
def test_multiplicative_updates_never_increase_the_divergence(beta):
    gen = torch.Generator().manual_seed(0)
    v = torch.rand(40, F, generator=gen, dtype=torch.float64) ** 2
    w = torch.rand(F, 4, generator=gen, dtype=torch.float64)
    h = torch.rand(40, 4, generator=gen, dtype=torch.float64)
    divergences = [beta_divergence(v, h @ w.T, beta)]
    for _ in range(30):
        w, h = mu_update(v, w, h, beta)
        divergences.append(beta_divergence(v, h @ w.T, beta))
    steps = torch.diff(torch.stack(divergences))
    assert (steps <= 1e-9 * divergences[0]).all()
    assert divergences[-1] < 0.9 * divergences[0]
    assert torch.allclose(w.sum(dim=0), torch.ones(4, dtype=torch.float64))


@pytest.mark.parametrize("beta", ["kl", "is"])
def test_disjoint_spectral_supports_are_separated(beta):
    gen = torch.Generator().manual_seed(1)
    low, high = _band_source(0, F // 2, gen), _band_source(F // 2, F, gen)
    training = [_power(low, (5, 40), gen), _power(high, (200,), gen)]   # (sequences, T, F) or (T, F)
    model = SupervisedNMF(n_components=4, beta=beta).fit(training)
    sources = torch.stack([_with_random_phase(_power(low, (2, 30), gen), gen),
                           _with_random_phase(_power(high, (2, 30), gen), gen)], dim=1)   # (B, N, T, F)

    estimates = model.separate(sources.sum(dim=1))

    assert estimates.shape == sources.shape and estimates.is_complex()
    rel_err = ((estimates - sources).abs() ** 2).sum((-2, -1)) / (sources.abs() ** 2).sum((-2, -1))
    assert (rel_err < 1e-3).all()


def test_wiener_masks_redistribute_the_whole_mixture():
    gen = torch.Generator().manual_seed(2)
    dictionaries = [torch.rand(F, 3, generator=gen, dtype=torch.float64) for _ in range(3)]
    mix = _with_random_phase(torch.rand(2, 10, F, generator=gen, dtype=torch.float64), gen)
    estimates = separate(mix, dictionaries, "kl", n_iter=5)
    assert estimates.shape == (2, 3, 10, F)
    assert torch.allclose(estimates.sum(dim=1), mix, atol=1e-8)
    # a dictionary's scale is absorbed by its activations
    rescaled = separate(mix, [5 * dictionaries[0], *dictionaries[1:]], "kl", n_iter=5)
    assert torch.allclose(rescaled, estimates, atol=1e-8)


def test_learned_dictionary_columns_are_normalised_and_seeded():
    gen = torch.Generator().manual_seed(3)
    frames = torch.rand(50, F, generator=gen)
    w = learn_dictionary(frames, n_components=5, beta="kl", n_iter=10, seed=7)
    assert w.shape == (F, 5) and (w >= 0).all()
    assert torch.allclose(w.sum(dim=0), torch.ones(5), atol=1e-5)
    assert torch.equal(w, learn_dictionary(frames, n_components=5, beta="kl", n_iter=10, seed=7))


def test_save_load_round_trip(tmp_path):
    gen = torch.Generator().manual_seed(4)
    model = SupervisedNMF(n_components=3, beta="is", n_iter_train=5, n_iter_sep=7)
    model.fit([torch.rand(20, F, generator=gen), torch.rand(20, F, generator=gen)])
    loaded = SupervisedNMF.load(model.save(tmp_path / "nmf.npz"))
    assert (loaded.beta, loaded.n_components, loaded.n_iter_sep) == ("is", 3, 7)
    assert all(torch.equal(a, b) for a, b in zip(model.dictionaries, loaded.dictionaries))


def test_user_errors():
    with pytest.raises(UserError, match="beta"):
        SupervisedNMF(beta="euclidean")
    with pytest.raises(UserError, match="does not exist"):
        SupervisedNMF.load("/nonexistent/nmf.npz")
    mix = torch.zeros(1, 4, F + 1, dtype=torch.complex64)
    with pytest.raises(UserError, match="frequency bins"):
        separate(mix, [torch.rand(F, 2)], "kl")


def test_ideal_binary_mask_picks_the_loudest_source_and_sums_to_one():
    sources = torch.tensor([[[[3 + 0j, 0j, 1j]], [[1 + 0j, 2j, -1 + 0j]]]])   # (B=1, N=2, T=1, F=3)
    masks = ideal_binary_mask(sources)
    # bin 0: source 1 louder; bin 1: source 2; bin 2: tie -> first source
    assert masks[0, :, 0].tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]

    gen = torch.Generator().manual_seed(5)
    random_sources = _with_random_phase(torch.rand(2, 3, 6, F, generator=gen, dtype=torch.float64), gen)
    masks = ideal_binary_mask(random_sources)
    assert torch.equal(masks.sum(dim=1), torch.ones(2, 6, F, dtype=torch.float64))
    assert set(masks.unique().tolist()) <= {0.0, 1.0}


def test_ibm_estimates_add_up_to_the_mixture():
    gen = torch.Generator().manual_seed(6)
    sources = _with_random_phase(torch.rand(2, 2, 5, F, generator=gen, dtype=torch.float64), gen)
    mix = sources.sum(dim=1)
    estimates = ibm_estimates(mix, sources)
    assert estimates.shape == sources.shape
    assert torch.allclose(estimates.sum(dim=1), mix)
