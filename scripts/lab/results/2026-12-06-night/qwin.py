import json, re, collections, sys, statistics
d=sys.argv[1]
# relay: final window per session (remote addr), from renewal or session-end records
win={}
for line in open(d+'/relay.log'):
    if 'quic session ended' in line or 'renew an idle' in line:
        j=json.loads(line[line.index('{'):])
        win.setdefault(j['remote'].rsplit(':',1)[-1], j['cwnd_bytes'])  # first record: renewal (state after the cell) or end
# edge: request id -> session local addr
sess={}
for line in open(d+'/edge_quic.log'):
    if '\trequest\t' in line:
        j=json.loads(line[line.index('{'):])
        s=j.get('session','')
        sess[j['request_id']]=s.rsplit(':',1)[-1]
rows=collections.defaultdict(list)
for line in open(d+'/trace.jsonl'):
    t=json.loads(line)
    mode=t['label'].get('mode') or ''
    rid=t.get('request_id')
    if rid not in sess: continue
    w=win.get(sess[rid])
    key='cut' if (w is not None and w<40960) else ('unmoved' if w==40960 else ('grown' if w else 'unknown'))
    rows[(t.get('label',{}).get('scenario'), key)].append((t['ttft_ms'], t['total_ms']))
for k,v in sorted(rows.items()):
    tt=sorted(x[0] for x in v); tot=sorted(x[1] for x in v)
    q=lambda a,p: a[min(len(a)-1,int(p*len(a)))]
    print(k, len(v), 'ttft p50 %.0f p99 %.0f' % (q(tt,.5), q(tt,.99)), 'total p50 %.0f p99 %.0f' % (q(tot,.5), q(tot,.99)))
print('sessions with windows:', collections.Counter('cut' if w<40960 else ('unmoved' if w==40960 else 'grown') for w in win.values()))
