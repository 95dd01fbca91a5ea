"""Unit tests for llmvoice.control.model: priors, the robust online fit and its helpers."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmvoice.benchmark.simulate import ANTHROPIC_PROFILE, LLAMACPP_PROFILE, OPENAI_PROFILE, VLLM_PROFILE
from llmvoice.control.model import PRIORS, LatencyModel, LatencyPrior, predict_turns, relative_error
from llmvoice.errors import ConfigurationError

OPENAI = PRIORS["openai"]


def _points(n: int) -> list[tuple[int, int]]:
    """Token mixes spread over 40-2,540 uncached and 0-24,000 cached tokens."""
    return [(40 + (i * 97) % 2500, (i * 1543) % 24_000) for i in range(n)]


def _noisy(n: int = 30) -> list[tuple[int, int, float]]:
    """The OpenAI prior's TTFTs times a deterministic factor between exp(-0.15) and exp(0.15)."""
    return [(u, c, OPENAI.predict(u, c) * math.exp(0.15 * math.sin(1.7 * i))) for i, (u, c) in enumerate(_points(n))]


def _model(rows: list[tuple[int, int, float]], prior: LatencyPrior = OPENAI) -> LatencyModel:
    model = LatencyModel.from_prior(prior)
    for uncached, cached, ttft in rows:
        model = model.observe(uncached, cached, ttft)
    return model


# -- Priors -----------------------------------------------------------------------------------


def test_prior_names() -> None:
    """There is a prior for each adapter name and a default."""
    assert sorted(PRIORS) == ["anthropic", "default", "llamacpp", "openai", "openai-compatible"]


@pytest.mark.parametrize(
    ("name", "profile"),
    [
        ("openai", OPENAI_PROFILE),
        ("anthropic", ANTHROPIC_PROFILE),
        ("openai-compatible", VLLM_PROFILE),
        ("llamacpp", LLAMACPP_PROFILE),
    ],
)
def test_priors_match_the_simulated_providers(name: str, profile: Any) -> None:
    """Each prior carries the same constants as the benchmark's simulated provider."""
    prior = PRIORS[name]
    assert (prior.base_s, prior.a_s_per_token, prior.b_s_per_token, prior.weight) == (
        profile.base_s,
        profile.per_uncached_s,
        profile.per_cached_s,
        8.0,
    )


def test_default_prior_is_openai_at_half_weight() -> None:
    """The default prior has the OpenAI constants and is worth 4 observations."""
    default = PRIORS["default"]
    assert (default.base_s, default.a_s_per_token, default.b_s_per_token, default.weight) == (
        OPENAI.base_s,
        OPENAI.a_s_per_token,
        OPENAI.b_s_per_token,
        4.0,
    )


def test_priors_are_read_only() -> None:
    """PRIORS cannot be changed."""
    with pytest.raises(TypeError):
        PRIORS["mine"] = OPENAI  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"base_s": 0.0}, "base_s"),
        ({"base_s": math.inf}, "base_s"),
        ({"a_s_per_token": -1e-5}, "a_s_per_token"),
        ({"b_s_per_token": math.nan}, "b_s_per_token"),
        ({"weight": 0.0}, "weight"),
        ({"weight": True}, "weight"),
    ],
)
def test_prior_rejects_bad_values(kwargs: dict[str, Any], field: str) -> None:
    """A bad constant raises ConfigurationError naming it."""
    values: dict[str, Any] = {"base_s": 0.4, "a_s_per_token": 1e-4, "b_s_per_token": 1e-5, **kwargs}
    with pytest.raises(ConfigurationError, match=f"^{field} "):
        LatencyPrior(**values)


# -- The fit ----------------------------------------------------------------------------------


def test_prior_only_prediction_equals_the_prior() -> None:
    """With no observations the model predicts exactly what the prior predicts."""
    model = LatencyModel.from_prior(OPENAI)
    assert model.coefficients == (OPENAI.base_s, OPENAI.a_s_per_token, OPENAI.b_s_per_token)
    assert model.predict(1200, 8000) == OPENAI.predict(1200, 8000)
    assert model.observations == 0


