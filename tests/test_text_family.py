"""The text family on the engine: passgan, seqgan and mle_lstm train on every data set the issue
names, resume exactly (mid-phase for seqgan), keep DDP ranks identical, sample and evaluate from a
checkpoint, and refuse bad input with one line before any work. (The parts themselves: sources,
networks, losses, metrics and Markov baselines against hand computations: test_text_parts.py.)"""

from __future__ import annotations

import csv
import json
import math
import os

import numpy as np
import pytest
import torch

from helpers import (assert_continued_run_equals_longer_run, assert_ddp_ranks_identical,
                     assert_stopped_run_resumes_exactly, compose_config, load_ckpt, train)
from gan_lab.errors import UserError

# helpers.TINY's batch, logger and callbacks apply to every model here (its image network widths
# only to passgan's unused entries); each model's own sizes:
BASE = ["data.batch_size=16", "print_config=false", "callbacks=minimal", "logger=csv"]
ORACLE = ["data=oracle_lstm", "data.source.vocab_size=20", "data.source.seq_len=6", "data.source.n_train=64",
          "data.source.n_test=40", "data.source.cache_dir=null"]
PASSGAN = ["model=passgan", "model.net.conv1d.dim=8", "model.net.conv1d.num_blocks=1", "model.n_critic=2"]
LSTM = ["model.generator.emb_dim=8", "model.generator.hidden_dim=8"]
MLE = ["model=mle_lstm", *LSTM]
# two batches of MLE, three of D pre-training, then G after every second D update
SEQGAN = ["model=seqgan", *LSTM, "model.discriminator.emb_dim=8", "model.discriminator.filter_widths=[1,2]",
          "model.discriminator.num_filters=[4,4]", "model.rollouts=2", "model.negatives.pool=40",
          "model.pretrain_g_steps=2", "model.pretrain_d_steps=3", "model.d_steps_per_g=2"]


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_LAB_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def lines_file(tmp_path):
    path = tmp_path / "leak.txt"
    words = ["password", "123456", "dragon", "monkey", "letmein", "qwerty", "abc123", "iloveyou", "sunshine", "x"]
    path.write_bytes(("\n".join(words * 8) + "\n").encode() + b"bad\xff\n")
    return path


def rows(run_dir):
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------ every model on its data


@pytest.mark.parametrize("model,data", [
    ("passgan", ["data=passwords"]), ("passgan", ["data=words"]), ("passgan", "lines"),
    ("seqgan", ORACLE), ("seqgan", ["data=passwords"]), ("mle_lstm", ORACLE), ("mle_lstm", ["data=passwords"]),
], ids=["passgan-passwords", "passgan-words", "passgan-text_lines", "seqgan-oracle", "seqgan-passwords",
        "mle_lstm-oracle", "mle_lstm-passwords"])
