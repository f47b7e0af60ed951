#!/usr/bin/env bash
# Waits for the ws-bench Indexed Job to complete (a failed one is reported at once, with its
# failed pods), saves each worker's JSON line as segment-I.json (I = the completion index)
# and merges them with `ws-bench merge`, which refuses a set that is not one whole run.
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

# Seconds of a timeout written like kubectl's: 90, 90s, 20m or 1h.
case "$timeout" in
    *[0-9]s | *[0-9]) seconds="${timeout%s}" ;;
    *[0-9]m) seconds=$((${timeout%m} * 60)) ;;
    *[0-9]h) seconds=$((${timeout%h} * 3600)) ;;
    *) echo "error: --timeout '$timeout' is not like 90s, 20m or 1h" >&2; exit 2 ;;
esac
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
    echo "error: --timeout '$timeout' is not like 90s, 20m or 1h" >&2
    exit 2
fi

# Polled rather than `kubectl wait --for=condition=complete`, which waits out the whole
# timeout for a Job that has already failed (backoffLimit 0: one failed worker fails it).
deadline=$((SECONDS + seconds))
while :; do
    conditions=" $(kubectl "${namespace[@]}" get "job/$job" \
        -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}') "
    case "$conditions" in
        *" Complete "*) break ;;
        *" Failed "*)
            failed="$(kubectl "${namespace[@]}" get pods --selector "batch.kubernetes.io/job-name=$job" \
                --field-selector status.phase=Failed \
                -o jsonpath='{range .items[*]}{.metadata.name}{" (segment "}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}{")\n"}{end}')"
            echo "error: job/$job failed, so its segments do not make up the run; failed pods:" >&2
            echo "${failed:-  (none left; see: kubectl ${namespace[*]} describe job/$job)}" >&2
            echo "see: kubectl ${namespace[*]} logs POD --container ws-bench" >&2
            exit 1
            ;;
    esac
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "error: job/$job did not complete within $timeout; see: kubectl ${namespace[*]} describe job/$job" >&2
        exit 1
    fi
    sleep 2
done

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
