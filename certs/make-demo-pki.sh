#!/bin/sh
# Creates the demo PKI for Portcullis: one CA for trust domain cluster.local and an X509-SVID per demo
# identity. Usage: certs/make-demo-pki.sh OUT_DIR [TTL]   (run from the repository root after `npm run build`)
#
#   OUT_DIR/ca/ca.crt, ca.key                        the demo CA (key 0600)
#   OUT_DIR/<name>/svid.crt, svid.key, bundle.crt   for name in service-a, service-b, intruder
#
# Re-running keeps an existing CA and renews the SVIDs (new keys, same IDs), which is also how the
# demo shows live rotation. Never commit the output: it contains private keys.
set -eu

out="${1:?usage: certs/make-demo-pki.sh OUT_DIR [TTL]}"
ttl="${2:-24h}"
here="$(cd "$(dirname "$0")/.." && pwd)"
portcullis="${PORTCULLIS:-node $here/dist/src/main.js}"
trust_domain="cluster.local"

if [ ! -f "$out/ca/ca.crt" ]; then
  $portcullis certs init --trust-domain "$trust_domain" --out "$out/ca"
fi

for name in service-a service-b intruder; do
  id="spiffe://$trust_domain/ns/demo/sa/$name"
  if [ -f "$out/$name/svid.crt" ]; then
    $portcullis certs issue --ca "$out/ca" --out "$out/$name" --renew --ttl "$ttl"
  else
    # DNS SANs let ordinary TLS clients (curl) reach each sidecar by its compose service name too.
    $portcullis certs issue --ca "$out/ca" --spiffe-id "$id" --ttl "$ttl" --out "$out/$name" \
      --dns "localhost,$name" --ip 127.0.0.1
  fi
done

# Containers may run as a non-root user: make the keys readable by the group that owns OUT_DIR's files
# only if the caller asks for it (PORTCULLIS_DEMO_KEY_MODE=0640); by default keys stay 0600.
if [ -n "${PORTCULLIS_DEMO_KEY_MODE:-}" ]; then
  chmod "$PORTCULLIS_DEMO_KEY_MODE" "$out"/*/svid.key
fi
echo "demo PKI ready in $out"