def test_every_model_trains_on_its_data(model, data, tmp_path, lines_file):
    if data == "lines":
        data = ["data=text_lines", f"data.source.root={lines_file}", "data.source.max_len=8"]
    model_args = {"passgan": PASSGAN, "seqgan": SEQGAN, "mle_lstm": MLE}[model]
    steps = 7 if model == "seqgan" else 3  # seqgan: 2 + 3 pre-training steps, 2 adversarial G updates
    args = [*model_args, *data, f"trainer.max_steps={steps}", "trainer.log_every_n_steps=1",
            "+callbacks.samples._target_=gan_lab.callbacks.SampleGrid",
            f"+callbacks.samples.dirpath={tmp_path}/samples", "+callbacks.samples.every_n_steps=100"]
    with pytest.warns(UserWarning, match="skipped 1 of 81 lines") if data[0] == "data=text_lines" else _nothing():
        train(args, tmp_path)
    ckpt = load_ckpt(tmp_path)
    meta = ckpt["gan_lab"]
    assert meta["counters"]["step"] == steps and meta["family"] == "text"
    assert meta["data_info"]["vocab"][0] == ""  # the character map / vocabulary rides along
    logged = rows(tmp_path)
    assert [int(r["step"]) for r in logged] == list(range(1, steps + 1))
    assert all(math.isfinite(float(v)) for r in logged for k, v in r.items() if v not in ("", None))
    lines = (tmp_path / "samples" / f"step_{steps:07d}.txt").read_text(encoding="utf-8").split("\n")
    assert len(lines) == 64 + 1 and lines[-1] == ""  # the first 64 samples, one per line
    if model == "seqgan":
        assert meta["phase"] == "adversarial"
        assert meta["counters"]["g_mle"] == 2 and meta["counters"]["d_pre"] == 3 and meta["counters"]["g_pg"] == 2
        assert meta["counters"]["d"] == 4  # two D updates before each G update
        assert {"reward", "d_accuracy", "mle_nll"} <= set(logged[0])
        assert any(k.startswith("rollout.") for k in ckpt["state_dict"])  # the rollout copy is saved
        assert not any(k.startswith("ema.") for k in ckpt["state_dict"])


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_seqgan_phases_rollout_and_negatives(tmp_path):
    """The rollout copy starts as the pre-trained G and then moves by 1 - delta per G update; the
    negative pool is read as documented; a seqgan checkpoint holds both."""
    from gan_lab.families.text import NegativePool

    pool = NegativePool(10, epochs=2)
    calls = []

    def sample(n):
        calls.append(n)
        return torch.arange(100 * len(calls), 100 * len(calls) + n)

    torch.manual_seed(0)
    first = [pool.take(4, sample) for _ in range(2)]  # pass 1 (4 + 4 of 10)
    again = [pool.take(4, sample) for _ in range(2)]  # pass 2: a new order of the same 10
    third = pool.take(4, sample)  # both passes used: sampled again
    assert calls == [10, 10]
    assert set(torch.cat(first).tolist()) <= set(range(100, 110)) and len(set(torch.cat(first).tolist())) == 8
    assert set(torch.cat(again).tolist()) <= set(range(100, 110))
    assert set(third.tolist()) <= set(range(200, 210))
    pool.invalidate()
    pool.take(4, sample)
    assert calls == [10, 10, 10]
    assert NegativePool(None, 3).take(5, sample).tolist() == list(range(400, 405))  # fresh every time

    # delta = 1 keeps the rollout network at the pre-trained G; delta = 0 makes it follow G
    base = [*SEQGAN, *ORACLE, "trainer.max_steps=7"]
    train(base + ["model.rollout_delay=1.0"], tmp_path / "frozen")
    train(base + ["model.rollout_delay=0.0"], tmp_path / "follow")
    frozen, follow = load_ckpt(tmp_path / "frozen")["state_dict"], load_ckpt(tmp_path / "follow")["state_dict"]
    g_keys = [k for k in follow if k.startswith("nets.generator.")]
    assert all(torch.equal(follow[k], follow["rollout." + k[len("nets.generator."):]]) for k in g_keys)
    train(base + ["model.rollout_delay=1.0", "trainer.max_steps=5"], tmp_path / "pretrained")
    pretrained = load_ckpt(tmp_path / "pretrained")["state_dict"]
    for k in g_keys:  # after pre-training the rollout copy is G; with delta = 1 it stays there
        assert torch.equal(frozen["rollout." + k[len("nets.generator."):]], pretrained[k])
    assert not torch.equal(frozen["nets.generator.out.weight"], pretrained["nets.generator.out.weight"])


# ------------------------------------------------------------------ exact resume, DDP


@pytest.mark.parametrize("stop_at", [3, 7], ids=["inside_pretrain_d", "inside_adversarial"])
def test_seqgan_stopped_mid_phase_resumes_exactly(stop_at, tmp_path):
    # ticks 0-1 pretrain_g, 2-4 pretrain_d (the negative pool half read at tick 3), then
    # adversarial with G after every second D update (tick 7: between two G updates)
    assert_stopped_run_resumes_exactly([*SEQGAN, *ORACLE], tmp_path, stop_at=stop_at, steps=8)


def test_seqgan_continued_run_equals_longer_run(tmp_path):
    assert_continued_run_equals_longer_run([*SEQGAN, *ORACLE], tmp_path, first=4, total=7)


