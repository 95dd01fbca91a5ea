"""An online model of time to first token: ``ttft ≈ base + a·uncached + b·cached``.

:class:`LatencyModel` is immutable: :meth:`LatencyModel.observe` returns a new model with one more
observation (cheap: it only appends to a tuple); the fit runs lazily on the first
:meth:`~LatencyModel.predict` or :attr:`~LatencyModel.coefficients` and is cached on the object::

    model = LatencyModel.from_prior(PRIORS["anthropic"])
    model = model.observe(uncached=1_200, cached=8_000, ttft_s=0.71)
    model.predict(uncached=40, cached=9_200)   # seconds

The fit
-------

Non-negative least squares on *relative* errors (each row divided by its observed TTFT, since the
noise on TTFT is multiplicative), over the last ``window`` observations plus the prior. The prior
enters as three pseudo-observations, its own predictions at ``(0, 0)``, ``(2048, 0)`` and
``(0, 2048)`` tokens, together worth ``weight`` observations. With no data the fit is the prior
exactly.

Robustness comes from iteratively reweighted least squares with Tukey's biweight on log residuals
``r = ln(observed / predicted)``: a row weighs ``(1 - (r / (4.685·s))²)²`` inside
``|r| < 4.685·s`` and nothing outside. The noise scale ``s`` comes from a robust fit of the data
alone (the prior only filling in what they leave undetermined): their 1.4826·MAD, shrunk towards
an assumed 15% noise by as many observations as the prior is worth,
``s² = (weight·0.15² + n·mad²) / (weight + n)``, then held fixed. A 10x outlier (``r ≈ 2.3``) is
outside the cutoff for any realistic noise and gets no weight. Each reweighting runs until the
coefficients settle (at most 20 fits).

The prior's pseudo-observations are then reweighted like observations, so the prior and the data
either agree, and the fit is their compromise (``weight`` against the number of observations), or
they conflict, and one side is rejected. Tukey's loss is not convex, so two fits are computed, one
started from the data alone and one from the prior, and the one with the smaller total loss wins
(a rejected row costs its weight: 1 for an observation, ``weight / 3`` for each of the prior's
three). Fewer than ``weight`` observations that all contradict the prior are set aside as
outliers; more replace it, and noise-free data then give back their own coefficients.

Finally, a ridge of weight ``1e-12·weight`` pulls each coefficient towards the prior's. It changes
nothing the data determine, and decides what they leave undetermined: a model that has only ever
seen fully cached turns keeps the prior's ``a``.

A censored observation (an error or a timeout: the true TTFT is at least the observed one) enters
a fit only while it lies above the current prediction, where it pushes the prediction up; below
the prediction it is consistent with the model and carries no information.

Non-negativity is exact: the unconstrained solution when it is non-negative, otherwise the
solution on the support of its positive coefficients when that satisfies the optimality (KKT)
conditions, otherwise the best non-negative solution over every subset of the three coefficients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from llmvoice.errors import ConfigurationError

__all__ = [
    "PRIORS",
    "LatencyModel",
    "LatencyPrior",
    "predict_turns",
    "relative_error",
]

_FloatArray = npt.NDArray[np.float64]
_BoolArray = npt.NDArray[np.bool_]

# Token count of the prior's pseudo-observations; also the column scale of the design matrix.
_ANCHOR_TOKENS: Final[float] = 2048.0
# Tukey's biweight tuning constant (95% efficiency under Gaussian noise) and the MAD-to-sigma factor.
_TUKEY_C: Final[float] = 4.685
_MAD_TO_SIGMA: Final[float] = 1.4826
# The relative noise assumed before any data (simulated providers use 0.05-0.2), worth as many
# observations as the prior; and an absolute floor of the scale.
_PRIOR_SCALE: Final[float] = 0.15
_MIN_SCALE: Final[float] = 1e-3
# The weight, as a fraction of the prior's, of a ridge pulling each coefficient towards the prior's.
_RIDGE_WEIGHT: Final[float] = 1e-12
_MAX_REWEIGHTS: Final[int] = 20
_TOLERANCE: Final[float] = 1e-10
# Predictions are floored here before taking logarithms.
_TINY_S: Final[float] = 1e-12


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_tokens(label: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigurationError(f"{label} must be an int >= 0, not {value!r}")
    return value


def _check_seconds(label: str, value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{label} must be a finite number > 0, not {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class LatencyPrior:
    """Prior coefficients of ``ttft ≈ base + a·uncached + b·cached`` and how much to trust them.

    Attributes:
        base_s: seconds per request whatever its size (network, queueing, first decode step).
        a_s_per_token: seconds per input token prefilled without the cache (cache writes included).
        b_s_per_token: seconds per input token read from the cache.
        weight: how many observations the prior is worth.

    Raises:
        ConfigurationError: ``base_s`` or ``weight`` is not a finite number > 0, or a per-token
            coefficient is not a finite number >= 0.
    """

    base_s: float
    a_s_per_token: float
    b_s_per_token: float
    weight: float = 8.0

    def __post_init__(self) -> None:
        _check_seconds("base_s", self.base_s)
        _check_seconds("weight", self.weight)
        for label in ("a_s_per_token", "b_s_per_token"):
            value = getattr(self, label)
            if not _is_real(value) or not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"{label} must be a finite number >= 0, not {value!r}")

    def predict(self, uncached: int, cached: int) -> float:
        """The prior's time to first token, in seconds.

        Args:
            uncached: input tokens prefilled without the cache.
            cached: input tokens read from the cache.

        Returns:
            ``base_s + a_s_per_token·uncached + b_s_per_token·cached``.
        """
        return self.base_s + self.a_s_per_token * uncached + self.b_s_per_token * cached


# The constants are those of the benchmark's simulated providers, which cite their sources:
#
# * OpenAI: cookbook "Prompt Caching 201"
#   (https://github.com/openai/openai-cookbook/blob/main/examples/Prompt_Caching_201.ipynb): cached
#   prompts 7% faster at 1,024 tokens and 67% faster at 150k tokens; an uncached 1,024-token prompt
#   taken as 0.45 s (the cookbook gives ratios only); base, a and b solved exactly from the three.
# * Anthropic: https://www.anthropic.com/news/prompt-caching, "Chat with a book (100,000 token
#   cached prompt)": 11.5 s to first token uncached, 2.4 s cached; base 0.4 s assumed.
# * openai-compatible (a vLLM-like GPU server): jevper local-server notes
#   (https://github.com/zhulinchng/jevper; vLLM 0.30.1, Qwen3.5-9B 4-bit, one RTX 3080): a 2,388-token
#   cold prompt in 1.48 s; Gim et al., "Prompt Cache" (MLSys 2024, arXiv:2311.04934): cached prompts up
#   to 8x faster on GPU; base 0.05 s assumed.
# * llamacpp (a CPU engine): measured with llama-cpp-python 0.3.36, SmolLM2-135M Q4_1, 2 threads, on
#   a 2-vCPU x86-64 CPU; relative least squares over 15 cold, append and identical-prompt rows, 0.6k-7k
#   tokens.
# * default: the OpenAI constants at half the weight, for a provider without its own prior.
_OPENAI: Final[tuple[float, float, float]] = (0.4057550289578848, 4.3207979533315647e-05, 1.244626078331562e-05)
_ANTHROPIC: Final[tuple[float, float, float]] = (0.4, (11.5 - 0.4) / 100_000, (2.4 - 0.4) / 100_000)
_VLLM: Final[tuple[float, float, float]] = (0.05, (1.48 - 0.05) / 2388, (1.48 / 8.0 - 0.05) / 2388)
_LLAMACPP: Final[tuple[float, float, float]] = (0.004438565796287197, 0.00507401851698027, 8.038610056655512e-06)

#: Priors per adapter name: ``"openai"``, ``"anthropic"``, ``"openai-compatible"`` (a vLLM-like GPU
#: server), ``"llamacpp"`` (a CPU engine) and ``"default"``. Read-only.
PRIORS: Final[Mapping[str, LatencyPrior]] = MappingProxyType(
    {
        "openai": LatencyPrior(*_OPENAI),
        "anthropic": LatencyPrior(*_ANTHROPIC),
        "openai-compatible": LatencyPrior(*_VLLM),
        "llamacpp": LatencyPrior(*_LLAMACPP),
        "default": LatencyPrior(*_OPENAI, weight=4.0),
    }
)


class LatencyModel:
    """``ttft ≈ base + a·uncached + b·cached``, fitted robustly to the last ``window`` observations.

    Immutable: :meth:`observe` returns a new model. The fit is described in the module docstring.

    Args:
        prior: the coefficients used with no data, and how many observations they are worth.
        window: how many of the most recent observations the fit uses.

    Raises:
        ConfigurationError: ``prior`` is not a :class:`LatencyPrior`, or ``window`` is not an int >= 1.

    Example::

        model = LatencyModel.from_prior(PRIORS["openai"])
        model = model.observe(uncached=900, cached=3_000, ttft_s=0.52)
        model.predict(uncached=50, cached=3_900)
    """

    __slots__ = ("_fit", "_obs", "_prior", "_window")

    def __init__(self, prior: LatencyPrior, *, window: int = 200) -> None:
        if not isinstance(prior, LatencyPrior):
            raise ConfigurationError(f"prior must be a LatencyPrior, not {type(prior).__name__}")
        if not _is_int(window) or window < 1:
            raise ConfigurationError(f"window must be an int >= 1, not {window!r}")
        self._prior: LatencyPrior = prior
        self._window: int = window
        self._obs: tuple[tuple[int, int, float, bool], ...] = ()
        self._fit: tuple[float, float, float] | None = (prior.base_s, prior.a_s_per_token, prior.b_s_per_token)

    @classmethod
    def from_prior(cls, prior: LatencyPrior, window: int = 200) -> LatencyModel:
        """A model with no observations, predicting exactly what ``prior`` predicts.

        Args:
            prior: the coefficients used with no data, and how many observations they are worth.
            window: how many of the most recent observations the fit uses.

        Returns:
            A new :class:`LatencyModel`.

        Raises:
            ConfigurationError: ``prior`` is not a :class:`LatencyPrior`, or ``window`` is not an
                int >= 1.
        """
        return cls(prior, window=window)

    @property
    def prior(self) -> LatencyPrior:
        """The prior the model started from."""
        return self._prior

    @property
    def window(self) -> int:
        """How many of the most recent observations the fit uses."""
        return self._window

    @property
    def observations(self) -> int:
        """Observations in the window (at most :attr:`window`), censored ones included."""
        return len(self._obs)

    def observe(self, uncached: int, cached: int, ttft_s: float, censored: bool = False) -> LatencyModel:
        """Return a model with one more observation (the oldest dropped once the window is full).

        Args:
            uncached: input tokens prefilled without the cache (cache writes included).
            cached: input tokens read from the cache.
            ttft_s: observed time to first token in seconds; for a censored observation, the time
                when the request failed or timed out.
            censored: the true time to first token is at least ``ttft_s``.

        Returns:
            A new :class:`LatencyModel`; this one is unchanged.

        Raises:
            ConfigurationError: a token count is not an int >= 0, ``ttft_s`` is not a finite
                number > 0, or ``censored`` is not a bool.
        """
        _check_tokens("uncached", uncached)
        _check_tokens("cached", cached)
        seconds = _check_seconds("ttft_s", ttft_s)
        if not isinstance(censored, bool):
            raise ConfigurationError(f"censored must be a bool, not {censored!r}")
        new = LatencyModel.__new__(LatencyModel)
        new._prior = self._prior
        new._window = self._window
        kept = self._obs if len(self._obs) < self._window else self._obs[1:]
        new._obs = (*kept, (uncached, cached, seconds, censored))
        new._fit = None
        return new

    @property
    def coefficients(self) -> tuple[float, float, float]:
        """The fitted ``(base_s, a_s_per_token, b_s_per_token)``, each >= 0."""
        if self._fit is None:
            self._fit = _fit(self._prior, self._obs)
        return self._fit

    def predict(self, uncached: int, cached: int) -> float:
        """The predicted time to first token, in seconds.

        Args:
            uncached: input tokens prefilled without the cache (cache writes included).
            cached: input tokens read from the cache.

        Returns:
            ``base + a·uncached + b·cached`` with the fitted coefficients.

        Raises:
            ConfigurationError: a token count is not an int >= 0.
        """
        _check_tokens("uncached", uncached)
        _check_tokens("cached", cached)
        base, a, b = self.coefficients
        return base + a * uncached + b * cached

    def __repr__(self) -> str:
        return f"LatencyModel(prior={self._prior!r}, window={self._window}, observations={len(self._obs)})"


def predict_turns(model: LatencyModel, plan: Sequence[tuple[int, int]]) -> list[float]:
    """Predict the time to first token of several turns.

    Args:
        model: the latency model.
        plan: ``(uncached, cached)`` token counts, one pair per turn.

    Returns:
        The predictions in seconds, in the order of ``plan``.

    Raises:
        ConfigurationError: a token count is not an int >= 0.
    """
    return [model.predict(uncached, cached) for uncached, cached in plan]


def relative_error(model: LatencyModel, uncached: int, cached: int, observed_s: float) -> float:
    """How far an observed time to first token is from the model's prediction, relatively.

    Used to verify an action: a clearly positive value means the turn was slower than the model
    expected for its token mix.

    Args:
        model: the latency model.
        uncached: input tokens prefilled without the cache.
        cached: input tokens read from the cache.
        observed_s: the observed time to first token, in seconds.

    Returns:
        ``(observed_s - predicted) / predicted``; ``inf`` when the prediction is 0.

    Raises:
        ConfigurationError: a token count is not an int >= 0, or ``observed_s`` is not a finite
            number > 0.
    """
    observed = _check_seconds("observed_s", observed_s)
    predicted = model.predict(uncached, cached)
    if predicted <= 0:
        return math.inf
    return (observed - predicted) / predicted


# ---------------------------------------------------------------------------------------------
# The fit


def _restricted(design: _FloatArray, target: _FloatArray, support: Sequence[int]) -> _FloatArray:
    """Least squares over the ``support`` columns only; the other coefficients are 0."""
    solution = np.zeros(design.shape[1])
    if support:
        solution[list(support)] = np.linalg.lstsq(design[:, list(support)], target, rcond=None)[0]
    return solution


def _nnls(design: _FloatArray, target: _FloatArray) -> _FloatArray:
    """Least squares ``min |design·x - target|`` subject to ``x >= 0``, for a few columns.

    The unconstrained solution when it is non-negative; else the solution on the support of its
    positive coefficients when that satisfies the optimality (KKT) conditions; else the best
    non-negative solution over every support, which is exact and cheap for three columns.
    """
    solution = _restricted(design, target, range(design.shape[1]))
    if bool(np.all(solution >= 0)):
        return solution
    candidate = _restricted(design, target, [j for j in range(design.shape[1]) if solution[j] > 0])
    if bool(np.all(candidate >= 0)):
        gradient = design.T @ (design @ candidate - target)
        slack = _TOLERANCE * np.linalg.norm(design, axis=0) * max(float(np.linalg.norm(target)), _TINY_S)
        if bool(np.all((candidate > 0) | (gradient >= -slack))):
            return candidate
    best = np.zeros(design.shape[1])
    best_cost = float(target @ target)
    for size in range(1, design.shape[1]):
        for support in combinations(range(design.shape[1]), size):
            partial = _restricted(design, target, support)
            if not bool(np.all(partial >= 0)):
                continue
            residual = design @ partial - target
            cost = float(residual @ residual)
            if cost < best_cost:
                best_cost = cost
                best = partial
    return best


def _tukey_rho(residual: _FloatArray, cutoff: float) -> _FloatArray:
    """Tukey's loss, normalised to 1 for a rejected row."""
    inside = np.minimum((residual / cutoff) ** 2, 1.0)
    return np.asarray(1.0 - (1.0 - inside) ** 3, dtype=np.float64)


