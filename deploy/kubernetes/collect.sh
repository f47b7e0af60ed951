#!/usr/bin/env bash
# Waits for the ws-bench Indexed Job to complete, saves each worker's JSON line as
# segment-I.json (I = the pod's completion index) and merges them with `ws-bench merge`,
# which refuses a set with a segment missing, duplicated or from another scenario.
#
#   deploy/kubernetes/collect.sh [-n NAMESPACE] [--job NAME] [--out DIR] [--timeout 20m]
#
# Needs kubectl (pointed at the cluster) and ws-bench on PATH, or WS_BENCH naming the
# command, e.g. WS_BENCH="docker run --rm -i -v $PWD:$PWD -w $PWD ws-bench".
set -euo pipefail

namespace=()
job=ws-bench
out=ws-bench-results
timeout=20m
while [ $# -gt 0 ]; do
    case "$1" in
        -n | --namespace) namespace=(--namespace "$2"); shift 2 ;;
        --job) job="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --timeout) timeout="$2"; shift 2 ;;
        -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
read -r -a ws_bench <<<"${WS_BENCH:-ws-bench}"

if ! kubectl "${namespace[@]}" wait --for=condition=complete --timeout="$timeout" "job/$job"; then
    echo "error: job/$job did not complete within $timeout; see: kubectl ${namespace[*]} describe job/$job" >&2
    exit 1
fi

mkdir -p "$out"
rm -f "$out"/segment-*.json
pods="$(kubectl "${namespace[@]}" get pods --selector "batch.kubernetes.io/job-name=$job" \
    --field-selector status.phase=Succeeded \
    -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}{"\n"}{end}')"
if [ -z "$pods" ]; then
    echo "error: job/$job has no succeeded pods to collect" >&2
    exit 1
fi
while read -r pod index; do
    # kubectl logs mixes stderr in: the report is the last line that is a JSON object.
    kubectl "${namespace[@]}" logs "$pod" --container ws-bench | grep '^{' | tail -n 1 >"$out/segment-$index.json" || true
    if [ ! -s "$out/segment-$index.json" ]; then
        echo "error: pod $pod (segment $index) printed no JSON report; see: kubectl ${namespace[*]} logs $pod" >&2
        exit 1
    fi
    echo "collected segment $index from $pod" >&2
done <<<"$pods"

"${ws_bench[@]}" merge --json "$out"/segment-*.json >"$out/merged.json"
"${ws_bench[@]}" merge "$out"/segment-*.json
echo "merged report: $out/merged.json" >&2
