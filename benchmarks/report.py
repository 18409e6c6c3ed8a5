"""Tables, plots and the pass/fail of the issue's criteria from the JSON the benchmarks wrote.

    python benchmarks/report.py [--results benchmarks/results] [--readme benchmarks/README.md]

Reads serve-*.json and train-speed.json; writes serve-*.md, serve-*.png and criteria.md beside them, and
replaces the figures section of benchmarks/README.md (between its `figures:` markers).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, WORKLOADS, ceiling_rate_at  # noqa: E402

README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"
CONDGENS = ("condgen", "condgen-pad")


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def curve_ms(result: dict[str, Any], workload: str) -> dict[int, float]:
    return {int(p["batch"]): float(p["ms_per_batch"]) for p in result["ceiling"]["curves"].get(workload, [])}


def point(result: dict[str, Any], target: str, workload: str, concurrency: int) -> dict[str, Any] | None:
    for p in result["points"]:
        if (p["target"], p["workload"], p["concurrency"]) == (target, workload, concurrency):
            return p
    return None


def paired(result: dict[str, Any], after: str, workload: str, concurrency: int, batch: int) -> dict[str, Any] | None:
    for p in result["paired_ceilings"]:
        if (p["after"], p["workload"], p["concurrency"], int(p["batch"])) == (after, workload, concurrency, batch):
            return p
    return None


# --- tables ---------------------------------------------------------------------------------------------

def serve_table(result: dict[str, Any]) -> str:
    lines = ["| workload | concurrency | server | req/s | images/s | p50 ms | p95 ms | p99 ms | errors "
             "| mean batch rows | ceiling img/s at that batch | served / ceiling | server cores | img per server CPU-s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in result["points"]:
        ms = curve_ms(result, p["workload"])
        ceil = ceiling_rate_at(ms, p["mean_batch_rows"]) if ms and p["mean_batch_rows"] else None
        share = p["images_per_s"] / ceil if ceil else None
        lines.append(
            f"| {WORKLOADS[p['workload']].title} | {p['concurrency']} | {p['target']} | {_fmt(p['requests_per_s'])} "
            f"| {_fmt(p['images_per_s'])} | {_fmt(p['p50_ms'])} | {_fmt(p['p95_ms'])} | {_fmt(p['p99_ms'])} "
            f"| {p['errors']} | {_fmt(p['mean_batch_rows'], 2)} | {_fmt(ceil)} "
            f"| {'-' if share is None else f'{share:.0%}'} | {_fmt(p['server_cores'], 2)} "
            f"| {_fmt(p.get('images_per_server_cpu_s'))} |")
    return "\n".join(lines)


def ceiling_table(result: dict[str, Any]) -> str:
    sizes = sorted({int(p["batch"]) for c in result["ceiling"]["curves"].values() for p in c})
    lines = ["| workload | " + " | ".join(f"b={b}" for b in sizes) + " |", "| --- |" + " --- |" * len(sizes)]
    for name, curve in result["ceiling"]["curves"].items():
        by = {int(p["batch"]): p for p in curve}
        cells = [f"{by[b]['images_per_s']:,.1f} img/s ({by[b]['ms_per_batch']:.1f} ms)" if b in by else "-" for b in sizes]
        lines.append(f"| {WORKLOADS[name].title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- criteria -------------------------------------------------------------------------------------------

def _per_cpu(served: dict[str, Any], ceiling: dict[str, Any]) -> str:
    """The same comparison per CPU-second: on a shared machine the wall-clock one also measures the CPU
    share each side got (a serial loop and a server with several busy threads are scheduled differently)."""
    a, b = served.get("images_per_server_cpu_s"), ceiling.get("images_per_cpu_s")
    return f". Per CPU-second: {a:.0f} vs {b:.0f} img = {a / b:.0%}" if a and b else ""


def _ratio_per_cpu(p: dict[str, Any], u: dict[str, Any], cm: dict[str, Any], c1: dict[str, Any]) -> str:
    vals = [p.get("images_per_server_cpu_s"), u.get("images_per_server_cpu_s"), cm.get("images_per_cpu_s"),
            c1.get("images_per_cpu_s")]
    if not all(vals):
        return ""
    served, ceil = vals[0] / vals[1], vals[2] / vals[3]
    return f". Per CPU-second: {served:.2f}x vs ceiling {ceil:.2f}x, {served / ceil:.0%} of it"


def criteria(result: dict[str, Any], train: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The issue's "What it must show", each as measured: passed, the figures, and what they were compared to."""
    out: list[dict[str, Any]] = []
    top = max(result["concurrency"])
    mbr = result["max_batch_rows"]
    for target in [t for t in CONDGENS if t in result["targets"]]:
        # 1. n=16 at the top concurrency: served >= 90% of the ceiling at the batch size the queue used.
        p = point(result, target, "sample16", top)
        if p and p["mean_batch_rows"]:
            b = max(1, min(mbr, round(p["mean_batch_rows"])))
            pc = paired(result, target, "sample16", top, b)
            if pc:
                ratio = p["images_per_s"] / pc["images_per_s"]
                out.append({"criterion": f"{target}: c={top}, n=16 served >= 90% of the ceiling at its batch size",
                            "passed": ratio >= 0.9,
                            "figures": f"{p['images_per_s']:.1f} img/s served (mean batch {p['mean_batch_rows']} rows) "
                                       f"vs ceiling {pc['images_per_s']:.1f} img/s at batch {b} measured right after: "
                                       f"{ratio:.1%}" + _per_cpu(p, pc)})
        # 2. n=1 at the top concurrency: batched / unbatched >= 0.8 x the ceiling's batch-max / batch-1 ratio.
        p, u = point(result, target, "sample1", top), point(result, "unbatched", "sample1", top)
        c1, cm = paired(result, target, "sample1", top, 1), paired(result, target, "sample1", top, mbr)
        if p and u and c1 and cm and u["images_per_s"]:
            served_ratio = p["images_per_s"] / u["images_per_s"]
            ceil_ratio = cm["images_per_s"] / c1["images_per_s"]
            out.append({"criterion": f"{target}: c={top}, n=1 batched/unbatched >= 0.8 x ceiling's batch-{mbr}/batch-1",
                        "passed": served_ratio >= 0.8 * ceil_ratio,
                        "figures": f"{p['images_per_s']:.1f} / {u['images_per_s']:.1f} = {served_ratio:.2f}x vs ceiling "
                                   f"{cm['images_per_s']:.1f} / {c1['images_per_s']:.1f} = {ceil_ratio:.2f}x "
                                   f"(0.8x: {0.8 * ceil_ratio:.2f}x); achieved {served_ratio / ceil_ratio:.0%} of it"
                                   + _ratio_per_cpu(p, u, cm, c1)})
        # 3. concurrency 1, n=1: p50 <= ceiling's batch-1 time + 3 ms.
        p = point(result, target, "sample1", 1)
        pc = paired(result, target, "sample1", 1, 1)
        if p and pc and p["p50_ms"] is not None:
            limit = pc["ms_per_batch"] + 3.0
            out.append({"criterion": f"{target}: c=1, n=1 p50 <= ceiling batch-1 time + 3 ms",
                        "passed": p["p50_ms"] <= limit,
                        "figures": f"p50 {p['p50_ms']:.2f} ms vs {pc['ms_per_batch']:.2f} + 3 = {limit:.2f} ms"})
        # 4. against Ray Serve: higher throughput and lower p99 at every concurrency of every workload.
        if "ray" in result["targets"]:
            worse, cpu_ratios = [], []
            compared = 0
            for w in result["workloads"]:
                for c in result["concurrency"]:
                    mine, ray = point(result, target, w, c), point(result, "ray", w, c)
                    if not mine or not ray:
                        continue
                    compared += 1
                    if mine.get("images_per_server_cpu_s") and ray.get("images_per_server_cpu_s"):
                        cpu_ratios.append(mine["images_per_server_cpu_s"] / ray["images_per_server_cpu_s"])
                    faster = mine["images_per_s"] > ray["images_per_s"]
                    lower = (mine["p99_ms"] is not None and (ray["p99_ms"] is None or mine["p99_ms"] < ray["p99_ms"]))
                    if not (faster and lower):
                        worse.append(f"{w} c={c}: {mine['images_per_s']:.1f} vs {ray['images_per_s']:.1f} img/s, "
                                     f"p99 {_fmt(mine['p99_ms'])} vs {_fmt(ray['p99_ms'])} ms")
            per_cpu = (f" Per server CPU-second, {target} served {min(cpu_ratios):.1f}x to {max(cpu_ratios):.1f}x "
                       f"Ray's images." if cpu_ratios else "")
            out.append({"criterion": f"{target}: vs Ray Serve @serve.batch, higher throughput and lower p99 everywhere",
                        "passed": not worse and compared > 0,
                        "figures": (f"better at all {compared} points." if not worse else
                                    f"better at {compared - len(worse)} of {compared}; not at: " + "; ".join(worse)
                                    + ".") + per_cpu})
    if train:
        r = train["ratio_condgen_over_plain"]
        out.append({"criterion": "training loop >= 1.0x the plain PyTorch-GAN-style loop", "passed": r >= 1.0,
                    "figures": f"condgen {train['images_per_s']['condgen']} vs plain {train['images_per_s']['plain']} "
                               f"img/s = {r:.2f}x"})
    return out