@pytest.mark.parametrize("model", ["passgan", "mle_lstm"])
def test_stopped_and_continued_runs_resume_exactly(model, tmp_path):
    args = [*PASSGAN, "data=passwords"] if model == "passgan" else [*MLE, *ORACLE]
    # passgan: stopped between two G updates (D update 3 of n_critic 2)
    assert_stopped_run_resumes_exactly(args, tmp_path / "stop", stop_at=3, steps=3 if model == "passgan" else 4,
                                       counter="d" if model == "passgan" else "tick")
    assert_continued_run_equals_longer_run(args, tmp_path / "cont", first=2, total=3)


TEXT_METRICS = "metrics=[guess,ngram_js,bleu,nll_oracle,nll_test]"


def test_seqgan_ddp_ranks_identical_and_metrics_equal_one_process(tmp_path):
    """Two CPU processes through all three phases (mle_lstm's update is seqgan's pretrain_g
    phase) end with identical weights; the text metrics they computed together at the end equal
    one process scoring the same samples (each rank's share, from its own seeded generator)."""
    from gan_lab.checkpoint import load_module
    from gan_lab.app import instantiate
    from gan_lab.metrics.evaluator import Evaluator, shard_bounds
    from gan_lab.metrics.text import ScoredSamples

    n, batch = 50, 16
    ckpt = assert_ddp_ranks_identical([*SEQGAN, *ORACLE, "data.source.n_train=128", TEXT_METRICS,
                                       f"eval.num_samples={n}", f"eval.batch_size={batch}", "eval.seed=3"],
                                      tmp_path, steps=7)
    assert ckpt["gan_lab"]["phase"] == "adversarial"
    logged = rows(tmp_path)[-1]

    module, cfg, _ = load_module(str(tmp_path / "checkpoints" / "last.ckpt"))
    data = instantiate(cfg.data, "data", _convert_="all")
    shares = []
    for rank in range(2):  # what each rank generated (gan_lab.metrics.lab.evaluate_module)
        gen = torch.Generator().manual_seed(1_000_003 * 3 + rank)
        lo, hi = shard_bounds(n, 2, rank)
        shares += [module.evaluation_sample(min(batch, hi - i), gen, data) for i in range(lo, hi, batch)]
    rows_all, pos = torch.cat([s.x for s in shares]), [0]

    def sample_fn(k):
        pos[0] += k
        return ScoredSamples(rows_all[pos[0] - k:pos[0]], log_prob=module.log_prob)

    single = Evaluator({m: {} for m in ("guess", "ngram_js", "bleu", "nll_oracle", "nll_test")}, num_samples=n,
                       batch_size=batch, context={"info": data.info, "data": data}).evaluate(sample_fn)
    assert {"js_4", "bleu_4", "nll_oracle", "nll_test", "distinct_rate"} <= set(single)
    for key, value in single.items():
        assert float(logged[key]) == pytest.approx(value, rel=1e-6, nan_ok=True), key


def test_passgan_ddp_ranks_identical(tmp_path):
    # one-hot real batches and the gradient penalty on (B, L, V) interpolates, through DDP
    assert_ddp_ranks_identical([*PASSGAN, "data=words"], tmp_path, steps=2)


# ------------------------------------------------------------------ sample and evaluate from a checkpoint


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("text_ckpts")
    train([*PASSGAN, "data=passwords", "trainer.max_steps=2"], root / "passgan")
    train([*MLE, *ORACLE, "trainer.max_steps=2"], root / "mle")
    return {"passgan": str(root / "passgan" / "checkpoints" / "last.ckpt"),
            "mle": str(root / "mle" / "checkpoints" / "last.ckpt")}


def _run(module, args, capsys):
    code = module.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, [ln for ln in captured.err.splitlines() if "error" in ln]


