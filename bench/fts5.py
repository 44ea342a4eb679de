#!/usr/bin/env python3
"""SQLite FTS5 as the full-text index, measured: 100,000 fragments built like bench/query.sh's (3 to 8
random sentences of the man-page corpus each) in a contentless FTS5 table, then 300 queries of up to
10 words (OR) ranked by bm25(), top 40. Uses Python's sqlite3 module, which links the same Debian
libsqlite3 (3.40.1) that carmad does. docs/decisions.md compares it with carmad's in-memory index.

    python3 bench/fts5.py
"""
import json, os, random, re, sqlite3, tempfile, time
src=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'corpus', 'manpages-full.jsonl')
sentences=[]
for line in open(src):
    for s in re.split(r"(?<=[.!?])\s+|\n", json.loads(line)["content"]):
        if len(s.split())>=5: sentences.append(s.strip())
random.seed(1)
docs=[" ".join(random.sample(sentences, random.randint(3,8))) for i in range(100000)]
path=os.path.join(tempfile.mkdtemp(), 'fts.db')
if os.path.exists(path): os.remove(path)
db=sqlite3.connect(path)
db.execute("CREATE VIRTUAL TABLE t USING fts5(content, content='', tokenize='unicode61')")
t=time.time()
with db:
    db.executemany("INSERT INTO t(rowid, content) VALUES (?,?)", ((i,d) for i,d in enumerate(docs)))
print("insert/s", 100000/(time.time()-t), "size MB", os.path.getsize(path)/1e6)
qs=[]
for i in range(300):
    words=re.findall(r"[a-z0-9]+", random.choice(sentences).lower())
    if words: qs.append(" OR ".join('"%s"'%w for w in words[:10]))
lat=[]
for q in qs:
    t=time.perf_counter()
    db.execute("SELECT rowid, bm25(t) FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT 40",(q,)).fetchall()
    lat.append((time.perf_counter()-t)*1000)
lat.sort(); n=len(lat); print("fts5 p50 ms %.2f p90 %.2f p99 %.2f"%(lat[n//2],lat[n*9//10],lat[n*99//100]))
