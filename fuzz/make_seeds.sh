#!/usr/bin/env bash
# Writes the seed corpora in seeds/: small valid CSV files, IDX pairs and model files, each in
# the input layout that its fuzz target documents. The models are trained by the command-line
# tool, so run this from a checkout that builds it. FEEDFORWARD may name a built binary.
set -euo pipefail

cd "$(dirname "$0")"
root=$(cd .. && pwd)
feedforward=${FEEDFORWARD:-}
if [[ -z $feedforward ]]; then
    cargo build --quiet --release --manifest-path "$root/Cargo.toml" --bin feedforward
    feedforward=$root/target/release/feedforward
fi

rm -rf seeds
mkdir -p seeds/csv seeds/idx seeds/model
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# CSV: one options byte (see fuzz_targets/csv.rs), then the file.
# 0x00: detect the header, classification, ',' and the last column as the target.
printf '\x00x1,x2,label\n1,2,cat\n3,4,dog\n5,6,cat\n' >seeds/csv/header-classes
# 0x05: regression, no header.
printf '\x05 1.5, 2,0.5\n3,-4e2,1.25\n\n7,8,9\n' >seeds/csv/regression
# 0x6a: header, ';', target named "y".
printf '\x6aa;y;b\n1;x;2\n3;z;4\n' >seeds/csv/semicolon-named-target
# 0x82: header and 2 features expected, with a byte-order mark, quoted names and CRLF line ends.
printf '\x82\xef\xbb\xbf"f 1","f,2"\r\n1,2\r\n3,4\r\n' >seeds/csv/bom-quoted-crlf

# IDX: a flags byte (bit 0: images named .gz, bit 1: labels named .gz), the images length as
# a little-endian u16, the images file, then the labels file.
# Three 2x2 images and their labels 2, 0, 2.
printf '\x00\x00\x08\x03\x00\x00\x00\x03\x00\x00\x00\x02\x00\x00\x00\x02' >"$work/images"
printf '\x00\x33\x66\xff\xff\x00\x00\x00\x33\x33\x33\x33' >>"$work/images"
printf '\x00\x00\x08\x01\x00\x00\x00\x03\x02\x00\x02' >"$work/labels"
# One 1x2x2 image with 4 dimensions and its label 1.
printf '\x00\x00\x08\x04\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x02' \
    >"$work/images4"
printf '\x01\x02\x03\x04' >>"$work/images4"
printf '\x00\x00\x08\x01\x00\x00\x00\x01\x01' >"$work/labels4"
gzip -n -c "$work/images" >"$work/images.gz"
gzip -n -c "$work/labels" >"$work/labels.gz"

# Writes seeds/idx/NAME from FLAGS, IMAGES and LABELS.
idx_seed() {
    local name=$1 flags=$2 images=$3 labels=$4
    local length
    length=$(stat -c %s "$images")
    {
        printf "\\x$(printf %02x "$flags")"
        printf "\\x$(printf %02x $((length % 256)))\\x$(printf %02x $((length / 256)))"
        cat "$images" "$labels"
    } >"seeds/idx/$name"
}
idx_seed raw 0 "$work/images" "$work/labels"
idx_seed four-dims 0 "$work/images4" "$work/labels4"
idx_seed gzip-named-gz 3 "$work/images.gz" "$work/labels.gz"
idx_seed gzip-raw-names 0 "$work/images.gz" "$work/labels"

# Models: the whole input is the file, saved by `feedforward train`. The weights repeat from
# run to run, but the recorded training times and data path do not.
printf 'a,b,c,label\n0,0,1,no\n1,0,0,yes\n0,1,1,no\n1,1,0,yes\n0,0,0,no\n1,1,1,yes\n' \
    >"$work/binary.csv"
printf 'a,b,label\n0,0,x\n1,0,y\n0,1,z\n1,1,x\n0,0,y\n1,1,z\n' >"$work/three.csv"
printf 'a,y\n0,0.5\n1,1.5\n2,2.5\n3,3.5\n4,4.5\n5,5.5\n' >"$work/regression.csv"
train() {
    "$feedforward" --quiet train --seed 1 --epochs 2 --test-split 0.34 "$@"
}
train --data "$work/binary.csv" --layers 3 --model seeds/model/binary.safetensors
train --data "$work/three.csv" --layers 4,2 --scale minmax \
    --model seeds/model/three-classes.safetensors
train --data "$work/regression.csv" --task regression --layers 2 --scale none \
    --model seeds/model/regression.safetensors

ls -l seeds/*
