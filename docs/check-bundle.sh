#!/bin/sh
# Checks a .tukres with standard tools: openssl (Ed25519), b3sum, age, tar, jq.
# Usage: check.sh BUNDLE.tukres TUK.pub UPT.key
set -eu
F=$1; TUKPUB=$2; UPTKEY=$3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
[ "$(head -1 "$F")" = "tuk-results v1" ] || { echo "not a tuk-results v1 file"; exit 1; }
sed -n 2p "$F" > "$W/header.json"
# 1. The TUK's signature over line 1 + line 2 (without line 2's newline).
head -2 "$F" | head -c -1 > "$W/signed"
sed -n 3p "$F" | sed 's/^ed25519://' | base64 -d > "$W/sig"
grep -v '^#' "$TUKPUB" | awk '{print $3}' | sed 's/^ed25519://' | base64 -d > "$W/raw.pub"
[ "$(jq -r .signer "$W/header.json")" = "$(grep -v '^#' "$TUKPUB" | awk '{print $3}')" ] || { echo "signed by another key"; exit 1; }
{ printf '\060\052\060\005\006\003\053\145\160\003\041\000'; cat "$W/raw.pub"; } > "$W/pub.der"
openssl pkey -pubin -inform DER -in "$W/pub.der" -out "$W/pub.pem"
openssl pkeyutl -verify -pubin -inkey "$W/pub.pem" -rawin -in "$W/signed" -sigfile "$W/sig"
# 2. The payload: everything after line 3; its size and blake3 are in the signed header.
tail -c +$(( $(head -3 "$F" | wc -c) + 1 )) "$F" > "$W/payload.age"
[ "$(wc -c < "$W/payload.age")" = "$(jq -r .payload.size "$W/header.json")" ] || { echo "payload size differs"; exit 1; }
[ "$(b3sum --no-names "$W/payload.age")" = "$(jq -r .payload.blake3 "$W/header.json")" ] || { echo "payload hash differs"; exit 1; }
echo "payload: OK"
# 3. Decrypt with the UPT's age identity and check every member's blake3.
grep '^age:' "$UPTKEY" | awk '{print $2}' > "$W/id"
age -d -i "$W/id" -o "$W/payload.tar" "$W/payload.age"   # a gzipped tar
mkdir "$W/x" && tar -xzf "$W/payload.tar" -C "$W/x"
jq -r '.members[] | "\(.blake3)  \(.path)"' "$W/header.json" | (cd "$W/x" && b3sum --check --quiet)
echo "members: OK ($(jq '.members | length' "$W/header.json"))"
# 4. Every event chain: each line's "prev" is the blake3 of the line before it.
for ch in $(jq -r '.chains[] | @base64' "$W/header.json"); do
  chain=$(echo "$ch" | base64 -d | jq -r .chain); head=$(echo "$ch" | base64 -d | jq -r .head)
  prev=0000000000000000000000000000000000000000000000000000000000000000; n=0
  while IFS= read -r line; do
    [ "$(printf '%s' "$line" | jq -r .prev)" = "$prev" ] || { echo "chain $chain broken at event $n"; exit 1; }
    prev=$(printf '%s' "$line" | b3sum --no-names); n=$((n + 1))
  done < "$W/x/events/${chain#*/}.jsonl"
  [ "$prev" = "$head" ] || { echo "chain $chain does not end at the signed head"; exit 1; }
  echo "chain $chain: OK ($n events)"
done
