"""What the loop learns from decisions: a linear model over the features, by name.

A linear SVM with ASReview LAB 3's class balancing (its default, ELAS u4) learns a topic from few decisions
and fits in milliseconds; logistic regression (liblinear, balanced classes) is BMI's and gives probabilities;
naive Bayes was ASReview LAB 1's default, kept to compare. All score the whole pool in one sparse product, so
re-prioritising 30,000 results costs milliseconds; the fit is what the refit budget goes to.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.svm import LinearSVC


class Classifier(Protocol):
    def fit(self, x: sp.csr_matrix, y: np.ndarray, weight: np.ndarray | None = None) -> Classifier: ...

    def score(self, x: sp.csr_matrix) -> np.ndarray: ...


def balanced_weights(y: np.ndarray, ratio: float) -> np.ndarray:
    """ASReview LAB 3's "balanced" sample weights: all positives together weigh ``ratio`` times all negatives
    (``ratio`` 1: sklearn's class_weight="balanced"), rescaled to sum to the number of rows."""
    y = np.asarray(y)
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())
    if not n1 or not n0:
        return np.ones(len(y))
    w = np.where(y == 1, 1.0, n1 / (ratio * n0))
    return w * (len(y) / w.sum())


class Logistic:
    """L2 logistic regression; ``c`` is the inverse regularisation (BMI uses a weak one); ``ratio``: the
    positives' total weight over the negatives' (1: balanced classes)."""

    def __init__(self, c: float = 1.0, seed: int = 0, ratio: float = 1.0) -> None:
        self.ratio = ratio
        self.model = LogisticRegression(C=c, solver="liblinear", random_state=seed, tol=1e-3, max_iter=200)

    def fit(self, x: sp.csr_matrix, y: np.ndarray, weight: np.ndarray | None = None) -> Logistic:
        w = balanced_weights(y, self.ratio)
        self.model.fit(x, y, sample_weight=w if weight is None else w * weight)
        return self

    def score(self, x: sp.csr_matrix) -> np.ndarray:
        return np.asarray(self.model.decision_function(x), dtype=float)

    def proba(self, x: sp.csr_matrix) -> np.ndarray:
        return self.model.predict_proba(x)[:, 1]


class NaiveBayes:
    """Multinomial naive Bayes (ASReview LAB's default, alpha 3.822)."""

    def __init__(self, alpha: float = 3.822, seed: int = 0) -> None:
        self.model = MultinomialNB(alpha=alpha)

    def fit(self, x: sp.csr_matrix, y: np.ndarray, weight: np.ndarray | None = None) -> NaiveBayes:
        self.model.fit(x, y, sample_weight=weight)
        return self

    def score(self, x: sp.csr_matrix) -> np.ndarray:
        log = self.model.predict_log_proba(x)
        return np.asarray(log[:, 1] - log[:, 0], dtype=float)

    def proba(self, x: sp.csr_matrix) -> np.ndarray:
        return self.model.predict_proba(x)[:, 1]


class LinearSVM:
    """Linear SVM, squared hinge: ASReview LAB 3's default classifier (ELAS u4: C 0.11, positives weigh 9.8
    times the negatives). No probabilities: the loop's recall estimate fits a logistic model beside it."""

    def __init__(self, c: float = 0.11, seed: int = 0, ratio: float = 9.8) -> None:
        self.ratio = ratio
        self.model = LinearSVC(C=c, loss="squared_hinge", random_state=seed, max_iter=2000)

    def fit(self, x: sp.csr_matrix, y: np.ndarray, weight: np.ndarray | None = None) -> LinearSVM:
        w = balanced_weights(y, self.ratio)
        self.model.fit(x, y, sample_weight=w if weight is None else w * weight)
        return self

    def score(self, x: sp.csr_matrix) -> np.ndarray:
        return np.asarray(self.model.decision_function(x), dtype=float)


CLASSIFIERS = {"logistic": Logistic, "nb": NaiveBayes, "svm": LinearSVM}
DEFAULT_CLASSIFIER = "svm"  # eval/benchmarks/REVIEW.md: the variants measured


def new_classifier(name: str = DEFAULT_CLASSIFIER, seed: int = 0, **params: float) -> Classifier:
    """A fresh classifier by name (``CLASSIFIERS``); ``params`` go to its constructor (c, ratio, alpha)."""
    if name not in CLASSIFIERS:
        raise ValueError(f"unknown classifier '{name}': use one of {', '.join(CLASSIFIERS)}")
    return CLASSIFIERS[name](seed=seed, **params)