def test_noise_free_data_recover_their_coefficients() -> None:
    """Thirty noise-free observations from other coefficients replace the prior to 1e-6."""
    true = (1.2, 1e-3, 2e-4)
    model = _model([(u, c, true[0] + true[1] * u + true[2] * c) for u, c in _points(30)])
    assert model.coefficients == pytest.approx(true, rel=1e-6)


def test_noise_free_data_agreeing_with_the_prior_recover_it() -> None:
    """Observations drawn from the prior's own coefficients leave the coefficients where they are."""
    model = _model([(u, c, OPENAI.predict(u, c)) for u, c in _points(30)])
    assert model.coefficients == pytest.approx((OPENAI.base_s, OPENAI.a_s_per_token, OPENAI.b_s_per_token), rel=1e-9)


def test_one_outlier_barely_moves_the_prediction() -> None:
    """A single 10x outlier among 30 noisy observations moves the prediction by well under 5%."""
    rows = _noisy()
    clean = _model(rows).predict(60, 8000)
    uncached, cached, ttft = rows[12]
    rows[12] = (uncached, cached, 10 * ttft)
    dirty = _model(rows).predict(60, 8000)
    assert (round(clean, 6), round(dirty, 6)) == (0.503306, 0.50126)
    assert abs(dirty - clean) / clean < 0.05


def test_a_few_contradicting_observations_do_not_replace_the_prior() -> None:
    """Fewer observations than the prior's weight, all 2.3x slower, are set aside; eight replace it."""
    rows = [(500 + 50 * i, 300 * i, 1.0) for i in range(8)]
    assert round(_model(rows[:7]).predict(500, 0), 6) == round(OPENAI.predict(500, 0), 6)
    assert round(_model(rows).predict(500, 0), 6) == 1.0


def test_a_mildly_different_observation_moves_the_prediction_a_little() -> None:
    """One observation 30% above the prior pulls the prediction part of the way."""
    prior = OPENAI.predict(500, 0)
    model = _model([(500, 0, 1.3 * prior)])
    assert (
        round(model.predict(500, 0), 6) == 0.439147
    )  # prior 0.427359, observed 0.555567: one observation against eight


def test_undetermined_coefficient_keeps_the_prior() -> None:
    """Observations without uncached tokens say nothing about `a`, which stays the prior's."""
    model = _model([(0, 500 * i, 1.0 + 1e-4 * 500 * i) for i in range(30)])
    base, a, b = model.coefficients
    assert (base, a, b) == pytest.approx((1.0, OPENAI.a_s_per_token, 1e-4), rel=1e-6)


def test_negative_slope_is_clamped_to_zero() -> None:
    """Data whose TTFT falls with cached tokens give b exactly 0.0, not a negative value."""
    rows = [(u, c, 2.0 + 2e-4 * u - 5e-5 * c) for u, c in ((i * 97 % 2000, i * 1543 % 20_000) for i in range(60))]
    assert _model(rows).coefficients[2] == 0.0


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 200_000),
            st.integers(0, 200_000),
            st.floats(1e-4, 1e3, allow_nan=False, allow_infinity=False),
            st.booleans(),
        ),
        max_size=40,
    ),
    st.sampled_from(sorted(PRIORS)),
)
def test_coefficients_are_never_negative(rows: list[tuple[int, int, float, bool]], name: str) -> None:
    """Whatever the observations, every fitted coefficient is finite and >= 0."""
    model = LatencyModel.from_prior(PRIORS[name], window=30)
    for uncached, cached, ttft, censored in rows:
        model = model.observe(uncached, cached, ttft, censored)
    assert all(math.isfinite(v) and v >= 0 for v in model.coefficients)


# -- Censoring --------------------------------------------------------------------------------


def test_censored_below_the_prediction_is_ignored() -> None:
    """A timeout earlier than the model's prediction carries no information."""
    model = _model(_noisy())
    with_censored = model.observe(100, 5000, 0.05, censored=True)
    assert [round(v, 12) for v in with_censored.coefficients] == [round(v, 12) for v in model.coefficients]


def test_censored_above_the_prediction_pushes_it_up() -> None:
    """A timeout later than the prediction raises it, like an ordinary observation there."""
    model = _model(_noisy())
    before = model.predict(100, 5000)
    after = model.observe(100, 5000, 0.7, censored=True).predict(100, 5000)
    assert (round(before, 6), round(after, 6)) == (0.470947, 0.474217)
    assert after > before


