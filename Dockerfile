# syntax=docker/dockerfile:1
# tow-and-go-sink: Node 24 runs the TypeScript sources directly (type stripping), so there is no
# build step; the image holds src/, avro/ and the production dependencies only. The devDependency
# `node` (the Node 24 binary used for local development) is not installed: the base image has it.

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only (kafkajs, the registry client, the S3 SDK, avsc, pino, zod); none of
# them needs an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production HTTP_HOST=0.0.0.0
WORKDIR /app
# Owned by root and read-only for the service user.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY avro ./avro
COPY src ./src
# The image's `node` user, by number: Kubernetes' runAsNonRoot can only verify a numeric user.
# The service writes no file (logs go to stdout), so the root filesystem can be read-only:
#   docker run --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges ...
# (docker-compose.yml runs it that way; a unit test checks both files.)
USER 1000:1000
EXPOSE 9464
# Liveness: /healthz answers 503 once the consumer has failed for good (the process then exits 1).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.HTTP_PORT || 9464}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM (docker stop) starts a graceful shutdown bounded by SHUTDOWN_TIMEOUT_MS (default 30 s):
# give the container a longer stop timeout than that.
ENTRYPOINT ["node", "src/cli.ts"]
CMD ["consume"]
