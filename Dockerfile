# The Shardline image: `shardline` as the entrypoint, `start` by default. Built in two stages so
# the runtime holds the compiled dist/ and the production dependencies only (no TypeScript, no
# test clients). docs/deployment.md describes the image and the Kubernetes manifests that use it.
#
#   docker build -t shardline .
#   docker run --rm -p 1883:1883 -p 8080:8080 -v shardline-data:/var/lib/shardline shardline

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY base base
COPY journal journal
COPY placement placement
COPY shard-model shard-model
COPY engine engine
COPY protocols protocols
COPY admin admin
COPY node node
COPY cli cli
COPY scripts scripts
RUN npm run build

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist dist
COPY bin bin
# The admin dashboard's static files, found beside dist/ at run time.
COPY console console
RUN ln -s /app/bin/shardline.js /usr/local/bin/shardline \
  && mkdir -p /var/lib/shardline && chown node:node /var/lib/shardline

# In a container the listeners must bind every interface to be reachable at all; the data
# directory is the volume below. Flags, other SHARDLINE_* variables or a config file override both.
ENV SHARDLINE_HOST=0.0.0.0 \
    SHARDLINE_DATA_DIR=/var/lib/shardline
VOLUME /var/lib/shardline
# The default ports: MQTT, journal gRPC, placement gRPC, admin HTTP (REST, /metrics, /healthz).
EXPOSE 1883 1771 1228 8080

# The image has no curl; node itself asks /healthz on the admin port (SHARDLINE_ADMIN_PORT when set).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.SHARDLINE_ADMIN_PORT || 8080}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

USER node
ENTRYPOINT ["shardline"]
CMD ["start"]
