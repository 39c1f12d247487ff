"""techmatch CLI commands for learning: ``grade`` (the contract) and ``train`` (install a grader in an index).

``train`` is the feedback loop: judged files plus broker feedback (``techmatch feedback export``) become
judgements; a part of the needs is held back, the new grader is scored on it against the installed one,
and it replaces the installed one only if it is not worse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from recommender.errors import UserError

HOLDOUT_FRACTION = 0.2


def _read_qrels(path: Path):
    from recommender.trec import read_qrels

    qrels = read_qrels(path)  # a JudgementFileError names the file, line and field of any problem
    if not qrels:
        raise UserError(f"{path}: no judgements in this qrels file")
    return qrels


CrossEncoderOption = Annotated[bool, typer.Option(
    "--cross-encoder", help="also fine-tune the e5 cross-encoder on the judged pairs and feed the learned model its "
    "out-of-fold probabilities (CPU minutes per fold, resumable; eval/benchmarks/CROSS_ENCODER.md)")]
EpochsOption = Annotated[int, typer.Option("--cross-encoder-epochs", min=1, max=20, help="its epochs")]
LayersOption = Annotated[int, typer.Option("--cross-encoder-layers", min=1, max=12,
                                           help="its top layers that learn (the others stay frozen)")]
WorkOption = Annotated[Path | None, typer.Option(
    "--work", help="folder for its checkpoints (a rerun resumes); default: <data folder>/cross-encoder-work")]


def cross_encoder_config(enabled: bool, epochs: int, layers: int, seed: int):
    if not enabled:
        return None
    from recommender.learning.cross_encoder import CrossEncoderConfig

    return CrossEncoderConfig(epochs=epochs, train_layers=layers, seed=seed)


def work_folder(work: Path | None) -> Path:
    from recommender.settings import default_data_dir

    folder = work or default_data_dir() / "cross-encoder-work"
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--work {folder} is a file, not a folder")
    return folder


def _train_grader(index, needs, qrels, seed: int, cross_encoder=None, work: Path | None = None):
    from recommender.learning.training import train_grader

    # a TrainingDataError says what does not fit
    return train_grader(index, needs, qrels, seed=seed, cross_encoder=cross_encoder, work=work)


def grade(
    train_needs: Annotated[Path, typer.Option("--train-needs", help="needs whose judgements teach the grader")],
    train_qrels: Annotated[Path, typer.Option("--train-qrels", help="TREC judgements of those needs")],
    needs: Annotated[Path, typer.Option("--needs", help="needs of the pairs to grade")],
    results: Annotated[Path, typer.Option("--results", help="results (all of them are indexed)")],
    pairs: Annotated[Path, typer.Option("--pairs", help="pairs to grade: need_id<TAB>result_id a line")],
    out: Annotated[Path, typer.Option("--out", help="output: need_id<TAB>result_id<TAB>grade a line")],
    seed: Annotated[int, typer.Option("--seed", help="model seed")] = 0,
    with_probability: Annotated[bool, typer.Option("--with-probability", help="add the grade's probability")] = False,
    save_grader: Annotated[Path | None, typer.Option("--save-grader", help="also save the grader here")] = None,
    cross_encoder: CrossEncoderOption = False,
    cross_encoder_epochs: EpochsOption = 3,
    cross_encoder_layers: LayersOption = 4,
    work: WorkOption = None,
) -> None:
    """Learn the relevance grade from judged pairs, then grade every pair of --pairs (the contract)."""
    from recommender.pipeline import new_index
    from recommender.records import load_records
    from recommender.trec import read_pairs
    from techmatch.checks import output_file, output_folder

    output_file(out, [train_needs, train_qrels, needs, results, pairs])
    if save_grader is not None:
        output_folder(save_grader, [train_needs, train_qrels, needs, results, pairs, out], "--save-grader")
    config = cross_encoder_config(cross_encoder, cross_encoder_epochs, cross_encoder_layers, seed)
    work = work_folder(work) if cross_encoder else None
    pair_list = read_pairs(pairs)
    if not pair_list:
        raise UserError(f"{pairs}: no pairs to grade in this file (need_id<TAB>result_id a line)")
    result_records, _ = load_records(results, "result")
    need_records = {n.id: n for n in load_records(needs, "need")[0]}
    unknown_needs = sorted({n for n, _ in pair_list if n not in need_records})
    unknown_results = sorted({r for _, r in pair_list if r not in {x.id for x in result_records}})
    if unknown_needs or unknown_results:
        what = [f"need '{unknown_needs[0]}' ({len(unknown_needs)} unknown)"] if unknown_needs else []
        what += [f"result '{unknown_results[0]}' ({len(unknown_results)} unknown)"] if unknown_results else []
        raise UserError(f"{pairs}: pairs name ids missing from --needs/--results: {', '.join(what)}")
    train_records, _ = load_records(train_needs, "need")
    qrels = _read_qrels(train_qrels)
    index = new_index("result")
    index.build(result_records)
    grader = _train_grader(index, train_records, qrels, seed, config, work)
    if save_grader is not None:
        grader.save(save_grader)
    proba = grader.predict_proba(index, [need_records[n] for n, _ in pair_list], [r for _, r in pair_list])
    grades = grader.grade_from_proba(proba)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for (need_id, result_id), level, row in zip(pair_list, grades, proba):
            extra = f"\t{row[grader.levels.index(int(level))]:.4f}" if with_probability else ""
            handle.write(f"{need_id}\t{result_id}\t{int(level)}{extra}\n")
    counts = {int(v): int(c) for v, c in zip(*np.unique(grades, return_counts=True))}
    typer.echo(f"graded {len(pair_list)} pairs (grades {counts}) -> {out}")


def _score(grader, index, needs_by_id, qrels) -> float | None:
    from recommender.learning.training import grade_score, judged_pairs

    pair_needs, pair_ids, grades = judged_pairs(index, list(needs_by_id.values()), qrels)
    return round(grade_score(grades, grader.predict_grade(index, pair_needs, pair_ids)), 4)


def train(
    index_dir: Annotated[Path, typer.Option("--index", help="index folder (from 'techmatch index') to install into")],
    needs: Annotated[list[Path] | None, typer.Option("--needs", help="needs files of the judgements")] = None,
    qrels: Annotated[list[Path] | None, typer.Option("--qrels", help="TREC judgement files")] = None,
    feedback: Annotated[list[Path] | None, typer.Option("--feedback", help="'techmatch feedback export' files")] = None,
    holdout: Annotated[float, typer.Option("--holdout", min=0.05, max=0.5, help="share of needs held back")] = (
        HOLDOUT_FRACTION),
    seed: Annotated[int, typer.Option("--seed", help="split and model seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as one JSON object")] = False,
    cross_encoder: CrossEncoderOption = False,
    cross_encoder_epochs: EpochsOption = 3,
    cross_encoder_layers: LayersOption = 4,
    work: WorkOption = None,
    contrastive: Annotated[bool, typer.Option("--contrastive", help="first fine-tune the dense model (e5-small) on "
                                              "the judgements; re-embed the results with it only if out-of-fold "
                                              "recall@100 improves")] = False,
    contrastive_folds: Annotated[int, typer.Option("--contrastive-folds", min=2, max=20,
                                                   help="its folds, split by need")] = 5,
    contrastive_layers: Annotated[int, typer.Option("--contrastive-layers", min=1, max=12,
                                                    help="its top layers that learn (the others stay frozen)")] = 2,
    contrastive_epochs: Annotated[int, typer.Option("--contrastive-epochs", min=1, max=50, help="its epochs")] = 4,
    contrastive_threads: Annotated[int, typer.Option("--contrastive-threads", min=1, max=64,
                                                     help="its torch threads")] = 2,
    contrastive_recall_at: Annotated[int, typer.Option("--contrastive-recall-at", min=1, help="kept only if recall at "
                                                       "this depth improves (lower it for a corpus of a few hundred)")
                                     ] = 100,
) -> None:
    """Retrain the grader from judged files plus broker feedback; install it only if it is not worse.

    With --cross-encoder the held-back needs also score the same grader without it, so the report shows
    what the cross-encoder adds; the service grades without it unless TECHMATCH_SERVE_CROSS_ENCODER=true.
    With --contrastive the dense model is fine-tuned first (in-batch and judged grade-0 negatives) and kept only
    when it improves out-of-fold recall@100; the grader is then retrained on the index as it stands."""
    from sklearn.model_selection import GroupShuffleSplit

    from recommender.learning.feedback import feedback_to_qrels, merge_qrels, read_feedback_file
    from recommender.learning.training import grade_score, judged_pairs
    from recommender.matcher import GRADER_FOLDER, Matcher
    from recommender.records import load_records

    if not qrels and not feedback:
        raise UserError("nothing to learn from: give --qrels FILE (with --needs) and/or --feedback FILE")
    config = cross_encoder_config(cross_encoder, cross_encoder_epochs, cross_encoder_layers, seed)
    work = work_folder(work) if cross_encoder else None
    matcher = Matcher.load(index_dir)
    needs_by_id = dict(matcher.needs.records) if matcher.needs is not None else {}
    for path in needs or []:
        needs_by_id.update({n.id: n for n in load_records(path, "need")[0]})
    sources = [_read_qrels(p) for p in qrels or []]
    rows = [row for path in feedback or [] for row in read_feedback_file(path)]
    judgements = merge_qrels(*sources, feedback_to_qrels(rows))
    judgements = {q: g for q, g in judgements.items() if q in needs_by_id}
    if not judgements:
        raise UserError("no judgement names a known need: index the needs ('techmatch index --needs') or give --needs")
    need_ids = np.asarray(sorted(judgements))
    if len(need_ids) < 4:
        raise UserError(f"judgements cover only {len(need_ids)} needs: at least 4 are needed to hold some back")
    tuned = None
    if contrastive:
        from techmatch.commands.contrastive import run_contrastive

        tuned = run_contrastive(index_dir, matcher, needs_by_id, judgements, contrastive_folds, contrastive_layers,
                                contrastive_epochs, contrastive_threads, seed, contrastive_recall_at)
    train_idx, held_idx = next(GroupShuffleSplit(1, test_size=holdout, random_state=seed).split(need_ids,
                                                                                               groups=need_ids))
    train_q = {q: judgements[q] for q in need_ids[train_idx]}
    held_q = {q: judgements[q] for q in need_ids[held_idx]}
    candidate = _train_grader(matcher.results, list(needs_by_id.values()), train_q, seed, config, work)
    held_needs, held_ids, held_grades = judged_pairs(matcher.results, list(needs_by_id.values()), held_q)
    median = int(np.median([g for q in train_q.values() for g in q.values()]))
    report = {
        "judged_pairs": sum(len(v) for v in judgements.values()), "feedback_rows": len(rows),
        "train_needs": len(train_q), "held_back_needs": len(held_q), "held_back_pairs": len(held_grades),
        "metric": "1/(1+MAE) on held-back needs",
        "constant_median": round(grade_score(held_grades, [median] * len(held_grades)), 4),
        "before": None, "after": round(grade_score(held_grades, candidate.predict_grade(
            matcher.results, held_needs, held_ids)), 4),
    }
    if candidate.plain is not None:
        report["after_without_cross_encoder"] = round(grade_score(held_grades, candidate.plain.predict_grade(
            matcher.results, held_needs, held_ids)), 4)
    if matcher.grader is not None:
        try:
            report["before"] = round(grade_score(held_grades, matcher.grader.predict_grade(
                matcher.results, held_needs, held_ids)), 4)
        except Exception as exc:  # an installed grader that no longer fits the index: replace it
            report["before_error"] = str(exc)
    install = report["before"] is None or report["after"] >= report["before"]
    report["installed"] = bool(install)
    if install:
        Matcher.install_grader(index_dir, candidate)
    if tuned is not None:
        report["contrastive"] = tuned
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    if tuned is not None:
        from techmatch.commands.contrastive import echo_report

        echo_report(tuned, index_dir)
    typer.echo(f"held back {report['held_back_needs']} needs ({report['held_back_pairs']} pairs); "
               f"score {report['metric']}")
    typer.echo(f"  constant median grade: {report['constant_median']}")
    typer.echo(f"  installed grader (before): {report['before'] if report['before'] is not None else 'none'}")
    typer.echo(f"  retrained grader (after):  {report['after']}")
    if "after_without_cross_encoder" in report:
        typer.echo(f"  the same without the cross-encoder: {report['after_without_cross_encoder']}")
    typer.echo(f"{'installed' if install else 'NOT installed (worse than the installed grader)'}: "
               f"{index_dir / GRADER_FOLDER}")


def distil_static(
    out: Annotated[Path | None, typer.Option("--out", help="model folder (default: TECHMATCH_STATIC_MODEL, "
                                             "~/.local/share/techmatch/static-e5-small)")] = None,
    vocab_size: Annotated[int, typer.Option("--vocab-size", min=10, help="commonest dictionary words kept "
                                            "(plus the domain lexicon and their characters)")] = 30000,
    dim: Annotated[int, typer.Option("--dim", min=8, max=384, help="dimensions kept by PCA")] = 256,
    words: Annotated[Path | None, typer.Option("--words", help="use these words instead (one a line, "
                                               "optionally 'word frequency')")] = None,
    corpus: Annotated[list[Path] | None, typer.Option("--corpus", help="records files (.jsonl/.csv/.xlsx) whose "
                                                      "words join the vocabulary: the results to be indexed")] = None,
) -> None:
    """Distil the static word-vector model the 'static' signal uses: every word through e5-small, PCA, SIF."""
    from embeddings.factory import create_embedder
    from embeddings.static import distil, jieba_vocabulary, save_static
    from recommender.settings import PipelineSettings

    settings = PipelineSettings()
    folder = out or settings.static_model
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {folder} is a file, not a folder")
    if words is not None:
        if not words.is_file():
            raise UserError(f"words file {words} does not exist")
        frequencies: dict[str, float] = {}
        for number, line in enumerate(words.read_text(encoding="utf-8").splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) > 2 or (len(parts) == 2 and not parts[1].replace(".", "", 1).isdigit()):
                raise UserError(f"{words}, line {number}: expected 'word' or 'word frequency', got '{line}'")
            frequencies[parts[0].lower()] = float(parts[1]) if len(parts) == 2 else 1.0
        if not frequencies:
            raise UserError(f"words file {words} is empty: give one word a line, optionally 'word frequency'")
    else:
        from recommender.records import load_records

        texts = [r.text for path in corpus or [] for r in load_records(path, "result")[0]]
        frequencies = jieba_vocabulary(vocab_size, texts)
    teacher = create_embedder(settings.model, None, settings.e5_runtime)
    vocabulary, vectors, info = distil(teacher, frequencies, dim)
    save_static(folder, vocabulary, vectors, info)
    typer.echo(f"{len(vocabulary)} words, {vectors.shape[1]} dimensions, {info['encode_seconds']} s to encode: "
               f"{folder}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("grade")(grade)
    app.command("train")(train)
    app.command("distil-static")(distil_static)