def test_sample_cli_writes_text_ids_and_unique_guesses(checkpoints, tmp_path, capsys):
    from gan_lab import sample

    out = tmp_path / "guesses.txt"
    code, _, _ = _run(sample, [f"ckpt={checkpoints['passgan']}", "n=30", f"out={out}"], capsys)
    assert code == 0
    lines = out.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(lines) == 30
    code, _, _ = _run(sample, [f"ckpt={checkpoints['passgan']}", "n=30", f"out={tmp_path}/ids.npz"], capsys)
    saved = np.load(tmp_path / "ids.npz")
    assert saved["samples"].shape == (30, 10) and saved["samples"].dtype == np.int64
    vocab = list(saved["vocab"])
    assert ["".join(vocab[t] for t in row if t) for row in saved["samples"]] == list(saved["text"]) == lines

    # unique: distinct guesses in the order first drawn, the draws of the same seed
    code, _, _ = _run(sample, [f"ckpt={checkpoints['mle']}", "n=40", "unique=true", "batch_size=16",
                               f"out={tmp_path}/unique.txt"], capsys)
    assert code == 0
    unique = (tmp_path / "unique.txt").read_text().split("\n")[:-1]
    _run(sample, [f"ckpt={checkpoints['mle']}", "n=160", "batch_size=16", f"out={tmp_path}/all.txt"], capsys)
    drawn = (tmp_path / "all.txt").read_text().split("\n")[:-1]
    assert unique == list(dict.fromkeys(drawn))[:40] and len(set(unique)) == 40

    # the cap: n above max_draws is refused before sampling; a cap reached writes what it found
    code, _, err = _run(sample, [f"ckpt={checkpoints['mle']}", "n=50", "unique=true", "max_draws=20",
                                 f"out={tmp_path}/x.txt"], capsys)
    assert code == 2 and err == ["gan_lab.sample: error: unique=true: n=50 distinct sequences cannot come from "
                                 "max_draws=20 samples; raise max_draws to at least 50"]
    assert not (tmp_path / "x.txt").exists()
    code, _, err = _run(sample, [f"ckpt={checkpoints['mle']}", "n=10000000000", "unique=true",
                                 "max_draws=100000000000", f"out={tmp_path}/x.txt"], capsys)
    assert code == 2 and "more than the 67368421 distinct sequences data oracle_lstm can hold" in err[0]
    code, _, _ = _run(sample, [f"ckpt={checkpoints['mle']}", "n=30", "unique=true", "max_draws=30",
                               f"out={tmp_path}/few.txt"], capsys)
    assert code == 0 and 0 < len((tmp_path / "few.txt").read_text().split("\n")[:-1]) <= 30


def test_evaluate_cli_text_metrics(checkpoints, tmp_path, capsys):
    from gan_lab import evaluate

    out = tmp_path / "report.json"
    code, _, err = _run(evaluate, [f"ckpt={checkpoints['passgan']}", "metrics=[guess,ngram_js,bleu]", "n=1200",
                                   f"metrics.guess.curve={tmp_path}/curve.png", f"out={out}"], capsys)
    assert code == 0, err
    results = json.loads(out.read_text())["results"]
    assert {"matched", "guesses", "memorised", "distinct_rate", "js_1", "bleu_2"} <= set(results)
    assert (tmp_path / "curve.png").stat().st_size > 0
    code, _, err = _run(evaluate, [f"ckpt={checkpoints['mle']}", "metrics=[nll_oracle,nll_test,ngram_js]", "n=64",
                                   f"out={out}"], capsys)
    assert code == 0, err
    results = json.loads(out.read_text())["results"]
    assert results["nll_oracle_invalid"] == 0 and 0 < results["nll_oracle"] < math.inf
    assert results["nll_test_token"] == pytest.approx(results["nll_test"] / 6)  # the oracle never pads
    # metrics that do not apply: one line
    code, _, err = _run(evaluate, [f"ckpt={checkpoints['passgan']}", "metrics=[nll_oracle]", "n=8"], capsys)
    assert code == 2 and err == ["gan_lab.evaluate: error: metric 'nll_oracle' needs the oracle_lstm data set, "
                                 "not passwords"]
    code, _, err = _run(evaluate, [f"ckpt={checkpoints['passgan']}", "metrics=[fid]", "n=8"], capsys)
    assert code == 2 and "does not apply to tokens data" in err[0]


