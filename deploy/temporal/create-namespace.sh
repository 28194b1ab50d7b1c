#!/bin/sh
# One-shot job of docker-compose.yml (runs in temporalio/admin-tools): register
# the namespace warroom uses, unless it exists already.
set -eu
address="${TEMPORAL_ADDRESS:?}"
namespace="${NAMESPACE:-default}"
retention="${RETENTION:-7d}"

until temporal operator cluster health --address "$address" >/dev/null 2>&1; do
  echo "create-namespace: waiting for Temporal at $address"
  sleep 2
done
if temporal operator namespace describe --namespace "$namespace" --address "$address" >/dev/null 2>&1; then
  echo "create-namespace: $namespace exists"
else
  temporal operator namespace create --namespace "$namespace" --retention "$retention" --address "$address"
  echo "create-namespace: registered $namespace (closed workflows kept $retention)"
fi
