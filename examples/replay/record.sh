#!/bin/sh
# Records a decision log by really running Portcullis: service b's sidecar enforcing examples/istio/policies
# in front of a small HTTP workload, called over mTLS by curl as service a (with and without the demo JWT)
# and as the intruder. Usage (repository root, after `npm run build`): examples/replay/record.sh OUT.ndjson
# examples/replay/decisions.ndjson was made this way. Calls come from the first non-loopback IPv4 address
# when there is one: Linkerd authorizes every loopback caller (default/localhost), which would hide what a
# Linkerd translation of the same policies decides.
set -eu

out="${1:?usage: examples/replay/record.sh OUT.ndjson}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
tmp="$(mktemp -d)"
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

node "$root/dist/src/demo/make-pki.js" "$tmp/pki" >/dev/null
mkdir "$tmp/policies"
for f in "$root"/examples/istio/policies/*.yaml; do
  sed "s#file:///etc/portcullis/certs/jwks.json#file://$tmp/pki/jwks.json#" "$f" > "$tmp/policies/$(basename "$f")"
done

free_port() { node -e "const s=require('node:net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
addr="$(node -e "const a=Object.values(require('node:os').networkInterfaces()).flat().find((i)=>i.family==='IPv4'&&!i.internal);console.log(a?a.address:'127.0.0.1')")"
app_port="$(free_port)"; port="$(free_port)"; admin_port="$(free_port)"

# The workload: answers 200 to everything the sidecar forwards.
node -e "require('node:http').createServer((q,s)=>{q.resume();q.on('end',()=>s.end('ok\n'))}).listen($app_port,'127.0.0.1')" &
pids="$pids $!"

node "$root/dist/src/main.js" run \
  --listener "name=inbound-8443,listen=$addr:$port,upstream=http://127.0.0.1:$app_port,workloadPort=8080" \
  --policies "$tmp/policies" --cert "$tmp/pki/service-b.crt" --key "$tmp/pki/service-b.key" --trust-bundle "$tmp/pki/ca.crt" \
  --namespace demo --labels app=service-b --service-account service-b \
  --admin "127.0.0.1:$admin_port" --decision-log "$tmp/decisions.ndjson" --log-level error &
sidecar=$!
pids="$pids $sidecar"
i=0
until curl -sf "http://127.0.0.1:$admin_port/ready" >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -lt 100 ] || { echo "record.sh: the sidecar did not get ready" >&2; exit 1; }
  sleep 0.1
done

token="$(cat "$tmp/pki/demo.jwt")"
# call AS METHOD PATH [curl args...]: one request, over mTLS, to service b by name.
call() {
  who="$1"; method="$2"; path="$3"; shift 3
  curl -s -o /dev/null -w "%{http_code} $who $method $path\n" --resolve "service-b:$port:$addr" \
    --cacert "$tmp/pki/ca.crt" --cert "$tmp/pki/$who.crt" --key "$tmp/pki/$who.key" \
    -X "$method" -H 'user-agent: orders-web/2.4' "$@" "https://service-b:$port$path"
}
call service-a GET /api/orders
call service-a GET /api/orders -H "authorization: Bearer $token"
call service-a GET '/api/orders?status=open&page=2'
call service-a GET /api/orders/17
call service-a GET /api/orders/42 -H 'x-request-id: 7f3c9a'
call service-a GET /api/orders/42 -H "authorization: Bearer $token"
call service-a GET //api/orders/99
call service-a POST /api/orders -H "authorization: Bearer $token" -H 'content-type: application/json' -d '{"item":"book"}'
call service-a POST /api/orders -H 'content-type: application/json' -d '{"item":"pen"}'
call service-a DELETE /api/orders/42
call service-a GET /admin/config
call service-a GET /healthz
call intruder GET /api/orders
call intruder GET /api/orders/17 -H 'cookie: session=4b1d; theme=dark'

# SIGTERM flushes the decision log before the sidecar exits.
kill -TERM "$sidecar"
wait "$sidecar" 2>/dev/null || true
cp "$tmp/decisions.ndjson" "$out"
echo "recorded $(wc -l < "$out" | tr -d ' ') decisions from $addr into $out"
