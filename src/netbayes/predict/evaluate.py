r"""The one evaluation path of :class:`~netbayes.predict.Predictor` (NumPy only).

Every prediction goes through here, whatever reduces the draws afterwards (all draws kept by
``patient``/``patients``, chunked summaries by ``summaries``, simulated KM medians by
``cohort``):

* :func:`_validate` checks patient records (:func:`~netbayes.predict.validate_patient`) into a
  :class:`_Batch` of arrays (line, tumour-type code, covariates, activities) with each
  patient's extrapolation notes; :func:`_warn` issues them, one warning per note or one per
  kind of note.
* :func:`_survival_components` turns a line, a tumour-type code (fine, coarse, new) and the
  covariates into the survival family's shape :math:`k` and the log scale
  :math:`\log\lambda` of each mixture component, with the components' weights;
  :func:`_log_scale` is the AFT predictor itself, :math:`\alpha + \sigma z` plus the salvage
  covariate and line terms (:func:`netbayes.formulas.survival.salvage_shift`), which the cohort
  simulation calls on its simulated patients' type effects and covariates.
* :func:`_toxicity_eta` is the toxicity linear predictor (patients x draws);
  :func:`_toxicity_risk` the exact risks of one patient from it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from netbayes import spec, vocab
from netbayes.formulas import survival as F
from netbayes.formulas import toxicity as T
from netbayes.predict.inputs import ExtrapolationWarning, _finite, validate_patient

__all__: list[str] = []

_NEW_TYPE_BASE = 1000  # type codes of new tumour types (fine < 6 <= coarse < 1000)
_LINE_INDEX = {ln: i for i, ln in enumerate(vocab.LINES)}


@dataclass
class _Batch:
    """Validated patients as arrays (see :func:`_validate`)."""

    labels: list[Any]
    line: np.ndarray  # index into vocab.LINES
    type: np.ndarray  # fine index, 6 + coarse index, or _NEW_TYPE_BASE + new-label index
    prior_pfs: np.ndarray  # months; NaN where not given (and on the first line, which ignores it)
    lx: np.ndarray  # log(prior PFS / X_REF), 0 for the first line and where x_mix
    x_mix: np.ndarray  # bool: a 188Re-HEDP patient without prior PFS (mixture over x_nodes)
    x_nodes: np.ndarray  # log(x / X_REF) nodes of the 188Re-HEDP prior-PFS mixture
    gq: np.ndarray  # (cumulative GBq - GBQ_REF) / GBQ_UNIT, 0 for the first line
    planned: np.ndarray
    prior: np.ndarray
    new_labels: list[str]
    coarse_weights: list[Mapping[str, float]]  # per coarse code: weights over its fine types
    coarse: list[str]
    notes: list[tuple[str, ...]]  # per patient: why the prediction extrapolates
    kinds: dict[str, list[Any]]  # kind of note -> [count, first label, first note]

    def tumour_type(self, i: int) -> str:
        """The validated tumour type of patient ``i`` (a new type: its label)."""
        ty = int(self.type[i])
        if ty >= _NEW_TYPE_BASE:
            return self.new_labels[ty - _NEW_TYPE_BASE]
        n_fine = len(vocab.TUMOUR_TYPES)
        return vocab.TUMOUR_TYPES[ty] if ty < n_fine else self.coarse[ty - n_fine]


def _validate(
    records: Iterable[dict[str, Any]],
    labels: Sequence[Any],
    new_type: Literal["error", "population"],
    endpoint: str,
    ranges: Mapping[str, Any],
) -> _Batch:
    """Validate patient records (as :func:`validate_patient`) into a :class:`_Batch`.

    ``records`` holds :func:`validate_patient` keywords, one dict per label; an invalid record
    raises its ``ValueError``, prefixed by ``patient <label>:`` when there are several.
    """
    n = len(labels)
    coarse = list(ranges["type_weights"])
    line_no = np.empty(n, dtype=np.int64)
    type_no = np.empty(n, dtype=np.int64)
    prior_pfs = np.full(n, np.nan)
    lx = np.zeros(n)
    x_mix = np.zeros(n, dtype=bool)
    gq = np.zeros(n)
    planned = np.empty(n)
    prior = np.empty(n)
    notes: list[tuple[str, ...]] = [()] * n
    new_labels: dict[str, int] = {}
    seen: dict[str, list[Any]] = {}
    n_fine = len(vocab.TUMOUR_TYPES)
    for i, rec in enumerate(records):
        try:
            p = validate_patient(**rec, new_type=new_type, endpoint=endpoint, ranges=ranges)
        except ValueError as err:
            if n > 1:
                raise ValueError(f"patient {labels[i]!r}: {err}") from None
            raise
        line_no[i] = _LINE_INDEX[p.line]
        if p.new_type:
            type_no[i] = _NEW_TYPE_BASE + new_labels.setdefault(p.tumour_type, len(new_labels))
        elif p.tumour_type in vocab.TUMOUR_TYPES:
            type_no[i] = vocab.TUMOUR_TYPES.index(p.tumour_type)
        else:
            type_no[i] = n_fine + coarse.index(p.tumour_type)
        planned[i] = p.planned_gbq
        prior[i] = p.prior_gbq
        if p.prior_pfs_months is not None:
            prior_pfs[i] = p.prior_pfs_months
        if not spec.line_spec(p.line).is_first:  # the first line ignores x and activity
            cum = F.cumulative_gbq(p.prior_gbq, p.planned_gbq, p.line)
            lx[i], gq[i] = F.covariates(p.prior_pfs_months, cum)
            # 188Re-HEDP without a prior PFS: the pilot's interval law, as the model fits it
            x_mix[i] = p.prior_pfs_months is None and not spec.line_spec(p.line).adds_lu177
        if p.extrapolation:
            notes[i] = p.extrapolation
            for kind, note in zip(p.extrapolation_kinds, p.extrapolation, strict=True):
                if kind in seen:
                    seen[kind][0] += 1
                else:
                    seen[kind] = [1, labels[i], note]
    return _Batch(
        labels=list(labels),
        line=line_no,
        type=type_no,
        prior_pfs=prior_pfs,
        lx=lx,
        x_mix=x_mix,
        x_nodes=np.log(np.asarray(F.re188_prior_pfs_nodes(*ranges["re188_prior_pfs"])) / F.X_REF),
        gq=gq,
        planned=planned,
        prior=prior,
        new_labels=list(new_labels),
        coarse_weights=[ranges["type_weights"][c] for c in coarse],
        coarse=coarse,
        notes=notes,
        kinds=seen,
    )


def _warn(b: _Batch, *, by_kind: bool, stacklevel: int) -> None:
    """An :class:`ExtrapolationWarning` per note of every patient, or (``by_kind``) one per
    kind of note with the number of patients concerned and the first one's note.
    ``stacklevel`` counts from the caller of this function."""
    n = len(b.labels)
    if not by_kind:
        for lab, notes in zip(b.labels, b.notes, strict=True):
            who = f"patient {lab!r}: " if n > 1 else ""
            for note in notes:
                warnings.warn(
                    f"{who}the prediction extrapolates: {note}",
                    ExtrapolationWarning,
                    stacklevel=stacklevel + 1,
                )
        return
    for count, lab, note in b.kinds.values():
        who = (
            f"{count} of {n} patients extrapolate, e.g. patient {lab!r}"
            if count > 1
            else f"patient {lab!r}"
            if n > 1
            else "the prediction extrapolates"
        )
        more = "; each patient's notes are in the 'extrapolation' column" if n > 1 else ""
        warnings.warn(f"{who}: {note}{more}", ExtrapolationWarning, stacklevel=stacklevel + 1)


def _new_type_effects(b: _Batch, seed: int | None, n_draws: int) -> list[np.ndarray]:
    """Standard-normal type effects of the batch's new tumour types, one vector of
    ``n_draws`` per new label in order of first appearance, from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n_draws) for _ in b.new_labels]


