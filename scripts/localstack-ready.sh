#!/usr/bin/env bash
# Check, before `make test-localstack` installs or runs anything, that LocalStack can answer:
# the docker CLI is there, its daemon answers, and $LOCALSTACK_ENDPOINT/_localstack/health
# (default http://localhost:4566) answers. Each failure says how to fix it. docs/localstack.md
set -euo pipefail

endpoint="${LOCALSTACK_ENDPOINT:-http://localhost:4566}"
endpoint="${endpoint%/}"
start="docker compose -f docker-compose.localstack.yml up -d --wait"

fail() {
    echo "make test-localstack: $*" >&2
    echo "  (see docs/localstack.md)" >&2
    exit 2
}

command -v docker >/dev/null 2>&1 \
    || fail "the docker CLI is not installed: LocalStack runs in Docker; install Docker, then run: $start"

# `timeout` is GNU coreutils: absent on macOS, where `docker info` is run as it is.
limit=()
command -v timeout >/dev/null 2>&1 && limit=(timeout 20)
if ! "${limit[@]}" docker info >/dev/null 2>&1; then
    fail "the Docker daemon does not answer (\`docker info\` failed): start Docker, then run: $start"
fi

health() {
    if command -v curl >/dev/null 2>&1; then
        curl --silent --fail --max-time 5 --noproxy '*' "$endpoint/_localstack/health"
    else
        python3 -c 'import sys, urllib.request as u
o = u.build_opener(u.ProxyHandler({}))
sys.stdout.write(o.open(sys.argv[1], timeout=5).read().decode())' "$endpoint/_localstack/health"
    fi
}

if ! answer="$(health 2>/dev/null)"; then
    fail "nothing answers at $endpoint/_localstack/health: start LocalStack with: $start"
fi
echo "LocalStack answers at $endpoint: $(printf '%s' "$answer" | tr -d '\n' | cut -c1-160)"