class _Problem:
    """The rows of one fit: observations, then the prior's pseudo-observations, then a faint ridge."""

    def __init__(self, prior: LatencyPrior, obs: tuple[tuple[int, int, float, bool], ...]) -> None:
        anchors = ((0, 0), (int(_ANCHOR_TOKENS), 0), (0, int(_ANCHOR_TOKENS)))
        tokens = [(u, c) for u, c, _, _ in obs] + list(anchors)
        # Token columns are scaled by the anchor size so the three columns have comparable magnitudes.
        self.rows = np.array([(1.0, u / _ANCHOR_TOKENS, c / _ANCHOR_TOKENS) for u, c in tokens], dtype=np.float64)
        self.seconds = np.array([t for _, _, t, _ in obs] + [prior.predict(u, c) for u, c in anchors])
        self.censored = np.array([flag for _, _, _, flag in obs] + [False] * len(anchors))
        self.is_data = np.arange(len(tokens)) < len(obs)
        self.base_weight = np.where(self.is_data, 1.0, prior.weight / len(anchors))
        self.prior_weight = prior.weight
        # Each row divided by its observed TTFT: the least squares minimise relative errors.
        self.relative = self.rows / self.seconds[:, None]
        self.prior_coef = np.array(
            [prior.base_s, prior.a_s_per_token * _ANCHOR_TOKENS, prior.b_s_per_token * _ANCHOR_TOKENS]
        )
        # A faint pull of each coefficient towards the prior's, in units of the prior's base: it
        # decides only what neither the observations nor the pseudo-observations determine.
        strength = math.sqrt(prior.weight * _RIDGE_WEIGHT) / prior.base_s
        self.ridge_design = np.eye(3) * strength
        self.ridge_target = self.prior_coef * strength

    def solve(self, weights: _FloatArray) -> _FloatArray:
        """Weighted non-negative least squares of the relative errors, with the ridge."""
        root = np.sqrt(weights)
        design = np.vstack((self.relative * root[:, None], self.ridge_design))
        return _nnls(design, np.concatenate((root, self.ridge_target)))

    def data_led_start(self) -> _FloatArray:
        """The plain fit of the uncensored observations."""
        return self.solve(np.where(self.is_data & ~self.censored, 1.0, 0.0))

    def residuals(self, coef: _FloatArray) -> tuple[_FloatArray, _BoolArray]:
        """Log residuals at ``coef``, and which rows count there."""
        residual: _FloatArray = np.log(self.seconds / np.maximum(self.rows @ coef, _TINY_S))
        # A censored row is a lower bound: it only counts while it lies above the prediction.
        usable: _BoolArray = ~self.censored | (residual > 0)
        return residual, usable

    def cutoff(self, coef: _FloatArray) -> float:
        """Tukey's cutoff from the observations' residuals at ``coef``.

        The robust scale (1.4826·MAD) is shrunk towards the assumed noise by as many observations as
        the prior is worth.
        """
        residual, usable = self.residuals(coef)
        data = np.abs(residual[self.is_data & usable])
        mad = _MAD_TO_SIGMA * float(np.median(data)) if data.size else 0.0
        scale = math.sqrt((self.prior_weight * _PRIOR_SCALE**2 + data.size * mad**2) / (self.prior_weight + data.size))
        return _TUKEY_C * max(scale, _MIN_SCALE)

    def reweight(self, coef: _FloatArray, *, cutoff: float | None) -> _FloatArray:
        """Iteratively reweighted least squares from ``coef`` with Tukey's biweight.

        With ``cutoff`` None, the prior's pseudo-observations are left out and the cutoff is
        re-estimated from the observations at every step (the data alone); otherwise the
        pseudo-observations are reweighted like the observations, at the fixed ``cutoff``.
        """
        for _ in range(_MAX_REWEIGHTS):
            residual, usable = self.residuals(coef)
            limit = self.cutoff(coef) if cutoff is None else cutoff
            tukey = np.where(np.abs(residual) < limit, (1.0 - (residual / limit) ** 2) ** 2, 0.0)
            weights = np.where(usable, self.base_weight * tukey, 0.0)
            if cutoff is None:
                weights = np.where(self.is_data, weights, 0.0)
            new = self.solve(weights)
            settled = bool(np.all(np.abs(new - coef) <= _TOLERANCE * np.maximum(np.abs(coef), 1.0)))
            coef = new
            if settled:
                break
        return coef

    def cost(self, coef: _FloatArray, cutoff: float) -> float:
        """Tukey's loss of the usable rows at ``coef``, each row counted with its base weight."""
        residual, usable = self.residuals(coef)
        return float(np.sum(np.where(usable, self.base_weight * _tukey_rho(residual, cutoff), 0.0)))


def _fit(prior: LatencyPrior, obs: tuple[tuple[int, int, float, bool], ...]) -> tuple[float, float, float]:
    if not obs:
        return (prior.base_s, prior.a_s_per_token, prior.b_s_per_token)
    problem = _Problem(prior, obs)
    # The noise scale comes from a robust fit of the data alone, and is then held fixed: were it
    # re-estimated while the prior joins, a compromise between conflicting data and prior would
    # inflate it and so keep both.
    data_alone = problem.reweight(problem.data_led_start(), cutoff=None)
    cutoff = problem.cutoff(data_alone)
    # Tukey's loss is not convex: where the data and the prior conflict, the reweighting settles on
    # the data (prior rejected) or on the prior (data rejected) depending on where it starts. Both
    # are computed; the one with the smaller loss wins.
    data_led = problem.reweight(data_alone, cutoff=cutoff)
    prior_led = problem.reweight(problem.prior_coef, cutoff=cutoff)
    coef = data_led if problem.cost(data_led, cutoff) <= problem.cost(prior_led, cutoff) else prior_led
    return (float(coef[0]), float(coef[1]) / _ANCHOR_TOKENS, float(coef[2]) / _ANCHOR_TOKENS)
