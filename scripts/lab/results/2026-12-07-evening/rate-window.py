# Each rate phase's p99, and again without the 250 ms window that holds most of its slowest 1 %.
# Usage: python3 rate-window.py $LAB_DIR/trace.jsonl
import json,collections,sys
# p99 of each rate phase, and again without its worst 250 ms window (the one
# holding most of the slowest 1 %), per contender.
rows=[json.loads(l) for l in open(sys.argv[1])]
for c in ['direct','nginx','strait-ws','strait-quic']:
  allv=[r for r in rows if r['label'].get('contender')==c]
  for rate,v in (('500',allv[:5000]),('2000',allv[5000:])):
    if not v: continue
    s=sorted(r['total_ms'] for r in v); p99=s[int(len(s)*0.99)]
    thr=p99
    h=collections.Counter(int(r['start_ms']/250) for r in v if r['total_ms']>=thr)
    w,n=h.most_common(1)[0]
    rest=sorted(r['total_ms'] for r in v if int(r['start_ms']/250)!=w)
    print('%-11s %4s req/s  p99 %6.2f  worst 250 ms window at %5.2f s holds %3d of the slowest %d; p99 without it %6.2f; handshakes %d'%(
      c,rate,p99,w*0.25,n,len(s)-int(len(s)*0.99),rest[int(len(rest)*0.99)],sum(1 for r in v if r.get('tls_ms'))))
