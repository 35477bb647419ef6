#!/usr/bin/env bash
# Proves the compose demo through the sidecars (run on the host; ports are published on loopback):
# allowed 200, denied by path 403, denied by identity 403, gRPC allowed/denied, and the audit-only twin
# forwarding the intruder's call (200) and logging "would_deny": true.
set -uo pipefail
A=${A_PORT:-18080}; I=${INTRUDER_PORT:-18081}; ADMIN=${B_ADMIN_PORT:-18090}
AUDIT=${AUDIT:-1}
fail=0
expect() { # expect CODE URL [curl args...]
  local want=$1 url=$2; shift 2
  local got
  got=$(curl -s -o /dev/null -m 10 -w '%{http_code}' "$@" "$url" || true)
  if [ "$got" = "$want" ]; then echo "  ok   $want  $url"; else echo "  FAIL want $want got $got  $url"; fail=1; fi
}
echo "smoke: enforce"
expect 200 "http://127.0.0.1:$ADMIN/ready"
expect 200 "http://127.0.0.1:$A/call/api/orders"
expect 403 "http://127.0.0.1:$A/call/admin/config"
expect 403 "http://127.0.0.1:$I/call/api/orders"
expect 403 "http://127.0.0.1:$A/call/api/orders" -X POST -H 'content-type: application/json' --data '{"item":"gate"}'
expect 200 "http://127.0.0.1:$A/grpc/GetOrder"
expect 403 "http://127.0.0.1:$A/grpc/DeleteOrder"
# The image's HEALTHCHECK (node one-liner on /ready) and its non-root user, as Docker reports them.
if command -v docker >/dev/null 2>&1; then
  cid_b=$(docker ps -q --filter "label=com.docker.compose.service=sidecar-b" ${PROJECT:+--filter "label=com.docker.compose.project=$PROJECT"} | head -1)
  if [ -n "$cid_b" ]; then
    health=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$cid_b")
    user=$(docker inspect -f '{{.Config.User}}' "$cid_b")
    ro=$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$cid_b")
    token=$(docker exec "$cid_b" cat /etc/portcullis/certs/demo.jwt 2>/dev/null | tr -d '\n')
    expect 201 "http://127.0.0.1:$A/call/api/orders" -X POST -H 'content-type: application/json' -H "authorization: Bearer $token" --data '{"item":"gate"}'
    if [ "$health" = healthy ] && [ "$user" = 10001:10001 ] && [ "$ro" = true ]; then
      echo "  ok   sidecar-b healthy (HEALTHCHECK), user $user, read-only rootfs"
    else
      echo "  FAIL sidecar-b health=$health user=$user readonly=$ro"; fail=1
    fi
  fi
fi
if [ "$AUDIT" = 1 ]; then
  echo "smoke: audit-only twin"
  expect 200 "http://127.0.0.1:$I/call-audit/api/orders"
  cid=$(docker ps -q --filter "label=com.docker.compose.service=sidecar-b-audit" ${PROJECT:+--filter "label=com.docker.compose.project=$PROJECT"} | head -1)
  # Decision lines are written in batches within 100 ms: poll briefly. The logs are captured before
  # grepping: under pipefail, `docker logs | grep -q` fails when grep exits early and docker gets SIGPIPE.
  logged=0
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    logs=$([ -n "$cid" ] && docker logs "$cid" 2>/dev/null || true)
    if printf '%s\n' "$logs" | grep '"would_deny":true' | grep 'sa/intruder' >/dev/null; then logged=1; break; fi
    sleep 0.3
  done
  if [ "$logged" = 1 ]; then
    echo "  ok   audit sidecar logged would_deny for the intruder"
  else
    echo "  FAIL no would_deny line from sidecar-b-audit"; fail=1
  fi
fi
exit $fail
