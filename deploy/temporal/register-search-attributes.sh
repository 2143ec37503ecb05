#!/usr/bin/env bash
# Registers the search attributes every runbook sets (workflows/contracts/search-attributes.ts,
# SEARCH_ATTRIBUTE_REGISTRATIONS) on a production namespace, once per namespace. Workflows that set an
# unregistered attribute fail their workflow task, so run this before the first worker starts.
#
#   deploy/temporal/register-search-attributes.sh self-hosted   # temporal CLI, env config: TEMPORAL_ADDRESS,
#                                                              # TEMPORAL_NAMESPACE, TEMPORAL_TLS_* / TEMPORAL_PROFILE
#   deploy/temporal/register-search-attributes.sh cloud         # tcld (after `tcld login`), TEMPORAL_NAMESPACE=<ns>.<account>
#   deploy/temporal/register-search-attributes.sh print         # the attributes, one "<name> <type>" a line
#
# Safe to run again: an attribute that already exists with the same type is left alone (current servers accept the
# create again; older ones answer "already exists", taken as success). One of another type fails the run.
# test/kube/deploy-manifests.test.ts checks this list against the TypeScript one.
set -euo pipefail

ATTRIBUTES=(
  "DrRunbook Keyword"
  "DrCluster Keyword"
  "DrSite Keyword"
  "DrPhase Keyword"
  "DrApprovalPending Bool"
  "DrOutcome Keyword"
)

mode="${1:-}"
case "$mode" in
  print)
    printf '%s\n' "${ATTRIBUTES[@]}"
    ;;
  self-hosted)
    : "${TEMPORAL_NAMESPACE:?set TEMPORAL_NAMESPACE (and TEMPORAL_ADDRESS, TLS or TEMPORAL_PROFILE as for the workers)}"
    for a in "${ATTRIBUTES[@]}"; do
      read -r name type <<<"$a"
      if out=$(temporal operator search-attribute create --namespace "$TEMPORAL_NAMESPACE" --name "$name" --type "$type" 2>&1); then
        echo "registered $name ($type)"
      elif grep -qi 'already exists' <<<"$out" && ! grep -qi 'type' <<<"$out"; then
        echo "registered $name ($type)"
      else
        echo "failed to register $name ($type): $out" >&2
        exit 1
      fi
    done
    ;;
  cloud)
    : "${TEMPORAL_NAMESPACE:?set TEMPORAL_NAMESPACE to the Cloud namespace, <name>.<account id>}"
    args=()
    for a in "${ATTRIBUTES[@]}"; do
      read -r name type <<<"$a"
      args+=(--search-attribute "$name=$type")
    done
    tcld namespace search-attributes add --namespace "$TEMPORAL_NAMESPACE" "${args[@]}"
    ;;
  *)
    echo "usage: $0 self-hosted|cloud|print" >&2
    exit 2
    ;;
esac
