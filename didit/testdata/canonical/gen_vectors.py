#!/usr/bin/env python3
"""Generate canonical-JSON test vectors with Python itself as the oracle.

Didit signs X-Signature-V2 over
    json.dumps(shorten_floats(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
and puts the same call with ensure_ascii=True on the wire (SPEC §1.3, §1.4).
Each vector's "input" is a JSON text; "canonical" and "wire" are what those two
calls produce for it. Run from the repo root:

    python3 didit/testdata/canonical/gen_vectors.py > didit/testdata/canonical/vectors.json
"""
import json
import sys


def shorten_floats(v):
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, dict):
        return {k: shorten_floats(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shorten_floats(x) for x in v]
    return v


def dumps(v, ensure_ascii):
    return json.dumps(shorten_floats(v), sort_keys=True, separators=(",", ":"), ensure_ascii=ensure_ascii)


INPUTS = {
    "float 1e-05": '{"x": 1e-05}',
    "float 0.00001 literal": '{"x": 0.00001}',
    "float 1.5e-07": '{"x": 1.5e-07}',
    "float 0.1": '{"x": 0.1}',
    "float 12345678.9": '{"x": 12345678.9}',
    "float 1e16 whole": '{"x": 1e16}',
    "float -0.0": '{"x": -0.0}',
    "float 100.0": '{"x": 100.0}',
    "float 96.0 0.0 80.0": '{"a": 96.0, "b": 0.0, "c": 80.0, "d": 91.37}',
    "float 0.0001 boundary": '{"x": 0.0001}',
    "float just below 1e-4": '{"x": 0.00009999}',
    "float 1E2 and 1e+2": '{"x": [1E2, 1e+2, 1.5E+3, 2.5e-3]}',
    "float 1e23 exact": '{"x": 1e23}',
    "float max": '{"x": 1.7976931348623157e308}',
    "float min subnormal": '{"x": 5e-324}',
    "float 2^53+1 as float": '{"x": 9007199254740993.0}',
    "float large non-integral": '{"x": 123456789012345.6}',
    "float negative": '{"x": [-1.5, -0.5, -2.0, -1e-7]}',
    "float 1e15 plus half": '{"x": 1000000000000000.5}',
    "float third": '{"x": 0.3333333333333333}',
    "int -0": '{"x": -0}',
    "int beyond 2^53": '{"x": 9007199254740993, "y": 123456789012345678901234567890, "z": -98765432109876543210}',
    "html chars": '{"url": "https://media.example.com/a.jpg?X-Amz-Expires=900&X-Amz-Signature=ab<cd>"}',
    "slash and escaped slash": '{"a": "a/b", "b": "a\\/b"}',
    "line and paragraph separators": '{"x": "a\\u2028b\\u2029c", "y": "raw \u2028 \u2029"}',
    "control characters": '{"x": "\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f \\u007f"}',
    "quote and backslash": '{"x": "say \\"hi\\" \\\\ bye"}',
    "emoji and flags": '{"x": "Pepe \U0001F1EF\U0001F1F5 \U0001F600", "y": "\\ud83d\\ude00"}',
    "latin and cjk": '{"name": "José Müller", "street": "Königstraße", "ja": "ホセ・ミュラー", "escaped": "\\u00e9\\u65e5"}',
    "key order nested": '{"b": {"z": 1, "a": {"y": [ {"d": 1, "c": 2} ], "x": 0}}, "a": [], "C": null, "_": true, "0": false}',
    "key order unicode": '{"é": 1, "z": 2, "Z": 3, "a": 4, "\U0001F600": 5, "\uffff": 6, "ä": 7}',
    "escaped key sorts decoded": '{"\\u0062": 1, "a": 2, "\\u0041": 3}',
    "duplicate keys last wins": '{"a": 1, "b": 2, "a": 3}',
    "empty containers": '{"o": {}, "a": [], "n": [{}, [], [[]]], "s": ""}',
    "whitespace everywhere": ' \n\t{ "a" :\r\n [ 1 , 2 ] , "b" : { } }\n ',
    "literals": '{"t": true, "f": false, "n": null}',
    "top-level array": '[3, 1.0, "x", {"b": 1, "a": 2}]',
    "top-level string": '"h\u00e9llo"',
    "top-level number": '2.50',
}


def main():
    vectors = []
    for name, text in INPUTS.items():
        data = json.loads(text)
        vectors.append({
            "name": name,
            "input": text,
            "canonical": dumps(data, ensure_ascii=False),
            "wire": dumps(data, ensure_ascii=True),
        })
    json.dump({"generator": "didit/testdata/canonical/gen_vectors.py",
               "python": sys.version.split()[0],
               "vectors": vectors}, sys.stdout, indent=1, ensure_ascii=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
