r"""Patient and cohort predictions from stored posteriors (NumPy, pandas and xarray only).

Importing this module imports neither PyMC, PyTensor, ArviZ nor nutpie: predictions are closed
forms evaluated on plain posterior draws (:mod:`netbayes.formulas.survival` and the toxicity
formulas), loaded from the posterior store (:mod:`netbayes.store`).

Quick start
-----------
>>> from netbayes.predict import Predictor
>>> pred = Predictor.load()                     # the shipped posteriors  # doctest: +SKIP
>>> p = pred.patient(tumour_type="midgut", prior_pfs_months=30, prior_gbq=29.9,
...                  planned_gbq=14.9, line="R-PRRT")                     # doctest: +SKIP
>>> p.summary            # tidy table: median PFS, P(PFS > t), P(grade >= III), 95% ETI
>>> p.curve              # S(t) with its credible band on the time grid
>>> p.draws              # the same quantities as raw posterior draws (xarray.Dataset)
>>> p.sentence()         # "median PFS after R-PRRT 14.2 months (95% ETI 11.0-17.9)"
>>> pred.summaries(df)   # many patients (a table): one row of summaries each  # doctest: +SKIP

A patient record
----------------
:data:`FIELDS` lists the fields. ``prior_gbq`` is the cumulative 177Lu-octreotate activity given
*before* the planned line, ``planned_gbq`` the activity planned in it (GBq of 188Re for
188Re-HEDP). The survival model's cumulative activity is their sum for a 177Lu line.

Inputs are validated field by field: a wrong type, unit, range or vocabulary raises a
``ValueError`` naming the field, the value and what is allowed. Inputs the published data do not
cover (prior PFS below the selection threshold of the line or beyond
:data:`~netbayes.predict.inputs.PRIOR_PFS_DATA_MAX` months, a prior PFS given for 188Re-HEDP,
activities outside the calibrated ranges, PFS after 188Re-HEDP) give an
:class:`ExtrapolationWarning`: the prediction extrapolates the model beyond its data. Outputs
are checked to be finite. Every answer carries its *prior share* (:mod:`.share`: the part of
its posterior variance that comes from parameters whose posterior is essentially their prior);
above 50% a :class:`PriorDominatedWarning` names those parameters and their kind of prior.

Layout
------
:mod:`.inputs` (the patient record, validation, calibrated ranges, default activities),
:mod:`.evaluate` (the one evaluation path every method shares: validated patients as arrays,
their survival shape and log scale per mixture component, the toxicity linear predictor),
:mod:`.kernels` (the vectorised reducers of the batch summaries), :mod:`.results`
(:class:`Prediction` with its typed accessors :meth:`~Prediction.median`,
:meth:`~Prediction.p_event_free` and :meth:`~Prediction.p_grade3plus`;
:class:`CohortPrediction`) and :mod:`.predictor` (:class:`Predictor`). The survival formulas
come from the posterior's family (:mod:`netbayes.families`).

Tumour types
------------
A fine type of :data:`netbayes.vocab.TUMOUR_TYPES` uses its fitted effect; the coarse
``gi_non_pancreatic`` is a mixture over foregut/midgut/hindgut with the Rotterdam mix as weights.
Any other label is refused unless ``new_type="population"``: the patient's type effect is then
a new draw from the population distribution, :math:`N(0, \sigma^2)`, per posterior draw.
"""

from __future__ import annotations

from netbayes.calibration import calibrated_ranges
from netbayes.predict.inputs import (
    DEFAULT_T_PROBS,
    DEFAULT_TIMES,
    FIELDS,
    LIMITS,
    MIN_PRIOR_PFS_MONTHS,
    ExtrapolationWarning,
    _check_times,  # noqa: F401  (the CLI's --times check)
    default_activities,
    validate_patient,
)
from netbayes.predict.kernels import (  # noqa: F401  (tested directly)
    DEFAULT_CHUNK_SIZE,
    _mixture_median,
    _order_statistics,
    _summarise,
)
from netbayes.predict.predictor import Predictor, predict
from netbayes.predict.results import (
    CohortPrediction,
    Estimate,
    Prediction,
    StandardisedPrediction,
)
from netbayes.predict.share import PriorDominatedWarning

__all__ = [
    "DEFAULT_TIMES",
    "DEFAULT_T_PROBS",
    "FIELDS",
    "LIMITS",
    "MIN_PRIOR_PFS_MONTHS",
    "CohortPrediction",
    "Estimate",
    "ExtrapolationWarning",
    "Prediction",
    "Predictor",
    "PriorDominatedWarning",
    "StandardisedPrediction",
    "calibrated_ranges",
    "default_activities",
    "predict",
    "validate_patient",
]
