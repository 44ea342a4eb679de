#!/usr/bin/env python3
"""Saves carmad's GET /fragments/<prefix><n> response bodies as files <out>/fragments/<prefix><n>, so
that nginx can serve exactly the same bytes as static files."""
import http.client
import os
import sys

port, prefix, count, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
os.makedirs(os.path.join(out, "fragments"), exist_ok=True)
connection = http.client.HTTPConnection("127.0.0.1", port)
for n in range(count):
    connection.request("GET", f"/fragments/{prefix}{n}")
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        sys.exit(f"GET {prefix}{n}: {response.status}")
    with open(os.path.join(out, "fragments", f"{prefix}{n}"), "wb") as f:
        f.write(body)