def criteria_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| criterion | result | figures |", "| --- | --- | --- |"]
    lines += [f"| {r['criterion']} | {'PASS' if r['passed'] else 'FAIL'} | {r['figures']} |" for r in rows]
    return "\n".join(lines)


# --- plot -----------------------------------------------------------------------------------------------

def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = result["workloads"]
    fig, axes = plt.subplots(2, len(workloads), figsize=(4.2 * len(workloads), 7.5), squeeze=False)
    for col, w in enumerate(workloads):
        top, bottom = axes[0][col], axes[1][col]
        for target in result["targets"]:
            pts = sorted((p for p in result["points"] if p["target"] == target and p["workload"] == w),
                         key=lambda p: p["concurrency"])
            xs = [p["concurrency"] for p in pts]
            top.plot(xs, [p["images_per_s"] for p in pts], marker="o", label=target)
            bottom.plot(xs, [p["p99_ms"] if p["p99_ms"] is not None else float("nan") for p in pts], marker="o",
                        label=target)
        ms = curve_ms(result, w)
        if ms:
            xs = sorted(result["concurrency"])
            rows = WORKLOADS[w].rows
            best = [ceiling_rate_at(ms, min(result["max_batch_rows"], c * rows)) for c in xs]
            top.plot(xs, best, linestyle="--", color="grey", label="ceiling (batch = min(c x rows, max))")
        for ax in (top, bottom):
            ax.set_xscale("log", base=2)
            ax.set_xticks(result["concurrency"], [str(c) for c in result["concurrency"]])
            ax.grid(alpha=0.3)
        top.set_title(WORKLOADS[w].title)
        top.set_ylabel("images/s")
        bottom.set_ylabel("p99 latency (ms)")
        bottom.set_yscale("log")
        bottom.set_xlabel("concurrency (closed-loop clients)")
    axes[0][0].legend(fontsize=8)
    m = result["machine"]
    fig.suptitle(f"{result['model_set_title']} - {m['device']} ({m.get('gpu') or m['cpu']}, {m['cpus']} CPUs), "
                 f"load average {result['load_average']['mean']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --- the whole report ----------------------------------------------------------------------------------

def serve_section(result: dict[str, Any]) -> str:
    m = result["machine"]
    targets = "\n".join(f"- `{k}`: {v}" for k, v in result["targets"].items())
    return (f"### {result['model_set_title']}\n\n"
            f"Machine: {m.get('gpu') or m['cpu']}, {m['cpus']} CPUs, device {m['device']}, torch {m['torch']} "
            f"({m['torch_threads']} threads), Python {m['python']}. Load average during the run (1 min, sampled): "
            f"min {result['load_average']['min']}, mean {result['load_average']['mean']}, max "
            f"{result['load_average']['max']}. Run time {result['wall_s']:.0f} s.\n\n"
            f"Command: `{result['command']}`\n\nServers:\n{targets}\n\n"
            f"Ceiling (forward + uint8 + PNG in process, serially; images/s and ms per batch):\n\n"
            f"{ceiling_table(result)}\n\nServed (each point: closed-loop clients, "
            f"window >= {result['seconds']:g} s after a warm-up in which every client was answered once):\n\n"
            f"{serve_table(result)}\n\n![throughput and p99](results/serve-{result['model_set']}.png)\n")


def precision_section(result: dict[str, Any]) -> str:
    from benchmarks.precision_layout import table

    m = result["machine"]
    return (f"### Half precision and channels_last\n\nForward only, median of {result['rounds']} interleaved "
            f"rounds; in brackets the speed against float32 NCHW (above 1 is faster). Device {result['device']} "
            f"({m.get('gpu') or m['cpu']}, {m['cpus']} CPUs, torch {m['torch']}, {result['torch_threads']} "
            f"threads). Command: `python benchmarks/precision_layout.py`\n\n{table(result['rows'])}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    train_path = args.results / "train-speed.json"
    train = json.loads(train_path.read_text()) if train_path.exists() else None
    sections, all_criteria = [], []
    for path in sorted(args.results.glob("serve-*.json")):
        result = json.loads(path.read_text())
        rows = criteria(result, None)
        for r in rows:
            r["criterion"] = f"[{result['model_set']}] {r['criterion']}"
        all_criteria += rows
        section = serve_section(result)
        (args.results / f"serve-{result['model_set']}.md").write_text(section)
        plot(result, args.results / f"serve-{result['model_set']}.png")
        sections.append(section)
    if train:
        all_criteria += criteria({"targets": {}, "concurrency": [1], "max_batch_rows": 1}, train)
        m = train["machine"]
        sections.append(
            f"### Training throughput\n\nDemo ACGAN, batch {train['batch_size']}, {train['data']}, device "
            f"{train['device']} ({m['cpu']}, {m['cpus']} CPUs, torch {m['torch']}); "
            f"{train['rounds']} alternating blocks of {train['steps_per_block']} steps each.\n\n"
            f"| loop | images/s |\n| --- | --- |\n| condgen (training.loop.Trainer) | {train['images_per_s']['condgen']} |\n"
            f"| plain PyTorch-GAN-style loop | {train['images_per_s']['plain']} |\n\n"
            f"Ratio {train['ratio_condgen_over_plain']}x. Command: `{train['command']}`\n")
    precision_path = args.results / "precision-layout.json"
    if precision_path.exists():
        sections.append(precision_section(json.loads(precision_path.read_text())))
    crit = criteria_table(all_criteria)
    (args.results / "criteria.md").write_text(crit + "\n")
    body = "## Latest figures\n\n### The issue's criteria\n\n" + crit + "\n\n" + "\n".join(sections)
    text = args.readme.read_text() if args.readme.exists() else f"{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip() + f"\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    args.readme.write_text(f"{head}{START}\n{body}\n{END}{tail}")
    print(crit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
