#!/usr/bin/env python3
"""Write a copy of a model file whose JSON description contains a large array.

Usage: large_description.py SOURCE.safetensors OUTPUT.safetensors COUNT [KEY]

The description's KEY ("training" unless given) becomes an array of COUNT `[0]`, about
4 * COUNT bytes of text. Loading the output shows how much memory the model loader takes
for the description; see docs/fuzzing.md.
"""

import json
import struct
import sys


def main() -> None:
    source, output, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    key = sys.argv[4] if len(sys.argv) > 4 else "training"

    raw = open(source, "rb").read()
    header_length = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + header_length])
    tensor_data = raw[8 + header_length :]

    description = json.loads(header["__metadata__"]["feedforward"])
    description[key] = [[0]] * count
    header["__metadata__"]["feedforward"] = json.dumps(description, separators=(",", ":"))

    # Tensor offsets are relative to the end of the header, so only the header changes. The
    # safetensors writer pads the header with spaces to a multiple of 8 bytes, and so does
    # this script.
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(output, "wb") as file:
        file.write(struct.pack("<Q", len(encoded)) + encoded + tensor_data)


if __name__ == "__main__":
    main()
