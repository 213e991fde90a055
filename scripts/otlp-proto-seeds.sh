#!/usr/bin/env bash
# Writes the OTLP protobuf seeds of the fuzz corpora from tests/data/otlp_proto/*.txtpb, encoded
# by `protoc --encode` (an encoder independent of the decoder under test):
#   fuzz/corpus/decode_otlp_proto/  each request
#   fuzz/corpus/decode_spans/       each request (the spans topic auto-detects protobuf)
#   fuzz/corpus/replay_line/        each request in a {"topic":...,"payload_base64":...} envelope
# Files are named as libFuzzer names corpus entries, by the first 16 hex digits of their SHA-1.
# Run it after changing a .txtpb, delete the seeds it replaces, and commit what it writes.
set -euo pipefail
cd "$(dirname "$0")/.."

MESSAGE=opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

seed() {  # seed TARGET FILE
  local name
  name=$(sha1sum "$2" | cut -c1-16)
  cp "$2" "fuzz/corpus/$1/$name"
  echo "fuzz/corpus/$1/$name  <- $3"
}

mkdir -p fuzz/corpus/decode_otlp_proto
for text in tests/data/otlp_proto/*.txtpb; do
  protoc -I . --encode="$MESSAGE" rules/proto/otlp_trace_service.proto <"$text" >"$WORK/request"
  seed decode_otlp_proto "$WORK/request" "$text"
  seed decode_spans "$WORK/request" "$text"
  printf '{"topic":"llm.spans","partition":0,"offset":0,"payload_base64":"%s"}' \
    "$(base64 -w0 "$WORK/request")" >"$WORK/line"
  seed replay_line "$WORK/line" "$text (payload_base64)"
done
