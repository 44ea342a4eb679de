#!/usr/bin/env python3
"""Parses a Prometheus text exposition from stdin with prometheus_client's own parser and prints
the samples as JSON: {"name{label=value,...}": value}. Used by the tests to read /metrics the way
Prometheus would, not with a regular expression."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

samples = {}
types = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    types[family.name] = family.type
    for sample in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
        samples[f"{sample.name}{{{labels}}}"] = sample.value
json.dump({"samples": samples, "types": types}, sys.stdout)
