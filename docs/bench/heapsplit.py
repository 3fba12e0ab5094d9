#!/usr/bin/env python3
"""Split a heap profile's live bytes (inuse_space) by owner, from the whole stack of each sample:
go tool pprof -raw FILE | split.py"""
import re, sys
cats = [  # first match on the stack wins
    ('projections', r'creditledger/projections\.'),
    ('writer', r'creditledger/writer\.|creditledger/partition\.'),
    ('command service (requests kept by the writer)', r'creditledger/commands'),
    ('audit checkpoint publisher', r'creditledger/audit\.|checkpointPublisher'),
    ('nats-server', r'nats-server/v2'),
    ('nats client', r'nats-io/nats\.go'),
    ('other', r'.'),
]
text = sys.stdin.read()
samples, locs = text.split('\nLocations\n')
locs = locs.split('\nMappings\n')[0]
fn, cur = {}, None
for line in locs.splitlines():
    m = re.match(r'\s*(\d+): 0x\S+ M=\d+ (.*)', line)
    if m:
        cur = m.group(1); fn[cur] = m.group(2)
    elif cur:
        fn[cur] += ' ' + line.strip()  # inlined frames
tot = {c: 0 for c, _ in cats}
for line in samples.splitlines():
    m = re.match(r'\s*\d+\s+\d+\s+\d+\s+(\d+): ([\d ]+)$', line)
    if not m:
        continue
    v = int(m.group(1)); stack = ' '.join(fn.get(i, '') for i in m.group(2).split())
    for c, rx in cats:
        if re.search(rx, stack):
            tot[c] += v; break
all_ = sum(tot.values())
for c, _ in cats:
    print(f"{c:48s} {tot[c]/1048576:8.1f} MiB {100*tot[c]/all_:5.1f} %")
print(f"{'live heap (sampled estimate)':48s} {all_/1048576:8.1f} MiB")
