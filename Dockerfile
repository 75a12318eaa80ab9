# mxops operator image: Node.js 24 LTS, production dependencies only, non-root, read-only root filesystem.
# The build steps live in scripts/build-release.sh, which the test suite runs (see test/integration/release.test.ts).
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY . .
RUN bash scripts/build-release.sh /out

FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
COPY --from=build /out /app
USER 65532:65532
ENV NODE_ENV=production
EXPOSE 8080 8081 9443
# Nothing is written at run time: certificates are generated in memory or mounted, logs go to stdout.
ENTRYPOINT ["/nodejs/bin/node", "/app/mxops.mjs"]