def test_metrics_during_training(tmp_path):
    train([*MLE, *ORACLE, "trainer.max_steps=2", "metrics=[nll_oracle,nll_test,bleu]", "eval.num_samples=32",
           "eval.batch_size=16", "eval.every_n_steps=1"], tmp_path)
    logged = rows(tmp_path)
    assert [r["step"] for r in logged] == ["1", "2"] and all(float(r["nll_oracle"]) > 0 for r in logged)


# ------------------------------------------------------------------ the registered metrics against direct computations


def test_metrics_match_direct_computations(tmp_path):
    from gan_lab.data import GANDataModule
    from gan_lab.data.sources import OracleLSTMData, Passwords
    from gan_lab.data.sources.text import oracle_from_info
    from gan_lab.metrics.evaluator import Evaluator
    from gan_lab.metrics.text import ScoredSamples, ngram_js, token_tuples

    data = GANDataModule(Passwords(), batch_size=16)
    test = data.dataset_for("test").all_tokens()
    train_rows = data.dataset.all_tokens()
    # guesses: 600 test passwords, 400 training passwords, each twice in a row, then 500 more test
    guesses = torch.cat([test[:600], train_rows[:400]]).repeat_interleave(2, dim=0)
    guesses = torch.cat([guesses, test[600:1100]])
    ev = Evaluator({"guess": {"ns": [1000, 1500]}, "ngram_js": {}}, num_samples=len(guesses), batch_size=256,
                   context={"info": data.info, "data": data})
    pos = [0]

    def sample_fn(n):
        pos[0] += n
        return guesses[pos[0] - n:pos[0]]

    out = ev.evaluate(sample_fn)
    n_test = 5912 + 3  # the 3 test passwords with characters absent from train are never found
    assert out["match@1000"] == 600 / n_test and out["match@1500"] == 1100 / n_test
    assert out["matched"] == 1100 / n_test and out["guesses"] == 1500
    assert out["memorised"] == pytest.approx(800 / 2500) and out["distinct_rate"] == pytest.approx(1500 / 2500)
    js = ngram_js(token_tuples(guesses), token_tuples(test))
    assert [out[f"js_{n}"] for n in (1, 2, 3, 4)] == [js[n] for n in (1, 2, 3, 4)]

    # nll_oracle is the oracle's NLL; nll_test the model's log-likelihood of the test split
    oracle_data = GANDataModule(OracleLSTMData(n_train=64, n_test=40, vocab_size=20, seq_len=6), batch_size=16)
    samples = oracle_data.dataset.all_tokens()[:48]
    scorer = lambda x: -0.25 * x.double().sum(dim=1)  # noqa: E731 - any function of the rows
    ev = Evaluator(["nll_oracle", "nll_test"], num_samples=48, batch_size=16,
                   context={"info": oracle_data.info, "data": oracle_data})
    pos = [0]

    def scored(n):
        pos[0] += n
        return ScoredSamples(samples[pos[0] - n:pos[0]], log_prob=scorer)

    out = ev.evaluate(scored)
    assert out["nll_oracle"] == pytest.approx(oracle_from_info(oracle_data.info).nll(samples), rel=1e-12)
    test_rows = oracle_data.dataset_for("test").all_tokens()
    assert out["nll_test"] == pytest.approx(0.25 * test_rows.double().sum().item() / 40, rel=1e-12)
    assert out["nll_test_token"] == pytest.approx(out["nll_test"] / 6, rel=1e-12)


# ------------------------------------------------------------------ bad input: one line, before any work


def _refused(overrides, tmp_path, capsys):
    from gan_lab.train import run_cli

    with pytest.raises(SystemExit) as exc:
        run_cli(compose_config(BASE + list(overrides), tmp_path))
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("gan_lab:")]
    assert exc.value.code == 2 and len(err) == 1, err
    assert not (tmp_path / "checkpoints").exists()
    return err[0]


