"""workload.py -- a dict/json/list-heavy Python program for the preload test.

run.sh runs it with and without the preload library and compares stdout byte
for byte.  Everything printed is derived from deterministic data (a seeded
random.Random, no set iteration order, no ids or addresses), so any
difference is the allocator's doing.  The work is sized so CPython makes both
small (pymalloc) and large (malloc >= 4 KiB) allocations: big dicts and lists
resize through realloc, and the JSON strings are megabytes long.
"""
import collections
import hashlib
import json
import random
import sys


def digest(obj):
    """sha256 of a canonical JSON form: order-independent for dict keys."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def main():
    rng = random.Random(20240611)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 9)))
             for _ in range(20000)]

    # Dict churn: build, update, delete half, rebuild (resizes both ways).
    counts = collections.Counter(words)
    table = {}
    for i, w in enumerate(words * 5):
        table[w + str(i % 997)] = table.get(w + str(i % 997), 0) + i
    for k in sorted(table)[::2]:
        del table[k]
    table.update({k + "!": v * 3 for k, v in list(table.items())[:5000]})
    print("words", len(words), "distinct", len(counts), "top", counts.most_common(3))
    print("table", len(table), digest(table))

    # Lists: big lists of tuples, sort by several keys, slicing and concat.
    rows = [(rng.randint(0, 10**6), rng.random(), words[i % len(words)])
            for i in range(200000)]
    rows.sort(key=lambda r: (r[2], -r[0]))
    merged = rows[:50000] + rows[-50000:] + rows[70000:80000] * 3
    print("rows", len(rows), "merged", len(merged), digest(merged[:2000]))

    # Nested structures through JSON: several MB of text each way.
    doc = {
        "records": [
            {"id": i, "name": words[i % len(words)] * (1 + i % 7),
             "tags": words[i % 50: i % 50 + i % 11],
             "score": round(rng.random() * 1000, 6),
             "nested": {"a": list(range(i % 30)), "b": {"c": str(i)}}}
            for i in range(60000)
        ],
        "meta": {"seed": 20240611, "version": 3},
    }
    text = json.dumps(doc, sort_keys=True)
    back = json.loads(text)
    assert back == doc
    print("json bytes", len(text), hashlib.sha256(text.encode()).hexdigest()[:16])

    # Grow one str and one bytearray past many sizes (realloc on each).
    s = ""
    buf = bytearray()
    for i in range(30000):
        s += words[i % len(words)]
        buf += words[i % len(words)].encode() * (1 + i % 3)
    print("grown", len(s), len(buf), hashlib.sha256(buf).hexdigest()[:16])

    # Group and aggregate, then drop everything and do it again.
    for round_ in range(3):
        groups = collections.defaultdict(list)
        for r in back["records"]:
            groups[len(r["tags"])].append(r["score"])
        summary = {k: (len(v), round(sum(v), 3)) for k, v in sorted(groups.items())}
        print("round", round_, digest(summary))
        del groups
    return 0


if __name__ == "__main__":
    sys.exit(main())
