# One image for every keyfleet process; the command picks which:
#   args: ["services/ticket-keys/src/main.ts"]   ticket-keys
#   args: ["services/ocsp-fetch/src/main.ts"]    ocsp-fetch
#   args: ["lib/tls-engine/src/node/main.ts"]    a Node TLS node
#   args: ["cli/src/main.ts", "sync", "nginx", …] the sync sidecar / the CLI
# Runs as a non-root user and works with a read-only root filesystem (tsx's
# compile cache goes to /tmp: mount an emptyDir there). Node 24, the current
# LTS, at the version CI tests (scripts/pinned-tools.json).

# --- build: install exactly the lockfile's dependencies, check the types ---
FROM node:24.22.3-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY proto/package.json proto/
COPY lib/tls-engine/package.json lib/tls-engine/
COPY lib/service-kit/package.json lib/service-kit/
COPY services/ticket-keys/package.json services/ticket-keys/
COPY services/ocsp-fetch/package.json services/ocsp-fetch/
COPY test/support/package.json test/support/
COPY cli/package.json cli/
# No install scripts: every dependency works without one (see allowScripts).
RUN npm ci --ignore-scripts --no-audit --no-fund
# The engine's native TLS port (OpenSSL's ticket and client-certificate
# callbacks) is built here, against this image's Node and its headers; the
# runtime stage needs no compiler.
RUN apt-get update && apt-get install -y --no-install-recommends g++ make python3 \
  && rm -rf /var/lib/apt/lists/*
COPY . .
RUN node scripts/build-native.mjs && npx tsc -p tsconfig.json --noEmit

# --- runtime: sources and node_modules only, owned by root, run as 10001 ---
FROM node:24.22.3-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/package.json ./
COPY --from=build /app/proto ./proto
COPY --from=build /app/lib ./lib
COPY --from=build /app/services ./services
COPY --from=build /app/cli ./cli
USER 10001:10001
EXPOSE 50051 50052 9101 9102
ENTRYPOINT ["node", "--import", "tsx"]
CMD ["cli/src/main.ts", "--help"]
