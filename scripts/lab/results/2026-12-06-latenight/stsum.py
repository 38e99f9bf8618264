import re,collections,sys
c=collections.Counter()
for line in open(sys.argv[1]):
    m=re.search(r'(\w+)\(\d+<TCP:\[([\d.:]+)->([\d.:]+)\]>',line)
    if not m: continue
    call,src,dst=m.groups()
    eag='EAGAIN' in line
    if call=='write' or call=='writev':
        c[(src.split(':')[1]+'->'+dst.split(':')[1],call)]+=1
    elif not eag:
        c[(src.split(':')[1]+'<-'+dst.split(':')[1],'read')]+=1
    else:
        c[(src.split(':')[1]+'<-'+dst.split(':')[1],'read-EAGAIN')]+=1
n=int(sys.argv[2])
for k,v in sorted(c.items()):
    if v>=n/2: print("%-28s %-12s %6d %5.2f/req"%(k[0],k[1],v,v/n))
