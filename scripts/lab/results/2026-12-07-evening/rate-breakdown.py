# Where the time of a rate run's requests goes: p50/p99 per contender and phase (the first 5 000
# requests of a contender are the 500 req/s phase, the rest 2 000 req/s), and for Strait the mean
# Server-Timing parts of the slowest 1 % against the 100 around the median.
# Usage: python3 rate-breakdown.py $LAB_DIR/trace.jsonl   (a LAB_TRACE=1 run of LAB_LOOP_CASES=rate)
import json,re,statistics,sys
rows=[json.loads(l) for l in open(sys.argv[1])]
def st(s):
    d={}
    for m in re.finditer(r'(\w+);dur=([\d.]+)',s or ''): d[m.group(1)]=float(m.group(2))
    return d
for c in ['direct','nginx','strait-ws','strait-quic']:
  allv=[r for r in rows if r['label'].get('contender')==c]
  for rate,v in (('500',allv[:5000]),('2000',allv[5000:])):
    if not v: continue
    v=sorted(v,key=lambda r:r['total_ms'])
    n=len(v); print(c,rate,n,'p50 %.2f p99 %.2f'%(v[n//2]['total_ms'],v[int(n*0.99)]['total_ms']))
    if c.startswith('strait'):
        slow=v[int(n*0.99):]; mid=v[n//2-50:n//2+50]
        for k in ['edge','tunnel','relay','upstream']:
            print('   %-8s slow %.2f  mid %.2f'%(k,statistics.mean(st(r.get('server_timing')).get(k,0) for r in slow),statistics.mean(st(r.get('server_timing')).get(k,0) for r in mid)))
        f=lambda r:r['total_ms']-sum(st(r.get('server_timing')).values())
        print('   outside  slow %.2f  mid %.2f'%(statistics.mean(map(f,slow)),statistics.mean(map(f,mid))))
        t0=v[0]['start_ms']
        print('   slow starts (s):', sorted(round(r['start_ms']/1000,1) for r in slow)[:80])
