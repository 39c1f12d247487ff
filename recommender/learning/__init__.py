"""Learning from judgements: pair features, a calibrated four-level grader, a learned re-ranker, feedback."""
