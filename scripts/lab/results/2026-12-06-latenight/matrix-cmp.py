#!/usr/bin/env python3
"""matrix-cmp.py NEW.jsonl [OLD.jsonl]: the link matrix's cells beside an
older run's [in brackets], then the issue-12 verdicts for every 256-client
cell and the bulk rates."""
import json, sys

def load(path):
    cells = {}
    for line in open(path):
        r = json.loads(line)
        l = r["label"]
        if l.get("scenario") != "link":
            continue
        key = (l["rtt"], l["loss"], l.get("burst", "0"), l["contender"], l["cc"], r["mode"], r["kind"], r["concurrency"])
        cells[key] = r
    return cells

new = load(sys.argv[1])
old = load(sys.argv[2]) if len(sys.argv) > 2 else {}
links = [("150", "0.01", "0"), ("150", "0.03", "0"), ("250", "0.01", "0"), ("250", "0.03", "0"), ("250", "0.03", "4")]
cols = [("nginx", "bbr"), ("strait-ws", "bbr"), ("strait-quic", "quic"), ("nginx", "reno"), ("strait-ws", "reno")]

def name(link):
    rtt, loss, burst = link
    return "%s ms, %d %%%s" % (rtt, round(float(loss) * 100), " bursts" if burst != "0" else "")

def get(cells, link, col, mode, conc, kind="stream"):
    return cells.get(link + col + (mode, kind, conc))

def fmt(r, mode):
    if r is None:
        return "-"
    if mode == "keepalive":
        return "%d, %d" % (r["ttft_ms"]["p99"], r["total_ms"]["p99"])
    return "%d / %d" % (r["ttft_ms"]["p50"], r["ttft_ms"]["p99"])

print("columns: nginx bbr | strait-ws bbr | strait-quic | nginx reno | strait-ws reno; fresh: TTFT p50 / p99; keepalive: TTFT p99, total p99 (ms); [older run]")
for mode, conc in [("fresh", 256), ("keepalive", 256), ("fresh", 32)]:
    print("\n%s %d" % (mode, conc))
    for link in links:
        row = []
        for col in cols:
            s = fmt(get(new, link, col, mode, conc), mode)
            if old:
                s += " [%s]" % fmt(get(old, link, col, mode, conc), mode)
            row.append(s)
        print("| %s | %s |" % (name(link), " | ".join(row)))

print("\nverdicts (ratios to nginx in the same run, same congestion control; QUIC against nginx under bbr)")
met = {}
for link in links:
    for col in cols[1:3] + cols[4:]:
        ng = ("nginx", "reno" if col[1] == "reno" else "bbr")
        for mode in ["fresh", "keepalive"]:
            s, n = get(new, link, col, mode, 256), get(new, link, ng, mode, 256)
            if s is None or n is None:
                continue
            ok = s["ok"] == s["attempted"]
            if mode == "fresh":
                a, b = s["ttft_ms"]["p50"] / n["ttft_ms"]["p50"], s["ttft_ms"]["p99"] / n["ttft_ms"]["p99"]
                good = ok and a <= 1 and b <= 1
                detail = "p50 %.2f p99 %.2f" % (a, b)
            else:
                a, b = s["ttft_ms"]["p99"] / n["ttft_ms"]["p99"], s["total_ms"]["p99"] / n["total_ms"]["p99"]
                good = ok and a <= 1 and b <= 1.05
                detail = "ttft p99 %.2f total p99 %.2f" % (a, b)
            met.setdefault((col, mode), []).append(good)
            print("%s %s %s %s %s %s %s ok %d/%d" % (link[0], link[1], link[2], col[0], col[1], mode, "OK" if good else "MISS", s["ok"], s["attempted"]) if False else
                  "%s %s %s %s %s %s %s ok %d/%d" % (link[0], link[1], link[2], col[0], col[1], mode, ("OK " if good else "MISS ") + detail, s["ok"], s["attempted"]))
print("\nlinks met of 5:")
for (col, mode), v in sorted(met.items()):
    print("  %s %s %s: %d/%d" % (col[0], col[1], mode, sum(v), len(v)))
print("\nbulk (MB/s):")
for key, r in sorted(new.items()):
    if key[6] == "bulk":
        print("  %s ms %s %s %s: %.2f MB/s (%d/%d)" % (key[0], key[1], key[3], key[4], r.get("mbps", 0), r["ok"], r["attempted"]))
