# syntax=docker/dockerfile:1
# The controller and webhook image (one image, two commands; see docs/operations/install.md):
#   docker build -t ghcr.io/multicluster-service-account/multicluster-service-account:0.1.0 .
#
# Layout in the image: the bundled entry points of dist/ at /app (/app/streams/controller/main.js,
# /app/streams/webhook/main.js, /app/cli/kubemcsa.js: each a self-contained bundle, so no
# node_modules; see scripts/build.mjs) and package.json beside them (ES modules, the CLI
# version). WORKDIR /app, so the Deployments' commands `node streams/controller/main.js` and
# `node streams/webhook/main.js` resolve as written.

# Compile TypeScript. Install scripts are not needed to build (only dev tools have any).
FROM node:24-bookworm AS build
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY streams ./streams
COPY cli ./cli
RUN npm run build

# Runtime: distroless Node 24 (no shell, no package manager), non-root.
FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
# distroless keeps node at /nodejs/bin/node, off the default PATH; the Deployments run `node …`.
ENV PATH=/nodejs/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_ENV=production
COPY --from=build /build/dist/streams ./streams
COPY --from=build /build/dist/cli ./cli
COPY package.json ./
USER 65532:65532
# The image's entrypoint is node; the Deployments set command (node <script>) and args.
CMD ["cli/kubemcsa.js", "--help"]
