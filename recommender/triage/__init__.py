"""Triage and push: shortlist the transferable results of a corpus and say who should get each one.

    from recommender.triage import shortlist, load_funds, push_for_result, push_for_need
"""

from recommender.triage.enterprises import load_enterprises
from recommender.triage.funds import Fund, load_funds, match_funds
from recommender.triage.market import MarketPull, market_pull
from recommender.triage.push import push_for_need, push_for_result
from recommender.triage.readiness import readiness
from recommender.triage.shortlist import ScoredResult, ShortlistEntry, score_results, shortlist, transferability
from recommender.triage.targets import PushTarget

__all__ = [
    "Fund", "MarketPull", "PushTarget", "ScoredResult", "ShortlistEntry", "load_enterprises", "load_funds",
    "market_pull", "match_funds", "push_for_need", "push_for_result", "readiness", "score_results", "shortlist",
    "transferability",
]