def test_uncensored_below_the_prediction_pulls_it_down() -> None:
    """An ordinary observation below the prediction does lower it (censoring is what differs)."""
    model = _model(_noisy())
    assert model.observe(100, 5000, 0.3).predict(100, 5000) < model.predict(100, 5000)


# -- The object -------------------------------------------------------------------------------


def test_observe_returns_a_new_model() -> None:
    """observe() leaves the original model unchanged."""
    model = LatencyModel.from_prior(OPENAI)
    new = model.observe(1000, 0, 2.0)
    assert (model.observations, new.observations, model.predict(1000, 0)) == (0, 1, OPENAI.predict(1000, 0))


def test_window_keeps_the_newest_observations() -> None:
    """A full window drops the oldest observation; the fit equals one built from the kept ones."""
    rows = _noisy(12)
    model = LatencyModel.from_prior(OPENAI, window=5)
    for uncached, cached, ttft in rows:
        model = model.observe(uncached, cached, ttft)
    fresh = LatencyModel.from_prior(OPENAI, window=5)
    for uncached, cached, ttft in rows[-5:]:
        fresh = fresh.observe(uncached, cached, ttft)
    assert (model.observations, model.coefficients) == (5, fresh.coefficients)


def test_constructor_equals_from_prior() -> None:
    """LatencyModel(prior, window=...) is the same as from_prior."""
    model = LatencyModel(OPENAI, window=7)
    assert (model.prior, model.window, model.observations) == (OPENAI, 7, 0)


def test_predict_turns() -> None:
    """predict_turns predicts each (uncached, cached) pair in order."""
    model = _model(_noisy())
    assert predict_turns(model, [(10, 100), (2000, 0)]) == [model.predict(10, 100), model.predict(2000, 0)]


def test_relative_error() -> None:
    """An observation twice the prediction is a relative error of exactly 1.0."""
    model = LatencyModel.from_prior(OPENAI)
    assert relative_error(model, 500, 4000, 2 * OPENAI.predict(500, 4000)) == 1.0


# -- Validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((-1, 0, 0.5), "uncached"),
        ((0, -1, 0.5), "cached"),
        ((1.5, 0, 0.5), "uncached"),
        ((0, 0, 0.0), "ttft_s"),
        ((0, 0, -0.5), "ttft_s"),
        ((0, 0, math.nan), "ttft_s"),
        ((0, 0, math.inf), "ttft_s"),
        ((0, 0, 0.5, 1), "censored"),
    ],
)
def test_observe_rejects_bad_values(args: tuple[Any, ...], field: str) -> None:
    """A bad observation raises ConfigurationError naming it and leaves the model unchanged."""
    model = LatencyModel.from_prior(OPENAI)
    with pytest.raises(ConfigurationError, match=f"^{field} "):
        model.observe(*args)
    assert model.observations == 0


@pytest.mark.parametrize("window", [0, -1, 2.5, False])
def test_window_must_be_a_positive_int(window: Any) -> None:
    """A window below 1, or not an int, raises ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=r"^window "):
        LatencyModel.from_prior(OPENAI, window=window)


def test_prior_must_be_a_latency_prior() -> None:
    """Anything but a LatencyPrior raises ConfigurationError naming the prior."""
    with pytest.raises(ConfigurationError, match=r"^prior must be a LatencyPrior, not tuple$"):
        LatencyModel.from_prior((0.4, 1e-4, 1e-5))  # type: ignore[arg-type]


@pytest.mark.parametrize(("uncached", "cached", "field"), [(-1, 0, "uncached"), (0, -5, "cached")])
def test_predict_rejects_negative_tokens(uncached: int, cached: int, field: str) -> None:
    """A negative token count raises ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=f"^{field} "):
        LatencyModel.from_prior(OPENAI).predict(uncached, cached)


@pytest.mark.parametrize("observed", [0.0, -1.0, math.nan])
def test_relative_error_rejects_bad_observations(observed: float) -> None:
    """An observed time that is not a finite number > 0 raises ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=r"^observed_s "):
        relative_error(LatencyModel.from_prior(OPENAI), 10, 10, observed)