def _log_scale(
    th: Mapping[str, np.ndarray],
    line: str,
    endpoint: str,
    zs: Sequence[np.ndarray],
    lx: Any,
    gq: Any,
) -> list[np.ndarray]:
    r"""The AFT log scale, :math:`\log\lambda = \alpha + \sigma z` plus, on a salvage line,
    :func:`netbayes.formulas.survival.salvage_shift` of the covariates.

    Parameters
    ----------
    th : mapping of str to numpy.ndarray
        Posterior draws (the draw axis broadcasting against ``zs``, ``lx`` and ``gq``).
    line : str
        Treatment line (its block: first line or salvage).
    endpoint : {"pfs", "os"}
    zs : sequence of numpy.ndarray
        Standardised tumour-type effects, one array per component.
    lx, gq : float or numpy.ndarray
        The salvage covariates (:func:`netbayes.formulas.survival.covariates`); ignored on the
        first line.

    Returns
    -------
    list of numpy.ndarray
        :math:`\log\lambda` per component (the shift computed once and added to each).
    """
    alpha, sigma, _ = F.type_intercepts(th, line, endpoint)
    if spec.line_spec(line).is_first:
        return [alpha + sigma * z for z in zs]
    shift = F.salvage_shift(th, line, lx, gq)
    return [alpha + sigma * z + shift for z in zs]


