"""What the loop learns from decisions: a linear model over the features, by name.

Logistic regression (liblinear, balanced classes) is BMI's and a strong default on short texts; naive Bayes
is ASReview LAB's default classifier, kept to compare. Both score the whole pool in one sparse product, so
re-prioritising 30,000 results costs milliseconds; the fit is what the refit budget goes to.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB


class Classifier(Protocol):
    def fit(self, x: sp.csr_matrix, y: np.ndarray, weight: np.ndarray | None = None) -> Classifier: ...

    def score(self, x: sp.csr_matrix) -> np.ndarray: ...


class Logistic:
    """L2 logistic regression; ``c`` is the inverse regularisation (BMI uses a weak one)."""

    def __init__(self, c: float = 1.0, seed: int = 0) -> None:
        self.model = LogisticRegression(C=c, solver="liblinear", class_weight="balanced", random_state=seed,
                                        tol=1e-3, max_iter=200)

    def fit(self, x: sp.csr_matrix, y: np.ndarray, weight: np.ndarray | None = None) -> Logistic:
        self.model.fit(x, y, sample_weight=weight)
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


CLASSIFIERS = {"logistic": Logistic, "nb": NaiveBayes}


def new_classifier(name: str = "logistic", seed: int = 0) -> Classifier:
    """A fresh classifier by name (``CLASSIFIERS``)."""
    if name not in CLASSIFIERS:
        raise ValueError(f"unknown classifier '{name}': use one of {', '.join(CLASSIFIERS)}")
    return CLASSIFIERS[name](seed=seed)
