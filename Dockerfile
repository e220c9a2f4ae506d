# Build and run pasar. The region data ships inside the image (data/regions).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/target/release/pasar /usr/local/bin/pasar
COPY data ./data
ENV PASAR_BIND=0.0.0.0:8080
EXPOSE 8080
CMD ["pasar", "serve"]
