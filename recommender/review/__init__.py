"""The review loop (issue 20): every decision a broker makes re-ranks what is read next.

Continuous active learning as in Cormack and Grossman's CAL/BMI and ASReview LAB, in small swappable parts:
``features`` (what a result looks like to the model), ``classifier`` (what it learns from decisions),
``query`` (what to read next and in what batch), ``stopping`` (when reading more is no longer worth it),
``loop`` (one campaign's state: refit and re-prioritise) and ``simulate`` (replaying a labelled review).
"""

from recommender.review.classifier import CLASSIFIERS, new_classifier
from recommender.review.features import ReviewFeatures, build_features
from recommender.review.loop import ReviewLoop
from recommender.review.simulate import SimulationResult, simulate
from recommender.review.stopping import RecallEstimate, estimate_recall, knee_stop

__all__ = ["CLASSIFIERS", "RecallEstimate", "ReviewFeatures", "ReviewLoop", "SimulationResult", "build_features",
           "estimate_recall", "knee_stop", "new_classifier", "simulate"]
