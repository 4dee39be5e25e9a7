#!/usr/bin/python3
"""Parses the Prometheus text format on stdin with Debian's python3-prometheus-client (the
parser Prometheus' own Python client ships) and prints it as JSON for the e2e tests:
{"families": {name: type}, "samples": [[name, {labels}, value], ...]}. A text the parser
refuses exits 1 with its error on stderr."""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    families, samples = {}, []
    try:
        for fam in text_string_to_metric_families(text):
            if fam.name in families:
                raise ValueError(f"family {fam.name} appears twice")
            families[fam.name] = fam.type
            for s in fam.samples:
                v = s.value
                samples.append([s.name, s.labels, None if math.isnan(v) else ("+Inf" if math.isinf(v) else v)])
    except Exception as e:  # the parser's own errors are ValueError and friends
        print(f"prometheus_client refused the text: {e}", file=sys.stderr)
        sys.exit(1)
    json.dump({"families": families, "samples": samples}, sys.stdout)


if __name__ == "__main__":
    main()
