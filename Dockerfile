# Portcullis sidecar image: build stage compiles TypeScript and the re2 native addon; the runtime stage
# holds only the node binary, compiled JS and production node_modules, runs as a non-root user on a read-only root filesystem.
FROM node:20-bookworm-slim AS build
WORKDIR /src
# re2 is a native addon (node-gyp): the build stage needs a C++ toolchain; the runtime stage does not.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# node-headers.tar.gz is optional: offline builders (CI without nodejs.org) stage the Node headers that
# match the base image's node there; with internet access node-gyp fetches them itself.
COPY package.json package-lock.json node-headers.tar.gz* ./
RUN if [ -f node-headers.tar.gz ]; then \
      mkdir -p /opt/node-headers && tar -xzf node-headers.tar.gz -C /opt/node-headers \
      && export npm_config_nodedir=/opt/node-headers; \
    fi \
 && npm ci --no-audit --no-fund \
 && node -e "require('re2')"
COPY tsconfig.json ./
COPY src ./src
COPY test/helpers ./test/helpers
# Only the runtime's files leave this stage: compiled JS without tests or source maps, production
# node_modules, and of re2's native build only the stripped addon (its object files and vendored RE2/abseil
# sources are ~87 MB the runtime never reads).
RUN npx tsc -p tsconfig.json --outDir dist \
 && rm -rf dist/test \
 && find dist \( -name '*.test.js' -o -name '*.map' \) -delete \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && mv node_modules/re2/build/Release/re2.node /tmp/re2.node \
 && rm -rf node_modules/re2/build node_modules/re2/vendor \
 && mkdir -p node_modules/re2/build/Release \
 && strip --strip-unneeded -o node_modules/re2/build/Release/re2.node /tmp/re2.node \
 && find node_modules \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete \
 && node -e "require('re2'); new (require('re2'))('^a+$').test('aaa') || process.exit(1)"

# The runtime is Debian slim plus the node binary alone: no npm, npx or corepack in a sidecar.
FROM debian:bookworm-slim AS runtime
ENV NODE_ENV=production
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
# Fixed numeric IDs so Kubernetes runAsNonRoot can verify them and volume permissions are predictable.
RUN groupadd --system --gid 10001 portcullis \
 && useradd --system --uid 10001 --gid portcullis --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin portcullis
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY examples ./examples
# The addon loads against this stage's C++ runtime (libstdc++ from Debian slim), or the build fails here.
RUN node -e "new (require('re2'))('^a+$').test('aaa') || process.exit(1)"
USER 10001:10001
# 8443 inbound mTLS, 15000 admin (/ready, /live, /metrics, /policy).
EXPOSE 8443 15000
# No curl in the image: a node one-liner probes /ready on the admin port (PORTCULLIS_ADMIN_PORT to override).
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "require('http').get({host:'127.0.0.1',port:process.env.PORTCULLIS_ADMIN_PORT||15000,path:'/ready',timeout:2500},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"]
# Exec form: node is PID 1 and `portcullis run` handles SIGTERM by draining connections.
ENTRYPOINT ["node", "/app/dist/src/main.js"]
CMD ["run", "--config", "/etc/portcullis/portcullis.yaml"]
