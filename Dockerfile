# syntax=docker/dockerfile:1
#
# countersign container image.
#
#   docker build -t countersign:0.1.0 .
#   docker run --rm -v "$PWD/policies:/policies:ro" -e COUNTERSIGN_AWS_ACCESS_KEY_ID -e COUNTERSIGN_AWS_SECRET_ACCESS_KEY \
#     countersign:0.1.0 serve --policy /policies/aws.yaml --listen 0.0.0.0:50051
#
# Runs as uid 65532 and writes nothing to disk, so it works with readOnlyRootFilesystem.
# The ready policies are in the image under /app/policies.
# Node 24 LTS, the exact release pinned as NODE24_VERSION in scripts/tool-versions.env, on which CI
# runs the whole test suite a second time (make test-node24); change both together.

# ---- build: compile TypeScript (generates the ext_proc proto types first) ----
# tsconfig.build.json compiles src/ without its specs and test doubles (which .dockerignore also
# leaves out of the context), so dist/ holds only what runs.
FROM node:24.21.0-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY policies ./policies
RUN npm run build

# ---- deps: production node_modules only ----
FROM node:24.21.0-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime ----
FROM node:24.21.0-bookworm-slim AS runtime
# npm, npx, corepack and yarn are not needed to run: leave them out of the final image.
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
      /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-* \
    && groupadd --gid 65532 countersign \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin countersign
WORKDIR /app
ENV NODE_ENV=production
# package.json says "type": "module" for dist/**.js.
COPY --chown=0:0 package.json ./
COPY --chown=0:0 --from=deps /app/node_modules ./node_modules
COPY --chown=0:0 --from=build /src/dist ./dist
COPY --chown=0:0 policies ./policies
USER 65532:65532
# 50051: ext_proc gRPC (COUNTERSIGN_LISTEN, 127.0.0.1 unless set); 9464: /healthz, /readyz, /metrics.
EXPOSE 50051 9464
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["serve"]