def test_bad_inputs_are_one_line_before_any_work(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    cases = [
        (["model=passgan", "data=mnist_5k"], "model=passgan is a text model: it needs token data (data=passwords, words, text_lines "
                            "or oracle_lstm), but data mnist_5k is image data"),
        (["model=seqgan", "data=ring8"], "model=seqgan is a text model"),
        (["model=mle_lstm", "data=mnist_5k"], "model=mle_lstm is a text model"),
        (["model=gan", "data=passwords"], "model.net.arch=mlp cannot take token data (passwords); use a text model"),
        (["model=dcgan", "data=words"], "no network for tokens data (words)"),
        (["model=passgan", "data=passwords", "model.net.arch=dcgan"], "model=passgan takes the text networks only"),
        ([*MLE, "data=text_lines"], "text_lines: set data.source.root to a text file"),
        ([*MLE, "data=text_lines", f"data.source.root={tmp_path}/missing.txt"], "is not a file"),
        ([*MLE, "data=text_lines", f"data.source.root={empty}"], "is empty"),
        ([*MLE, "data=passwords", "data.source.max_len=0"], "passwords: data.source.max_len must be an integer >= 1"),
        ([*SEQGAN, "data=passwords", "model.rollouts=0"], "model.rollouts must be an integer >= 1"),
        ([*SEQGAN, "data=passwords", "+model.negatives.size=3"], "model.negatives has no setting 'size'"),
        ([*SEQGAN, "data=passwords", "model.discriminator.filter_widths=[1,12]"], "filter width 12 is longer"),
    ]
    for overrides, message in cases:
        assert message in _refused(overrides, tmp_path / "run", capsys), overrides


def test_text_grids_are_logged_as_a_table_and_as_text(tmp_path):
    from types import SimpleNamespace

    from gan_lab.data import DataInfo
    from gan_lab.modalities import get_modality

    info = DataInfo("passwords", "tokens", (4,), vocab=("", "a", "b", "\n"), extras={"separator": ""})
    tokens = get_modality(info)
    path = tokens.save_figure(torch.tensor([[1, 2, 0, 0], [2, 3, 1, 0], [0, 0, 0, 0]]), str(tmp_path / "s.png"), info)
    assert path.endswith("s.txt")
    # one sequence per line: a line break inside a sequence is escaped, an empty sequence is an empty line
    assert open(path, encoding="utf-8").read() == "ab\nb\\na\n\n"
    calls = []
    wandb = SimpleNamespace(log_text=lambda **kw: calls.append(("table", kw)))
    tensorboard = SimpleNamespace(experiment=SimpleNamespace(add_text=lambda *a: calls.append(("text", a))))
    tokens.log_figure(SimpleNamespace(loggers=[wandb, tensorboard]), path, 7)
    assert calls[0] == ("table", {"key": "samples", "columns": ["step", "sample"],
                                  "data": [[7, "ab"], [7, "b\\na"], [7, ""]], "step": 7})
    assert calls[1] == ("text", ("samples", "    ab\n    b\\na\n    ", 7))


def test_oracle_sequences_are_cached_on_disk(tmp_path):
    from gan_lab.data.sources import OracleLSTMData
    from gan_lab.data.sources.text import _oracle_sequences

    def source():
        return OracleLSTMData(n_train=30, n_test=10, vocab_size=20, seq_len=5, cache_dir=str(tmp_path))

    train_rows, test_rows = source().sequences()
    (cached,) = tmp_path.glob("oracle_*.pt")
    _oracle_sequences.cache_clear()
    stamp = cached.stat().st_mtime_ns
    again = source().sequences()
    assert torch.equal(again[0], train_rows) and torch.equal(again[1], test_rows)
    assert again[0].dtype == torch.int64 and cached.stat().st_mtime_ns == stamp  # read, not written again
    assert _oracle_sequences.cache_info().misses == 0
    other = OracleLSTMData(n_train=30, n_test=11, vocab_size=20, seq_len=5, cache_dir=str(tmp_path)).sequences()
    assert torch.equal(other[0], train_rows) and len(list(tmp_path.glob("oracle_*.pt"))) == 2
