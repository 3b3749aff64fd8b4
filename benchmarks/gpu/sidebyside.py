"""Side by side, same process, same model and images: an OpenIBL-style loop against ours.

* **openibl**: a plain ``DataLoader`` (no pinned memory) over the same decoded images, the
  model in fp32 without channels_last (``cudnn.benchmark`` on, as OpenIBL's scripts set it),
  PCA-whitening per batch on the device, features to the host, then dense distances on the CPU
  (torch) and a full ``np.argsort`` of every row, as OpenIBL's evaluator does.
* **ours**: the harness's own path: :func:`vpr_bench.eval.extract.compute_descriptors` (pinned
  loader, channels_last, bf16 autocast, OOM halving), PCA-whitening on the device, and
  :func:`vpr_bench.eval.search.knn` on the device (top-k, no full sort).

Both read the same JPEG files through the harness's decoder (a bank of distinct 480x640 images
read cyclically, so decode is included and the page cache holds the bank) with the same batch
size and workers. Extraction runs over the full Pitts30k-test count unless its time cap is hit;
then images/s is measured on what ran and the full-scale time is extrapolated (the report says
which). Search runs at full scale on seeded random unit descriptors. The R@1 of the two
pipelines is compared on the synthcity test split (PCA fitted on the train split).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stages import check, median_time, sync

from vpr_bench.protocol import ResizePolicy
from vpr_bench.weights import PcaWhitening


def _bank(folder: Path, count: int, height: int, width: int) -> list[Path]:
    """``count`` distinct smooth-textured JPEGs (quality 90) of ``height x width``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        coarse = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3), np.uint8)
        img = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))
        noise = rng.integers(-12, 13, img.shape)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(np.clip(img + noise, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def _model(cfg: dict[str, Any]) -> torch.nn.Module:
    """Random-weight trunk + NetVLAD initialised by k-means on synthcity train (the untrained
    baseline's recipe: without it a random NetVLAD layer assigns every feature alike)."""
    from vpr_bench.data.images import make_loader
    from vpr_bench.data.synthcity.spec import load_split
    from vpr_bench_netvlad.centroids import choose_images
    from vpr_bench_netvlad.config import NetVLADConfig
    from vpr_bench_netvlad.model import build_netvlad
    from vpr_bench_netvlad.plugin import PREPROCESS
    from vpr_bench_netvlad.prepare import prepare_netvlad

    sb = cfg["sidebyside"]
    config = NetVLADConfig(
        backbone=sb["backbone"],
        num_clusters=sb["clusters"],
        pretrained=None,
        seed=0,
        tiny_width=sb.get("tiny_width", 16),
        train_layers="full",
        init_images=sb["init_images"],
        init_per_image=50,
        init_iters=sb["init_iters"],
    )
    model = build_netvlad(config).to(cfg["device"])
    train = load_split(Path(cfg["synthcity_folder"]), "train")
    chosen = choose_images(len(train.database), sb["init_images"], seed=43)
    paths = [train.database[int(i)].path for i in chosen]
    loader = make_loader(paths, ResizePolicy("native"), PREPROCESS, 32)
    prepare_netvlad(model, config, (batch for _, batch in loader), 43)
    return model.eval()


def _peak_reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_mib(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else 0.0


def openibl_extract(
    model: torch.nn.Module,
    paths: list[Path],
    policy: Any,
    pca: PcaWhitening | None,
    device: str,
    sb: dict[str, Any],
    cap_s: float = float("inf"),
) -> tuple[np.ndarray, float]:
    """OpenIBL-style extraction; returns (features of the images done, seconds)."""
    from vpr_bench.data.images import ImageListDataset
    from vpr_bench_netvlad.plugin import PREPROCESS

    torch.backends.cudnn.benchmark = True
    model.to(device=device, memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    loader = torch.utils.data.DataLoader(
        ImageListDataset(paths, policy, PREPROCESS),
        batch_size=sb["batch"],
        shuffle=False,
        num_workers=sb["workers"],
        pin_memory=False,
    )
    # OpenIBL folds PCA-whitening into a fixed layer: the weight is made once, not per batch.
    layer = (pca.weight.to(device).T.contiguous(), pca.bias.to(device)) if pca else None
    feats = []
    sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        for _, images in loader:
            out = model(images.to(device))
            if layer is not None:
                out = torch.nn.functional.normalize(torch.addmm(layer[1], out, layer[0]), dim=1)
            feats.append(out.cpu())
            if time.perf_counter() - start > cap_s:
                break
    sync(device)
    seconds = time.perf_counter() - start
    torch.backends.cudnn.benchmark = False
    return torch.cat(feats).numpy(), seconds


def ours_extract(
    model: torch.nn.Module,
    paths: list[Path],
    policy: Any,
    pca: PcaWhitening | None,
    device: str,
    sb: dict[str, Any],
    cap_s: float = float("inf"),
) -> tuple[np.ndarray, float, float]:
    """The harness path; returns (descriptors done, extraction seconds, PCA seconds)."""
    from vpr_bench.eval.extract import compute_descriptors
    from vpr_bench_netvlad.plugin import PREPROCESS

    out = np.empty((len(paths), model.descriptor_dim), dtype=np.float32)  # type: ignore[call-overload]
    done = 0

    def sink(indices: np.ndarray, rows: np.ndarray) -> None:
        out[done + indices] = rows

    precision = sb["precision"]
    sync(device)
    start = time.perf_counter()
    chunk = sb["chunk"]
    while done < len(paths):
        part = paths[done : done + chunk]
        compute_descriptors(
            model,
            part,
            policy,
            PREPROCESS,
            sink,
            device=device,
            batch_size=sb["batch"],
            num_workers=sb["workers"],
            precision=precision,
        )
        done += len(part)
        if time.perf_counter() - start > cap_s:
            break
    sync(device)
    seconds = time.perf_counter() - start
    if pca is None:
        return out[:done], seconds, 0.0
    start = time.perf_counter()
    reduced = pca.to(device).apply(torch.from_numpy(out[:done]).to(device)).cpu().numpy()
    sync(device)
    return reduced, seconds, time.perf_counter() - start


def openibl_search(q: np.ndarray, db: np.ndarray) -> np.ndarray:
    """Dense float32 distances on the CPU and a full argsort of every row (OpenIBL)."""
    qt, dbt = torch.from_numpy(q), torch.from_numpy(db)
    dist = (qt * qt).sum(1, keepdim=True) + (dbt * dbt).sum(1)[None, :] - 2.0 * (qt @ dbt.T)
    return np.argsort(dist.numpy(), axis=1)


def _random_pca(dim: int, k: int, device: str) -> PcaWhitening:
    gen = torch.Generator().manual_seed(0)
    u = torch.nn.functional.normalize(torch.randn(dim, k, generator=gen), dim=0)
    return PcaWhitening(u, torch.rand(k, generator=gen) + 0.5, torch.zeros(dim)).to(device)


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _model_only(model: torch.nn.Module, device: str, sb: dict[str, Any]) -> dict[str, float]:
    """Images/s of the model alone on a resident batch (no loader): fp32 vs bf16+channels_last."""
    x = torch.randn(sb["batch"], 3, sb["height"], sb["width"], device=device)
    rates = {}
    with torch.inference_mode():
        for name in ("openibl", "ours"):
            ours = name == "ours"
            fmt = (
                torch.channels_last
                if ours and device.startswith("cuda")
                else torch.contiguous_format
            )
            model.to(device=device, memory_format=fmt)  # type: ignore[call-overload]
            xb = x.contiguous(memory_format=fmt)
            torch.backends.cudnn.benchmark = not ours
            half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(sb["precision"])
            dtype = half if ours else None
            ctx_device = "cuda" if device.startswith("cuda") else "cpu"

            def step(xb: torch.Tensor = xb, dtype: Any = dtype, dev: str = ctx_device) -> None:
                with torch.autocast(dev, dtype=dtype or torch.float32, enabled=dtype is not None):
                    model(xb)

            median_time(step, device, 2)
            seconds, _ = median_time(step, device, sb["model_only_repeats"])
            rates[name] = sb["batch"] / seconds
    torch.backends.cudnn.benchmark = False
    return rates


def _r1_comparison(model: torch.nn.Module, cfg: dict[str, Any]) -> dict[str, Any]:
    """R@1 of both pipelines over the test, val and train splits of synthcity (each split's
    queries against its own database; PCA-w fitted on the train database by each pipeline)."""
    from vpr_bench.data.geo import positives_within, utm_array
    from vpr_bench.data.synthcity.spec import load_split
    from vpr_bench.eval.search import knn
    from vpr_bench.weights import fit_pca

    sb, device = cfg["sidebyside"], cfg["device"]
    folder = Path(cfg["synthcity_folder"])
    splits = {name: load_split(folder, name) for name in ("test", "val", "train")}
    from vpr_bench.data.synthcity.spec import SYNTHCITY

    test_protocol = SYNTHCITY.protocol_for("test")
    assert test_protocol is not None
    radius = test_protocol.radius_m  # 25 m, as on test
    fit_paths = [r.path for r in splits["train"].database]
    k = min(sb["pca_dim"], len(fit_paths) // 2)
    native = ResizePolicy("native")  # synthcity's protocol: native size, database and queries
    top1: dict[str, list[np.ndarray]] = {"openibl": [], "ours": []}
    hits: dict[str, list[bool]] = {"openibl": [], "ours": []}
    for name in ("openibl", "ours"):
        extract = openibl_extract if name == "openibl" else ours_extract

        def reduced(paths: list[Path], pca: PcaWhitening, extract: Any = extract) -> np.ndarray:
            x = torch.from_numpy(extract(model, paths, native, None, device, sb)[0]).to(device)
            return pca.apply(x).cpu().numpy()

        fit_x = extract(model, fit_paths, native, None, device, sb)[0]
        pca = fit_pca(torch.from_numpy(fit_x).to(device), k)
        for split in splits.values():
            db = reduced([r.path for r in split.database], pca)
            q = reduced([r.path for r in split.queries], pca)
            if name == "openibl":
                first = openibl_search(q, db)[:, 0]
            else:
                first = knn(q, db, 1, device=device)[0][:, 0]
            top1[name].append(first)
            positives = positives_within(
                utm_array(split.database), utm_array(split.queries), radius
            )
            hits[name] += [int(f) in set(p.tolist()) for f, p in zip(first, positives, strict=True)]
    r1 = {name: 100.0 * float(np.mean(h)) for name, h in hits.items()}
    changed = int((np.concatenate(top1["openibl"]) != np.concatenate(top1["ours"])).sum())
    return {
        "r1_openibl": round(r1["openibl"], 3),
        "r1_ours": round(r1["ours"], 3),
        "r1_delta": round(r1["ours"] - r1["openibl"], 3),
        "r1_queries": len(hits["ours"]),
        "r1_top1_changed": changed,
        "r1_pca_dim": k,
        "r1_fit_images": len(fit_paths),
        "r1_images": f"{folder.name}, test + val + train splits, native size",
    }


def stage_sidebyside(cfg: dict[str, Any], save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Run the side-by-side measurement (see the module docstring); ``save`` keeps partial
    figures in case a later step fails or the stage runs out of time."""
    from vpr_bench.eval.search import knn

    sb, device = cfg["sidebyside"], cfg["device"]
    torch.set_num_threads(os.cpu_count() or 1)
    n_db, n_q = sb["n_db"], sb["n_q"]
    n_total = n_db + n_q
    model = _model(cfg)
    bank = _bank(Path(cfg["work"]) / "bank", sb["bank"], sb["height"], sb["width"])
    paths = [bank[i % len(bank)] for i in range(n_total)]
    policy = ResizePolicy.hard(sb["height"], sb["width"])
    pca = _random_pca(model.descriptor_dim, sb["pca_dim"], device)  # type: ignore[arg-type]
    rates = _model_only(model, device, sb)
    figures: dict[str, Any] = {
        "model_only_images_per_s": {k: round(v, 1) for k, v in rates.items()}
    }

    # Extraction (+ PCA), each after a warm-up of a few batches.
    warm = paths[: 2 * sb["batch"]]
    openibl_extract(model, warm, policy, pca, device, sb)
    _peak_reset(device)
    feats_a, sec_a = openibl_extract(model, paths, policy, pca, device, sb, sb["cap_openibl_s"])
    peak_a = _peak_mib(device)
    ours_extract(model, warm, policy, pca, device, sb)
    _peak_reset(device)
    feats_b, sec_b, pca_b = ours_extract(model, paths, policy, pca, device, sb, sb["cap_ours_s"])
    figures.update(openibl_extraction_s=round(sec_a, 2), ours_extraction_s=round(sec_b, 2))
    figures.update(openibl_images_measured=len(feats_a), ours_images_measured=len(feats_b))
    save({"figures": figures})

    # Search at full scale on seeded random unit descriptors (k = 20, the largest R@N).
    rng = np.random.default_rng(0)
    qs, dbs = _unit(rng, n_q, sb["pca_dim"]), _unit(rng, n_db, sb["pca_dim"])
    start = time.perf_counter()
    order_a = openibl_search(qs, dbs)  # once: seconds at full scale, and it is not noisy
    search_a = time.perf_counter() - start
    knn(qs, dbs, 20, device=device)  # warm-up
    search_b, _ = median_time(lambda: knn(qs, dbs, 20, device=device), device, 3)
    peak_b = _peak_mib(device)
    idx_b = knn(qs, dbs, 20, device=device)[0]
    agree = float((order_a[:, 0] == idx_b[:, 0]).mean())
    faiss_gpu = cfg.get("faiss_gpus", 0) > 0 and device.startswith("cuda")
    figures["search_backends"] = "torch, faiss-gpu" if faiss_gpu else "torch (no faiss-gpu here)"
    if faiss_gpu:
        knn(qs, dbs, 20, backend="faiss", device=device)
        figures["search_faiss_gpu_s"] = round(
            median_time(lambda: knn(qs, dbs, 20, backend="faiss", device=device), device, 3)[0], 4
        )

    done_a, done_b = len(feats_a), len(feats_b)
    rate_a, rate_b = done_a / sec_a, done_b / (sec_b + pca_b)
    full_a, full_b = n_total / rate_a, n_total / rate_b
    e2e_a, e2e_b = full_a + search_a, full_b + search_b
    figures.update(
        n_database=n_db,
        n_queries=n_q,
        image_size=f"{sb['height']}x{sb['width']}",
        model=f"{sb['backbone']} + NetVLAD-{sb['clusters']} + PCA-w {sb['pca_dim']}"
        " (random weights, NetVLAD k-means-initialised)",
        batch=sb["batch"],
        workers=sb["workers"],
        openibl_images_measured=done_a,
        ours_images_measured=done_b,
        extraction_extrapolated=done_a < n_total or done_b < n_total,
        openibl_images_per_s=round(rate_a, 1),
        ours_images_per_s=round(rate_b, 1),
        extraction_speedup=round(rate_b / rate_a, 2),
        ours_pca_s=round(pca_b, 3),
        openibl_search_s=round(search_a, 4),
        ours_search_s=round(search_b, 4),
        search_speedup=round(search_a / search_b, 2),
        openibl_e2e_s=round(e2e_a, 2),
        ours_e2e_s=round(e2e_b, 2),
        e2e_speedup=round(e2e_a / e2e_b, 2),
        openibl_peak_gpu_mib=round(peak_a, 0),
        ours_peak_gpu_mib=round(peak_b, 0),
        search_top1_agreement=round(agree, 5),
    )
    save({"figures": figures})
    r1 = _r1_comparison(model, cfg)
    figures.update(r1)
    tol = float(cfg["r1_tolerance"])
    delta = abs(r1["r1_delta"])
    goal = float(cfg["speedup_goal"])
    checks = [
        check(
            "sidebyside_r1",
            delta <= tol + 1e-9,
            f"R@1 openibl {r1['r1_openibl']:.2f} vs ours {r1['r1_ours']:.2f} on "
            f"{r1['r1_queries']} queries (|Δ| {delta:.2f}, tolerance {tol:g}); top-1 changed "
            f"for {r1['r1_top1_changed']}",
        ),
        check(
            "search_top1_agreement",
            agree >= 0.999,
            f"ours (knn on {device}) and dense argsort agree on top-1 for {agree:.2%} of {n_q}",
        ),
    ]
    status = "MET" if e2e_a / e2e_b >= goal else "NOT MET"
    figures["e2e_goal"] = f"{status} (goal >= {goal:g}x)"
    return {"figures": figures, "checks": checks}
