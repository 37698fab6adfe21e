#!/bin/sh
# Helm post-renderer: adds the nova-guard sidecar to nova-api-osapi.
#   helm upgrade --install nova openstack-helm/nova -n openstack \
#     -f values-nova-guard.yaml --post-renderer ./post-render.sh
set -eu
cd "$(dirname "$0")"
cat > all.yaml
trap 'rm -f all.yaml' EXIT
kubectl kustomize .
