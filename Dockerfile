# syntax=docker/dockerfile:1
#
# One image per service of the build-log pipeline, each a target of this
# file:
#
#   docker build --target relay    -t codebay/relay .
#   docker build --target launcher -t codebay/launcher .
#   docker build --target builder  -t codebay/builder .
#
# The services run their TypeScript sources through tsx, which is a
# production dependency, so there is no compile step and `npm ci --omit=dev`
# installs everything a service needs at run time.

FROM node:20-bookworm-slim AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY bin ./bin
COPY shared ./shared
COPY relay ./relay
COPY launcher ./launcher
COPY builder ./builder
COPY logs ./logs

# Viewers' WebSocket and HTTP long-polling, /healthz, /readyz and /metrics.
FROM runtime AS relay
EXPOSE 9002
USER node
CMD ["bin/relay"]

# The builder clones with git and runs the project's npm scripts, so its
# image, and the launcher's (whose local runner starts builders as child
# processes), carry git and CA certificates.
FROM runtime AS builder-tools
RUN apt-get update \
  && apt-get install -y --no-install-recommends git ca-certificates \
  && rm -rf /var/lib/apt/lists/*

FROM builder-tools AS launcher
EXPOSE 9000
USER node
CMD ["bin/launcher"]

FROM builder-tools AS builder
USER node
CMD ["bin/builder"]