def _survival_components(
    th: Mapping[str, np.ndarray],
    line: str,
    endpoint: str,
    ty: int,
    lx: Any,
    gq: Any,
    z_new: Sequence[np.ndarray],
    coarse_weights: Sequence[Mapping[str, float]],
    x_nodes: np.ndarray | None = None,
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Survival parameter draws of patients of one line and tumour type.

    Parameters
    ----------
    th : mapping of str to numpy.ndarray
        Survival posterior draws (draw axis first).
    line : str
        Treatment line.
    endpoint : {"pfs", "os"}
    ty : int
        Tumour-type code of :class:`_Batch`: fine, coarse (a mixture over its fine types in
        :data:`netbayes.vocab.TUMOUR_TYPES` order, zero weights dropped) or new (its effect
        from ``z_new``).
    lx, gq : float or numpy.ndarray
        Salvage covariates: scalars for one patient, ``(patients, 1)`` columns for several.
    z_new : sequence of numpy.ndarray
        The new types' standard-normal effects (:func:`_new_type_effects`).
    coarse_weights : sequence of mapping
        Weights of each coarse type (:attr:`_Batch.coarse_weights`).
    x_nodes : numpy.ndarray, optional
        A mixture over these prior-PFS covariates :math:`\\log(x/36)`, equally weighted, in
        place of ``lx`` (a 188Re-HEDP patient without a prior PFS, :attr:`_Batch.x_mix`):
        every tumour-type component splits into one component per node.

    Returns
    -------
    k : numpy.ndarray, shape (draws,)
        The shape.
    loglam : list of numpy.ndarray
        :math:`\\log\\lambda` per mixture component: shape ``(draws,)`` on the first line,
        else the broadcast of the draws against ``lx``/``gq``.
    w : numpy.ndarray, shape (components,)
        Component weights (1 for a fine or new type).
    """
    _, _, z = F.type_intercepts(th, line, endpoint)
    n_fine = len(vocab.TUMOUR_TYPES)
    if ty >= _NEW_TYPE_BASE:
        cols = [(z_new[ty - _NEW_TYPE_BASE], 1.0)]
    elif ty < n_fine:
        cols = [(z[:, ty], 1.0)]
    else:
        wts = coarse_weights[ty - n_fine]
        cols = [(z[:, j], wts[m]) for j, m in enumerate(vocab.TUMOUR_TYPES) if wts.get(m, 0) > 0]
    if x_nodes is None:
        loglam = _log_scale(th, line, endpoint, [c for c, _ in cols], lx, gq)
        return F.shape(th, line, endpoint), loglam, np.array([v for _, v in cols])
    loglam, w = [], []
    for c, v in cols:
        for xn in x_nodes:
            loglam += _log_scale(th, line, endpoint, [c], np.full_like(np.asarray(gq, float), xn),
                                 gq)  # fmt: skip
            w.append(v / len(x_nodes))
    return F.shape(th, line, endpoint), loglam, np.array(w)


def _toxicity_eta(
    th: Mapping[str, np.ndarray], line: str, planned: np.ndarray, prior: np.ndarray
) -> np.ndarray:
    """Toxicity linear predictor of patients on ``line``, shape (patients, draws), as
    :func:`netbayes.formulas.toxicity.linear_predictor` with the line's activity conversion
    (188Re-HEDP: GBq-equivalent by ``theta``) and cohort effect, operation by operation."""
    key = T.LINE_EFFECT[line]
    delta = np.zeros(th["theta"].shape[0]) if key is None else th[key]
    a = planned[:, None]
    act = a if spec.line_spec(line).adds_lu177 else th["theta"] * a
    return T.linear_predictor(act, prior[:, None], th["beta_activity"], th["beta_prior"], delta)


def _toxicity_risk(
    th: Mapping[str, np.ndarray], line: str, planned: float, prior: float
) -> np.ndarray:
    """Draws of P(grade >= III) of one patient per cell line and any line, shape (draws, 4):
    :func:`netbayes.formulas.toxicity.grade3_risk` from :func:`_toxicity_eta` (the any-line
    risk by quadrature)."""
    th = T._draws(th)  # grade3_risk's checks of the parameters' shapes
    eta = _toxicity_eta(th, line, np.array([planned]), np.array([prior]))
    per_line, any_line = T._grade3_from_eta(th, eta.T)
    risk = np.concatenate([per_line[:, 0, :], any_line[:, :1]], axis=1)  # (draws, 4)
    _finite("P(grade >= III)", risk)
    if np.any(risk < 0) or np.any(risk > 1):
        raise ValueError("P(grade >= III) outside [0, 1]; the toxicity formulas are broken")
    return risk
