import json, glob, sys, collections
# For each server (relay) qlog: packet_lost events (trigger), spurious_loss, congestion_state_updated, final cwnd.
tot=collections.Counter()
for f in sorted(glob.glob('/tmp/qlogs/*_server.sqlog')):
    lost=[]; spur=[]; states=[]; cw=None; sent=0
    for rec in open(f, 'rb').read().split(b'\x1e'):
        rec=rec.strip()
        if not rec: continue
        try: e=json.loads(rec)
        except Exception: continue
        n=e.get('name'); d=e.get('data',{})
        if n=='recovery:packet_lost': lost.append((e['time'], d.get('header',{}).get('packet_number'), d.get('trigger')))
        elif n=='recovery:spurious_loss': spur.append((e['time'], d))
        elif n=='recovery:congestion_state_updated': states.append((round(e['time']), d.get('new')))
        elif n=='recovery:metrics_updated' and 'congestion_window' in d: cw=d['congestion_window']
        elif n=='transport:packet_sent': sent+=1
    trig=collections.Counter(t for _,_,t in lost)
    tot.update(trig); tot['spurious']+=len(spur); tot['sessions']+=1
    cut=[s for s in states if s[1] in ('recovery','congestion_avoidance')]
    print(f.split('/')[-1][:12], 'sent', sent, 'lost', dict(trig), 'spurious', len(spur), 'cwnd', cw, 'states', states[:8])
print(tot)
