# syntax=docker/dockerfile:1
# One image with the three binaries: auth-service, stream-service and authstream.
#   docker build -t authstream .
# The dependencies are compiled in their own layer (from the manifests alone), so a
# change to the sources rebuilds only the workspace's crates.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src

# 1. Dependencies: the manifests, and empty targets where the sources will go.
COPY Cargo.toml Cargo.lock ./
COPY runtime/Cargo.toml runtime/
COPY store/Cargo.toml store/
COPY security/Cargo.toml security/
COPY web/Cargo.toml web/
COPY testkit/Cargo.toml testkit/
COPY auth-service/Cargo.toml auth-service/
COPY stream-service/Cargo.toml stream-service/
COPY bench/Cargo.toml bench/
COPY verify/Cargo.toml verify/
COPY proto/Cargo.toml proto/
# Patched dependencies (vendor/README.md) are dependencies: whole.
COPY vendor vendor
RUN mkdir -p src runtime/src store/src security/src web/src testkit/src \
        auth-service/src stream-service/src bench/src tests/e2e tests/browser \
        store/tests/store security/tests/security stream-service/tests/api \
        verify/src verify/examples verify/tests/verify proto/src \
    && for crate in . auth-service stream-service bench; do \
        echo 'fn main() {}' > "$crate/src/main.rs"; touch "$crate/src/lib.rs"; \
    done \
    && touch runtime/src/lib.rs store/src/lib.rs security/src/lib.rs web/src/lib.rs \
        testkit/src/lib.rs tests/e2e/main.rs tests/browser/main.rs \
        store/tests/store/main.rs security/tests/security/main.rs stream-service/tests/api/main.rs \
        stream-service/tests/memory.rs verify/src/lib.rs verify/tests/verify/main.rs \
        proto/src/lib.rs \
    && echo 'fn main() {}' > verify/examples/axum_service.rs \
    && echo 'fn main() {}' > verify/examples/actix_service.rs \
    && cargo build --release --locked --workspace --bins \
    && rm -rf src runtime/src store/src security/src web/src testkit/src auth-service/src stream-service/src bench/src verify/src verify/examples \
        proto/src

# 2. The workspace itself. The crate roots are touched so that cargo rebuilds them
# rather than trusting the empty stand-ins compiled above.
COPY . .
RUN touch src/lib.rs src/main.rs runtime/src/lib.rs store/src/lib.rs security/src/lib.rs \
        web/src/lib.rs testkit/src/lib.rs \
        auth-service/src/lib.rs auth-service/src/main.rs \
        stream-service/src/lib.rs stream-service/src/main.rs \
        bench/src/lib.rs bench/src/main.rs verify/src/lib.rs proto/src/lib.rs \
    && cargo build --release --locked --workspace --bins \
    && mkdir -p /out /out/keys /out/clients \
    && cp target/release/auth-service target/release/stream-service target/release/authstream /out/

# The runtime: glibc, CA certificates and a non-root user; no shell, no package
# manager, no compiler. Health checks use `<binary> healthcheck`.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/auth-service /out/stream-service /out/authstream /usr/local/bin/
# The signing-key and service-client volumes' mount points, owned by the user the
# services run as (a new named volume takes the ownership of its mount point).
COPY --from=build --chown=65532:65532 /out/keys /keys
COPY --from=build --chown=65532:65532 /out/clients /clients
USER 65532:65532
ENV LOG_FORMAT=json
EXPOSE 8000 8081 8082
CMD ["/usr/local/bin/authstream"]
